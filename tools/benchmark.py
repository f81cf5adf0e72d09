"""Time stock MMDetection against resnext_det: backbone and Faster R-CNN, train and inference.

    python tools/benchmark.py [--device cuda] [--archs x101_32x4d r101] [--parts backbone detector]
                              [--batch 2] [--size 800 1216] [--iters 10] [--warmup 3] [--compile]
                              [--out work_dirs/benchmark/DEVICE.json] [--md FILE.md]
    python tools/benchmark.py --ci        # CI size: depth 50, batch 1, 224x320, 3 steps

Prints a markdown table (median ms per train step, images/s, speed-ups against stock fp32,
X-101/R-101 step ratios, peak GPU memory) and writes everything, raw times included, as JSON.
docs/benchmarks.md records the measured tables.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import json
import os
import os.path as osp
import sys

import torch
from analysis_tools.detector_benchmark import ARCHS, markdown, run, summarize, to_json

from resnext_det.utils.collect_env import cpu_name

# the repository's configs/, found from this file (the package is not told where it lives)
CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def config_paths(arch):
    """(stock, ours, fast) for ``arch``: mmdet's by its ``mmdet::`` name, ours as paths."""
    stock, ours, fast = ARCHS[arch]
    return stock, osp.join(CONFIGS, ours), osp.join(CONFIGS, fast)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--archs', nargs='+', choices=list(ARCHS), default=list(ARCHS))
    parser.add_argument('--parts', nargs='+', choices=['backbone', 'detector'],
                        default=['backbone', 'detector'])
    parser.add_argument('--variants', nargs='+', metavar='NAME',
                        help="only these variants ('stock', 'stock --amp', 'ours', 'fast', "
                        "'fast fp16')")
    parser.add_argument('--batch', type=int, help='images per step (2)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), help='(800 1216)')
    parser.add_argument('--depth', type=int, choices=[50, 101],
                        help='override the depth of every variant (50: X-50-32x4d and R-50)')
    parser.add_argument('--iters', type=int, help='timed steps per case (10)')
    parser.add_argument('--warmup', type=int, help='untimed steps first (3)')
    parser.add_argument('--compile', action='store_true',
                        help="add 'fast compiled': the fast path with torch.compile(backbone)")
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--ci', action='store_true',
                        help='CI size: depth 50, batch 1, 224x320, 2 warm-up + 3 steps')
    parser.add_argument('--out', help='JSON file (default work_dirs/benchmark/<device>.json)')
    parser.add_argument('--md', help='also write the markdown table here')
    args = parser.parse_args(argv)
    # explicit flags win over the preset
    preset = (dict(depth=50, batch=1, size=[224, 320], warmup=2, iters=3) if args.ci else
              dict(batch=2, size=[800, 1216], warmup=3, iters=10))
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is visible to torch')
    if min(args.batch, args.iters, *args.size) < 1 or args.warmup < 0:
        parser.error('--batch, --size and --iters must be >= 1, --warmup >= 0')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = args.size
    configs = {arch: config_paths(arch) for arch in args.archs}
    results = run(configs, args.parts, args.device, args.batch, height, width, args.depth,
                  args.warmup, args.iters, args.variants, args.compile,
                  log=lambda msg: print(msg, file=sys.stderr, flush=True))
    summary = summarize(results, args.batch)
    device = (torch.cuda.get_device_name() if args.device == 'cuda'
              else f'{cpu_name()} CPU, {torch.get_num_threads()} threads')
    settings = dict(vars(args), device_name=device, torch=torch.__version__,
                    command='python tools/benchmark.py ' + ' '.join(sys.argv[1:] if argv is None
                                                                    else argv))
    table = markdown(summary)
    print(f"{device}; batch {args.batch}, {height}x{width}, median of {args.iters} steps after "
          f"{args.warmup} warm-up; depth {args.depth or 'as configured'}\n\n{table}")
    out = args.out or osp.join('work_dirs', 'benchmark', f'{args.device}.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(to_json(results, summary, settings), f, indent=1)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(table + '\n')
    print(f'\nwritten: {out}' + (f', {args.md}' if args.md else ''))


if __name__ == '__main__':
    main()
