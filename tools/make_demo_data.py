"""Generate the synthetic demo dataset (COCO-format shapes + ImageNet-format crops of them).

    python tools/make_demo_data.py [--out data/demo] [--seed 0] [--num-train 300] [--num-val 60]
                                   [--overwrite]

Re-running with the same arguments reuses the existing dataset; see
resnext_det/datasets/demo_data.py for the layout.
"""
import warnings

# setuptools deprecates pkg_resources, which mmengine and mmcv import: not ours to fix, and it
# would bury the command's own output (real warnings still show)
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning,
                        module=r'(mmengine|mmcv|mmdet|importlib)(\.|$)')

import argparse

from resnext_det.datasets.demo_data import make_demo_data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/demo', help='dataset root directory')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed, same data')
    parser.add_argument('--num-train', type=int, default=300, help='detection training images')
    parser.add_argument('--num-val', type=int, default=60, help='detection validation images')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a demo dataset at --out made with other parameters')
    args = parser.parse_args(argv)
    try:
        info = make_demo_data(args.out, seed=args.seed, num_train=args.num_train,
                              num_val=args.num_val, overwrite=args.overwrite)
    except ValueError as err:
        parser.exit(2, f'error: {err}\n')
    counts = info['counts']
    print(f"{'generated' if info['generated'] else 'already present'}: {info['out_dir']} "
          f"(coco {counts['train_images']}/{counts['val_images']} train/val images with "
          f"{counts['train_objects']}/{counts['val_objects']} objects; imagenet "
          f"{counts['cls_train_images']}/{counts['cls_val_images']} train/val crops of "
          f"{len(info['classes'])} classes)")


if __name__ == '__main__':
    main()
