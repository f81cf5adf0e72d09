"""Export the backbone of a classification checkpoint for the detection configs.

    python tools/export_backbone.py work_dirs/cls_x50/epoch_100.pth checkpoints/x50_cls.pth

writes checkpoints/x50_cls-<sha256[:8]>.pth: backbone weights only (no head, no optimizer
state), with the architecture, epoch and best top-1 in its meta.
"""
import argparse

from resnext_det.weights import WeightsError, export_classifier, read_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='classification checkpoint (backbone.* + head.fc.*)')
    parser.add_argument('out', help='output path; -<sha256[:8]> is added before .pth')
    args = parser.parse_args()
    try:
        path = export_classifier(args.checkpoint, args.out)
    except (WeightsError, FileExistsError, FileNotFoundError) as exc:
        parser.exit(2, f'error: {exc}\n')
    meta = read_checkpoint(path)['meta']
    print(f"{path}: arch={meta['arch']} epoch={meta['epoch']} top1={meta['top1']}")


if __name__ == '__main__':
    main()
