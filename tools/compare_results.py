"""Compare finished runs: AP, AP@0.5, AP@0.75 side by side with the deltas to the first run.

    python tools/compare_results.py WORK_DIR_A WORK_DIR_B ... [--plot curves.png]

Each work dir needs the test_results.json that tools/test.py writes. The first run is the
baseline (e.g. ResNet-50); the paper's ResNeXt-50 gain is +2.1 AP@0.5. Runs of the same config
(several seeds: `tools/demo.py --seeds` leaves WORK_DIR/seed*/NAME) are also summarised as one
model, mean ± sd over its runs, and plotted as the mean curve with the min-max band.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse

from resnext_det.analysis.results import MODEL_ZOO_BOX_AP, PAPER_AP50_GAIN, group_runs, load_run
from resnext_det.analysis.statistics import describe, mean
from resnext_det.errors import user_errors

COLUMNS = (('AP', 'bbox_mAP'), ('AP@0.5', 'bbox_mAP_50'), ('AP@0.75', 'bbox_mAP_75'),
           ('AP_S', 'bbox_mAP_s'), ('AP_M', 'bbox_mAP_m'), ('AP_L', 'bbox_mAP_l'))
# Mask R-CNN runs also have mask AP (mmdet's segm metric), shown in a second table
MASK_COLUMNS = tuple((f'mask {name}', key.replace('bbox', 'segm')) for name, key in COLUMNS)


def metric(run, key):
    # pycocotools reports -1 for an area range with no objects
    value = run['metrics'].get(f'coco/{key}', float('nan'))
    return float('nan') if value < 0 else 100 * value


def print_table(runs):
    print('| run | ' + ' | '.join(c for c, _ in COLUMNS) + ' | ΔAP | ΔAP@0.5 | ΔAP@0.75 | '
          'model zoo AP |')
    print('|---' * (len(COLUMNS) + 5) + '|')
    base = runs[0]
    for run in runs:
        values = ' | '.join(f'{metric(run, k):.1f}'.replace('nan', '-') for _, k in COLUMNS)
        deltas = ' | '.join(f'{metric(run, k) - metric(base, k):+.1f}'
                            for k in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75'))
        zoo = MODEL_ZOO_BOX_AP.get(run['name'], '-')
        print(f"| {run['name']} ({run['work_dir']}) | {values} | {deltas} | {zoo} |")
    masked = [run for run in runs if 'coco/segm_mAP' in run['metrics']]
    if masked:
        print('\n| run (Mask R-CNN) | ' + ' | '.join(c for c, _ in MASK_COLUMNS)
              + ' | box AP | mask AP - box AP |')
        print('|---' * (len(MASK_COLUMNS) + 3) + '|')
        for run in masked:
            values = ' | '.join(f'{metric(run, k):.1f}'.replace('nan', '-')
                                for _, k in MASK_COLUMNS)
            box, mask = metric(run, 'bbox_mAP'), metric(run, 'segm_mAP')
            print(f"| {run['name']} ({run['work_dir']}) | {values} | {box:.1f} | "
                  f'{mask - box:+.1f} |')
    print(f'\nPaper (Faster R-CNN, COCO minival): ResNeXt-50 vs ResNet-50 '
          f'{PAPER_AP50_GAIN:+.1f} AP@0.5 at equal complexity.')


def mean_sd(values):
    """``mean ± sd`` over the runs; the mean alone for one run, ``-`` if a run lacks it."""
    try:
        stats = describe(values)
    except ValueError:  # a nan: the metric is missing from a run
        return '-'
    return f"{stats['mean']:.1f}" + ('' if stats['n'] < 2 else f" ± {stats['sd']:.1f}")


def print_group_table(groups):
    """Mean ± sd of each model over its runs (seeds)."""
    print('\n| model (runs) | ' + ' | '.join(c for c, _ in COLUMNS[:3]) + ' |')
    print('|---' * 4 + '|')
    for name, runs in groups.items():
        cells = [mean_sd([metric(run, key) for run in runs]) for _, key in COLUMNS[:3]]
        print(f"| {name} ({len(runs)}) | {' | '.join(cells)} |")


def mean_curve(runs, key):
    """Epochs and the mean, min and max of ``key`` over the runs at the epochs all runs have."""
    per_run = [{h['epoch']: h[key] for h in run['history'] if key in h} for run in runs]
    epochs = sorted(set.intersection(*(set(r) for r in per_run)))
    values = [[r[e] for r in per_run] for e in epochs]
    return (epochs, [_mean_or_nan(v) for v in values], [min(v) for v in values],
            [max(v) for v in values])


def _mean_or_nan(values):
    try:
        return mean(values)
    except ValueError:  # a nan logged (e.g. a diverged run's loss): a gap in the curve
        return float('nan')


def plot(runs, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_ap, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for name, group in group_runs(runs).items():
        label = name if len(group) == 1 else f'{name} (mean of {len(group)}, min-max)'
        for ax, key, scale in ((ax_ap, 'coco/bbox_mAP_50', 100), (ax_loss, 'loss', 1)):
            epochs, middle, low, high = mean_curve(group, key)
            line, = ax.plot(epochs, [scale * v for v in middle], marker='o', label=label)
            if len(group) > 1:
                ax.fill_between(epochs, [scale * v for v in low], [scale * v for v in high],
                                color=line.get_color(), alpha=0.2)
    ax_ap.set(xlabel='epoch', ylabel='val bbox AP@0.5', title='AP@0.5 per epoch')
    ax_loss.set(xlabel='epoch', ylabel='mean train loss', title='loss per epoch')
    for ax in (ax_ap, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f'plot written to {path}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+', help='work dirs; the first is the baseline')
    parser.add_argument('--plot', help='PNG file for AP@0.5 and loss per epoch')
    args = parser.parse_args(argv)
    with user_errors(FileNotFoundError):  # a work dir without results
        runs = [load_run(d) for d in args.work_dirs]
    print_table(runs)
    groups = group_runs(runs)
    if any(len(group) > 1 for group in groups.values()):
        print_group_table(groups)
    if args.plot:
        plot(runs, args.plot)


if __name__ == '__main__':
    main()
