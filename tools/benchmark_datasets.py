"""Build time and memory of full-size datasets: ImageNet-1K train's 1,281,167 samples (numpy
index from mmpretrain's annotation list, a list of tuples, the folder scan; memory a forked
DataLoader worker copies just by reading) and COCO train2017 (resnext_det's CocoDataset against
mmdet's), on synthetic data generated from a seed in a temporary folder.

    python tools/benchmark_datasets.py [--parts imagenet coco] [--num 1281167] [--classes 1000]
                                       [--scan-classes 100] [--reads 100000]
                                       [--coco-images 118287] [--seed 0] [--tmp DIR]
                                       [--out work_dirs/benchmark/datasets.json] [--md FILE.md]
    python tools/benchmark_datasets.py --small   # 20,000 samples / 100 classes, 2,000 COCO images

Every dataset is built in a fresh process (peaks do not mix). The full size needs ~4.5 GiB of
memory at the peak (a CocoDataset), ~0.5 GiB of disk and ~8 min on 2 busy cores. See
tools/analysis_tools/dataset_scale_benchmark.py for what each number is.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import os
import os.path as osp
import time

from analysis_tools import command_line, fill_unset, log_stderr, write_report
from analysis_tools.dataset_scale_benchmark import (
    COCO_TRAIN_IMAGES,
    IMAGENET_CLASSES,
    IMAGENET_TRAIN_IMAGES,
    benchmark,
    format_markdown,
)

from resnext_det.errors import user_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--parts', nargs='+', choices=['imagenet', 'coco'],
                        default=['imagenet', 'coco'])
    parser.add_argument('--num', type=int, help=f'ImageNet samples ({IMAGENET_TRAIN_IMAGES})')
    parser.add_argument('--classes', type=int, help=f'ImageNet classes ({IMAGENET_CLASSES})')
    parser.add_argument('--scan-classes', type=int,
                        help='class folders of empty files made and scanned; the scan is scaled '
                        'to --num (100)')
    parser.add_argument('--reads', type=int,
                        help="samples a forked worker reads (100000, at most --num)")
    parser.add_argument('--coco-images', type=int, help=f'COCO images ({COCO_TRAIN_IMAGES})')
    parser.add_argument('--seed', type=int, default=0, help='same seed, same data')
    parser.add_argument('--tmp', help='folder for the generated data (default: the system '
                        'temporary folder)')
    parser.add_argument('--small', action='store_true',
                        help='quick run: 20,000 samples of 100 classes (10 scanned), 5,000 '
                        'reads, 2,000 COCO images')
    parser.add_argument('--out', default=osp.join('work_dirs', 'benchmark', 'datasets.json'),
                        help='JSON report (default %(default)s)')
    parser.add_argument('--md', help='also write the markdown table here')
    args = parser.parse_args(argv)
    # explicit flags win over the preset
    preset = (dict(num=20_000, classes=100, scan_classes=10, reads=5_000, coco_images=2_000)
              if args.small else
              dict(num=IMAGENET_TRAIN_IMAGES, classes=IMAGENET_CLASSES, scan_classes=100,
                   reads=100_000, coco_images=COCO_TRAIN_IMAGES))
    fill_unset(args, preset)
    if min(args.classes, args.scan_classes, args.reads, args.coco_images) < 1:
        parser.error('--classes, --scan-classes, --reads and --coco-images must be >= 1')
    if args.num < args.classes:
        parser.error(f'--num {args.num}: at least one sample per class (--classes '
                     f'{args.classes}) is needed')
    args.reads = min(args.reads, args.num)
    if args.tmp and not osp.isdir(args.tmp):
        parser.error(f'--tmp {args.tmp}: no such folder')
    return args


def main(argv=None):
    args = parse_args(argv)
    command = command_line('tools/benchmark_datasets.py', argv)
    start = time.perf_counter()
    with user_errors(OSError):  # OSError: the output or temporary folder
        out_dir = osp.dirname(osp.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        report = benchmark(args.parts, args.num, args.classes, args.scan_classes, args.reads,
                           args.coco_images, args.seed, args.tmp,
                           log=log_stderr)
        report['config'].update(command=command,
                                wall_s=round(time.perf_counter() - start, 1))
        table = format_markdown(report)
        env = report['environment']
        print(f"{env['cpu']} ({env['cpu_count']} cores, {env['memory_gib']:.0f} GiB), python "
              f"{env['python']}; {report['config']['wall_s']} s wall\n\n{table}")
        report['markdown'] = table
        write_report(args.out, report, table, args.md)


if __name__ == '__main__':
    main()
