"""Generate the synthetic demo dataset (COCO-format shapes + ImageNet-format crops of them).

    python tools/make_demo_data.py [--out data/demo] [--seed 0] [--num-train 300] [--num-val 60]
                                   [--cls-size 64] [--cls-per-class 300] [--overwrite]

Re-running with the same arguments reuses the existing dataset; see
resnext_det/demo/make_data.py for the layout.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse

from resnext_det.demo import make_demo_data
from resnext_det.errors import user_errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/demo', help='dataset root directory')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed, same data')
    parser.add_argument('--num-train', type=int, default=300, help='detection training images')
    parser.add_argument('--num-val', type=int, default=60, help='detection validation images')
    parser.add_argument('--cls-size', type=int, default=64,
                        help='side of the classification crops (larger ones let the decoder '
                        'decode at a reduced scale, e.g. 256: docs/benchmarks.md)')
    parser.add_argument('--cls-per-class', type=int, default=300,
                        help='classification training crops per class (validation: 50)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a demo dataset at --out made with other parameters')
    args = parser.parse_args(argv)
    with user_errors(ValueError):  # ValueError: sizes out of range
        info = make_demo_data(args.out, seed=args.seed, num_train=args.num_train,
                              num_val=args.num_val, crop_size=args.cls_size,
                              num_cls_per_class=args.cls_per_class,
                              overwrite=args.overwrite)
    counts = info['counts']
    print(f"{'generated' if info['generated'] else 'already present'}: {info['out_dir']} "
          f"(coco {counts['train_images']}/{counts['val_images']} train/val images with "
          f"{counts['train_objects']}/{counts['val_objects']} objects; imagenet "
          f"{counts['cls_train_images']}/{counts['cls_val_images']} train/val crops of "
          f"{len(info['classes'])} classes)")


if __name__ == '__main__':
    main()
