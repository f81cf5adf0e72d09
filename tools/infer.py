"""Predict on your own images with a trained detector (mmdet's DetInferencer), draw and save them.

    python tools/infer.py IMAGES CONFIG CHECKPOINT [--out-dir work_dirs/infer] [--score-thr 0.3]
                          [--device cpu|cuda] [--batch-size 1] [--allow-unsafe-pickle]
                          [--cfg-options k=v ...]

IMAGES is an image file, a folder (its images, sorted) or a glob pattern (quote it: "x/*.jpg";
** recurses). For each image, OUT_DIR/vis/<name> is the image with the predictions scoring
above --score-thr drawn, and OUT_DIR/preds/<stem>.json those predictions: bboxes (x1, y1, x2,
y2 in the image's pixels), scores, labels, label_names, and for Mask R-CNN configs masks as
COCO RLE (docs/inference.md describes the format). --score-thr 0 keeps them all.
Inference runs in fp32 (the *_fast configs' AMP/fp16 settings are for training and evaluation).

Errors are one `error: ...` line on stderr with exit status 2: a missing config, checkpoint or
image path, an empty folder or a pattern matching no image, a corrupt or unsafe checkpoint, a
checkpoint that does not fit the config (another backbone or head: refused, where mmengine would
only warn), a device that is not there. An image that cannot be decoded is skipped and the rest
are processed: the run ends with one `warning: ...` line naming the skipped files, and exits
with status 0 if at least one image was predicted, 2 if none could be read.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import os
import sys

from mmengine.config import DictAction

import resnext_det.runtime  # noqa: F401  (tensor-only checkpoint loading)
from resnext_det.apis import run_inference
from resnext_det.errors import exit_with_error, first_few, user_errors
from resnext_det.utils.safe_load import ALLOW_UNSAFE_ENV

MAX_LISTED = 10


def _count(n, noun):
    return f'{n} {noun}' if n == 1 else f'{n} {noun}s'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('images', help='an image file, a folder of images or a glob pattern')
    parser.add_argument('config', help='the detector\'s config file')
    parser.add_argument('checkpoint', help='the detector\'s checkpoint (trained with CONFIG)')
    parser.add_argument('--out-dir', default='work_dirs/infer',
                        help='where vis/ and preds/ are written (default: work_dirs/infer)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw and save the predictions scoring above this (default: 0.3)')
    parser.add_argument('--device', help='cpu, cuda or cuda:N (default: cuda if available)')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument('--allow-unsafe-pickle', action='store_true',
                        help='load a checkpoint that needs arbitrary code to unpickle (only for '
                        'files you trust; the default loads tensors and plain data only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.allow_unsafe_pickle:
        os.environ[ALLOW_UNSAFE_ENV] = '1'
    return args


def _listing(failed):
    return first_few(failed, MAX_LISTED, lambda item: f'{item[0]} ({item[1]})', sep='; ')


def main(argv=None):
    args = parse_args(argv)

    def progress(i, n, path, num):
        print(f'[{i}/{n}] {path}: {_count(num, "detection")}', flush=True)

    with user_errors():
        summary = run_inference(args.images, args.config, args.checkpoint,
                                out_dir=args.out_dir, score_thr=args.score_thr,
                                device=args.device, batch_size=args.batch_size,
                                cfg_options=args.cfg_options, progress=progress)
    total = len(summary.done) + len(summary.failed)
    if not summary.done:
        what = 'the image could not' if total == 1 else f'none of the {total} images could'
        exit_with_error(f'{what} be read: {_listing(summary.failed)}')
    print(f'{_count(len(summary.done), "image")}: drawn in {summary.vis_dir}, predictions in '
          f'{summary.pred_dir}')
    if summary.failed:
        print(f'warning: {len(summary.failed)} of {total} images could not be read and '
              f'{"was" if len(summary.failed) == 1 else "were"} skipped: '
              f'{_listing(summary.failed)}', file=sys.stderr)


if __name__ == '__main__':
    main()
