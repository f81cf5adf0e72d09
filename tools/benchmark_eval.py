"""Time COCO bbox evaluation of a val2017-sized synthetic result set with pycocotools and
faster-coco-eval, and check that both give the same 12 summary stats.

    python tools/benchmark_eval.py [--images 5000] [--repeats 3] [--seed 0] [--out report.json]

Prints a markdown table (median seconds per phase over the repeats) and the stats of each
evaluator; the json holds every run, the versions and the comparison. Exits 1 when an evaluator's
stats are 1e-12 or more away from pycocotools' (closer than that they are the same numbers: see
``compare`` in tools/analysis_tools/coco_eval_benchmark.py for the one-ulp case).
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import json
import sys

from analysis_tools.coco_eval_benchmark import EVALUATORS, benchmark, format_markdown


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=5000, help='images in the synthetic set')
    parser.add_argument('--repeats', type=int, default=3, help='runs per evaluator (median)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic set')
    parser.add_argument('--dets-per-image', type=int, default=100)
    parser.add_argument('--evaluators', nargs='+', default=list(EVALUATORS),
                        choices=list(EVALUATORS),
                        help='the first one is the reference the others are compared with')
    parser.add_argument('--out', help='write the full report to this json file')
    args = parser.parse_args()

    report = benchmark(args.images, args.repeats, args.seed, args.dets_per_image,
                       args.evaluators)
    config, env = report['config'], report['environment']
    print(f"{config['images']} images, {config['gt_boxes']} boxes ({config['crowd_boxes']} "
          f"crowd), {config['detections']} detections, seed {config['seed']}, median of "
          f"{config['repeats']} run(s); {env['cpu']} ({env['cpu_count']} cores), "
          f"python {env['python']}, " +
          ', '.join(f'{name} {ver}' for name, ver in env['versions'].items()))
    print()
    print(format_markdown(report))
    print()
    for name, result in report['results'].items():
        if 'vs_reference' in result:
            diff = result['vs_reference']
            print(f"{name} vs {config['reference']}: stats identical: "
                  f"{diff['stats_identical']} (max abs diff {diff['stats_max_abs_diff']:.3g}, "
                  f"< 1e-12: {diff['stats_within_1e12']}); precision array max abs diff "
                  f"{diff['precision_max_abs_diff']}, recall array max abs diff "
                  f"{diff['recall_max_abs_diff']}")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'report written to {args.out}')
    sys.exit(0 if report['within_1e12'] else 1)


if __name__ == '__main__':
    main()
