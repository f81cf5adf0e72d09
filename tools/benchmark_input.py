"""Time the input pipelines per CPU core: ImageNet classification crops and COCO detection.

    python tools/benchmark_input.py [--parts cls det] [--num-cls 400] [--large-fraction 0.1]
                                   [--num-det 100] [--rounds 3] [--seed 0]
                                   [--work-dir work_dirs/benchmark/input_pipeline]
                                   [--out work_dirs/benchmark/input_pipeline.json] [--md FILE.md]
    python tools/benchmark_input.py --ci    # CI size: 8 + 4 images, 1 round

One thread (torch and OpenCV), timed in that thread's CPU time, every pipeline on the same
images interleaved. ``cls``: torchvision's PIL ImageFolder pipeline (a), ImageNetFolder's
cv2 + v2 (b) and resnext_det.datasets.decode (c), training and test-time crops: img/s per
core, ratios to (a), cores 8 GPUs need, the crops' pixel statistics. ``det``: mmdet's COCO
train pipelines and this repository's, boxes and masks. The generated JPEGs (from
scikit-image's photographs) are written under --work-dir.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import os.path as osp
import time

import cv2
import torch
from analysis_tools import command_line, fill_unset, log_stderr, write_report
from analysis_tools.input_pipeline_benchmark import markdown, run_cls, run_det, to_json

from resnext_det.utils.collect_env import cpu_name

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--parts', nargs='+', choices=['cls', 'det'], default=['cls', 'det'])
    parser.add_argument('--num-cls', type=int, help='classification images (400)')
    parser.add_argument('--large-fraction', type=float, default=0.1,
                        help='share of classification images with an 800-1600 px long side, '
                        'the rest ImageNet-typical 500x375-class (0.1)')
    parser.add_argument('--num-det', type=int, help='detection images (100)')
    parser.add_argument('--rounds', type=int, help='timed passes; per image the median (3)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'benchmark',
                                                       'input_pipeline'),
                        help='where the generated images go (reused by later runs)')
    parser.add_argument('--ci', action='store_true', help='CI size: 8 + 4 images, 1 round')
    parser.add_argument('--out', default=osp.join('work_dirs', 'benchmark',
                                                  'input_pipeline.json'))
    parser.add_argument('--md', help='also write the markdown table here')
    args = parser.parse_args(argv)
    preset = (dict(num_cls=8, num_det=4, rounds=1) if args.ci
              else dict(num_cls=400, num_det=100, rounds=3))
    fill_unset(args, preset)
    if min(args.num_cls, args.num_det, args.rounds) < 1:
        parser.error('--num-cls, --num-det and --rounds must be >= 1')
    if not 0 <= args.large_fraction <= 1:
        parser.error('--large-fraction must be within [0, 1]')
    return args


def main(argv=None):
    args = parse_args(argv)
    # per core: what one data-loader worker gets, without intra-op threads competing
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    start = time.perf_counter()
    result = {}
    if 'cls' in args.parts:
        log_stderr(f'cls: {args.num_cls} images, {args.rounds} rounds')
        result['cls'] = run_cls(args.work_dir, args.num_cls, args.large_fraction, args.rounds,
                                args.seed, log_stderr)
    if 'det' in args.parts:
        log_stderr(f'det: {args.num_det} images, {args.rounds} rounds')
        result['det'] = run_det(args.work_dir, args.num_det, args.rounds, CONFIGS, args.seed,
                                log_stderr)
    wall = time.perf_counter() - start
    settings = dict(vars(args), device_name=f'{cpu_name()} CPU, 1 thread',
                    torch=torch.__version__, opencv=cv2.__version__, wall_s=wall,
                    command=command_line('tools/benchmark_input.py', argv))
    table = markdown(result)
    print(f"{settings['device_name']}; CPU time, median per image of {args.rounds} rounds; "
          f'wall {wall:.0f} s\n\n{table}')
    write_report(args.out, to_json(result, settings), table, args.md)


if __name__ == '__main__':
    main()
