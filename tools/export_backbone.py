"""Export the backbone of a classification checkpoint for the detection configs.

    python tools/export_backbone.py work_dirs/cls_x50/best_accuracy_top1_epoch_97.pth \
        checkpoints/resnext50_32x4d.pth

writes exactly the output path given (the file a detection config's
``init_cfg=dict(type='Pretrained', checkpoint=...)`` names): backbone weights only (no head,
no optimizer state), with the architecture, epoch, best top-1 and the weights' sha256 in its
meta, and prints it, then the weights' and the file's sha256. ``--publish`` names the file
``<stem>-<sha256 of the file[:8]>.pth`` instead, as mmdet's publish_model does. An output file
with other content is not overwritten without ``--force``.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse

from resnext_det.errors import user_errors
from resnext_det.weights import export_classifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='classification checkpoint (backbone.* + head.fc.*)')
    parser.add_argument('out', help='output path, written as given (see --publish)')
    parser.add_argument('--publish', action='store_true',
                        help='name the output <out minus .pth>-<sha256 of the file[:8]>.pth')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an output file that holds other content')
    args = parser.parse_args()
    with user_errors(OSError):  # OSError: a missing input, an unwritable output
        saved = export_classifier(args.checkpoint, args.out, publish=args.publish,
                                  force=args.force)
    print(saved.report('epoch', 'top1'))


if __name__ == '__main__':
    main()
