"""Print params and GFLOPs at 224x224 of R-50/X-50/R-101/X-101 next to the paper's values.

    python tools/model_stats.py [--size 224] [--models R-50 X-50-32x4d ...]
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse

from resnext_det.analysis.complexity import PAPER, model_stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=224, help='input side in pixels')
    parser.add_argument('--models', nargs='+', default=list(PAPER), choices=list(PAPER))
    args = parser.parse_args()
    print('| model | backbone params | params (M, +fc) | paper | GFLOPs | paper '
          '| dev. params / FLOPs |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for name in args.models:
        s = model_stats(name, args.size)
        print(f"| {name} | {s['backbone_params']:,} | {s['params_m']:.1f} | "
              f"{s['paper_params_m']:.1f} | {s['gflops']:.2f} | {s['paper_gflops']:.1f} | "
              f"{s['params_dev']:+.1%} / {s['gflops_dev']:+.1%} |")


if __name__ == '__main__':
    main()
