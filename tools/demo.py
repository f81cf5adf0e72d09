"""The main job on the bundled demo data (`make demo`): generate the data, pretrain the slim
ResNeXt-50 on the classification crops, export its backbone, train Faster R-CNN from it,
evaluate with COCO metrics, draw predictions, print the table.

    python tools/demo.py [--work-dir work_dirs/demo] [--compare] [--scratch] [--fast] [--mask]
                         [--seeds 0,1,2] [--ablate] [--report-only] [--dry-run]

--compare  also runs the slim ResNet-50 of the same depth and prints both side by side;
--scratch  also trains the detector from scratch, to show what pretraining brings;
--fast     also trains the ResNeXt detector on the fast path (same export), to show that it
           learns as well as the plain path; with --seeds, instead of the comparison: per seed
           one X-50 8x4d pretraining and export, its detector on the plain and on the fast
           path, and the paired difference fast - plain (WORK_DIR/fast_seeds.json) with a
           verdict: is 0 inside the 95% CI of the AP@0.5 difference;
--mask     also trains Mask R-CNN from the same export (with --compare, for both backbones),
           evaluates box and mask AP, and draws the predicted masks (tools/infer.py uses it);
--seeds    the comparison (slim X-50 8x4d against slim R-50), whole, once per seed: pretraining,
           export, detection, evaluation; prints per-seed results, means, standard deviations
           and the paired difference X - R with its 95% confidence interval, both backbones'
           parameters and FLOPs, and writes WORK_DIR/compare_seeds.json;
--ablate   instead, the paper's cardinality ablation at demo scale: the slim templates of equal
           complexity 1x16d (ResNet), 2x10d, 4x6d, 8x3d, 32x1d (resnext_det/analysis/
           cardinality.py), same statistics against 1x16d, WORK_DIR/ablation_seeds.json;
--report-only  with --seeds/--ablate: no training, only the statistics of the seeds' work dirs
           under WORK_DIR from an earlier run (one stopped after some seeds: list those);
--dry-run  print the commands instead of running them.
Every step is one of the project's own CLIs, run as a user would run it.
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time
from typing import List, NamedTuple, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# name: (classification config, detection config from the export, detection from scratch)
ARCHS = {
    'r50_slim': ('configs/demo/resnet50_slim_cls_demo.py',
                 'configs/demo/faster_rcnn_r50_slim_pretrained_demo.py',
                 'configs/demo/faster_rcnn_r50_slim_demo.py'),
    'x50_8x4d_slim': ('configs/demo/resnext50_8x4d_slim_cls_demo.py',
                      'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_demo.py',
                      'configs/demo/faster_rcnn_x50_8x4d_slim_demo.py'),
}
FAST = {'x50_8x4d_slim': 'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_fast_demo.py'}
# the fast path on a GPU includes bf16 autocast (configs/*_fast.py); mmengine's AmpOptimWrapper
# needs CUDA, so the demo's fast config leaves it out and a run on a GPU adds it
FAST_GPU_OPTIONS = ['optim_wrapper.type=AmpOptimWrapper', 'optim_wrapper.dtype=bfloat16']
MASK = {'r50_slim': 'configs/demo/mask_rcnn_r50_slim_pretrained_demo.py',
        'x50_8x4d_slim': 'configs/demo/mask_rcnn_x50_8x4d_slim_pretrained_demo.py'}
LABELS = {'r50_slim': 'R-50 slim', 'x50_8x4d_slim': 'X-50 8x4d slim'}
ABLATION_CARDINALITIES = (1, 2, 4, 8, 32)
# the demo's image sizes: classification crops and detection images
CLS_SIZE, DET_SIZE = 64, 192
DRY_RUN = False


def run(step, args):
    print(f'\n==> {step}: {" ".join(args)}', flush=True)
    if DRY_RUN:
        return
    start = time.time()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    print(f'==> {step} done in {time.time() - start:.0f}s', flush=True)


def last_checkpoint(work_dir):
    if DRY_RUN:
        return osp.join(work_dir, 'epoch_N.pth')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:  # written by mmengine
        return f.read().strip()


def best_classifier(cls_dir):
    if DRY_RUN:
        return osp.join(cls_dir, 'best_accuracy_top1_epoch_N.pth')
    return sorted(glob.glob(osp.join(cls_dir, 'best_accuracy_top1_epoch_*.pth')))[-1]


def seed_work_dirs(name, root):
    """Where one variant's runs of one seed go: (classification dir, detection dir)."""
    return osp.join(root, f'{name}_cls'), osp.join(root, name)


class Variant(NamedTuple):
    """One model of a multi-seed run."""
    name: str
    label: str
    cls_config: str
    det_config: str
    options: List[str]  # backbone --cfg-options, for pretraining and detection
    # the variant whose pretraining and export it detects from (None: its own); --seeds --fast
    # trains both paths from one export, so that only the detector's path differs
    pretrained: Optional[str] = None


def variant_work_dirs(variant, root):
    """Where a variant's runs of one seed go: (its classifier's dir, its detection dir)."""
    return (seed_work_dirs(variant.pretrained or variant.name, root)[0],
            seed_work_dirs(variant.name, root)[1])


def pretrain_and_export(name, cls_config, root, options=()):
    """Pretrain the classifier, export its backbone: the exported file."""
    cls_dir = seed_work_dirs(name, root)[0]
    with_options = ['--cfg-options', *options] if options else []
    run(f'pretrain {name}', ['tools/train.py', cls_config, '--work-dir', cls_dir, *with_options])
    backbone = osp.join(root, 'backbones', f'{name}.pth')
    # --force: a rerun pretrains again and replaces its own previous export
    run(f'export {name}', ['tools/export_backbone.py', best_classifier(cls_dir), backbone,
                           '--force'])
    return backbone


def experiment_variants(ablate, fast=False):
    """The models of --seeds (X-50 vs R-50), --seeds --fast (fast vs plain path of X-50) or
    --ablate (the cardinality templates), the baseline first."""
    if fast:
        name = 'x50_8x4d_slim'
        cls_config, det_config, _ = ARCHS[name]
        return [Variant(name, 'plain path', cls_config, det_config, []),
                Variant(f'{name}_fast', 'fast path', cls_config, FAST[name], [],
                        pretrained=name)]
    if not ablate:
        return [Variant(name, LABELS[name], ARCHS[name][0], ARCHS[name][1], [])
                for name in ('r50_slim', 'x50_8x4d_slim')]
    from resnext_det.analysis.cardinality import DEMO_BASE_CHANNELS, backbone_kwargs
    cls_config, det_config, _ = ARCHS['x50_8x4d_slim']
    out = []
    for c in ABLATION_CARDINALITIES:
        kwargs = backbone_kwargs(50, c, DEMO_BASE_CHANNELS)
        width = kwargs['base_width'] if c > 1 else DEMO_BASE_CHANNELS
        options = [f'model.backbone.groups={c}',
                   f"model.backbone.base_width={kwargs['base_width']}"]
        out.append(Variant(f'x50_{c}x{width}d_slim',
                           f'{c}x{width}d' + (' (ResNet)' if c == 1 else ''),
                           cls_config, det_config, options))
    return out


def complexity(variant):
    """Backbone parameters and FLOPs of a variant at the demo's two input sizes."""
    from resnext_det.analysis.cardinality import config_backbone_complexity
    cfg_options = {o.split('=')[0]: int(o.split('=')[1]) for o in variant.options}
    stats = {size: config_backbone_complexity(osp.join(ROOT, variant.cls_config), size,
                                              cfg_options)
             for size in (CLS_SIZE, DET_SIZE)}
    return dict(params=stats[CLS_SIZE]['params'],
                **{f'mflops_{size}': stats[size]['flops'] / 1e6 for size in stats})


def run_seeds(args, seeds):
    """The comparison (the fast path, the ablation) once per seed, then the statistics."""
    variants = experiment_variants(args.ablate, args.fast)
    dirs = {v.label: {} for v in variants}
    for seed in seeds:
        root = osp.join(args.work_dir, f'seed{seed}')
        exports = {}  # name -> exported backbone: each classifier is pretrained once per seed
        for v in variants:
            dirs[v.label][seed] = variant_work_dirs(v, root)
            if args.report_only:
                continue
            options = [*v.options, f'randomness.seed={seed}']
            source = v.pretrained or v.name
            if source not in exports:
                exports[source] = pretrain_and_export(source, v.cls_config, root, options)
            fast = fast_path_options() if v.det_config in FAST.values() else []
            detect(v.name, v.det_config, dirs[v.label][seed][1],
                   ['--cfg-options', f'model.backbone.init_cfg.checkpoint={exports[source]}',
                    *options, *fast])
    if DRY_RUN:
        return
    unfinished = [det_dir for per_seed in dirs.values() for _, det_dir in per_seed.values()
                  if not osp.isfile(osp.join(det_dir, 'test_results.json'))]
    if unfinished:
        from resnext_det.errors import exit_with_error
        exit_with_error(f'no evaluated run in {", ".join(unfinished)} (tools/test.py writes '
                        'test_results.json there): run those seeds without --report-only, or '
                        'list only the finished ones in --seeds')
    det_dirs = [dirs[v.label][s][1] for s in seeds for v in variants]
    run('curves', ['tools/compare_results.py', *det_dirs, '--plot',
                   osp.join(args.work_dir, 'curves_fast_seeds.png' if args.fast
                            else 'curves_seeds.png')])
    report = seeds_report(variants, seeds, dirs, fast=args.fast)
    path = osp.join(args.work_dir, 'fast_seeds.json' if args.fast else
                    'ablation_seeds.json' if args.ablate else 'compare_seeds.json')
    from resnext_det.utils.atomic import atomic_write
    atomic_write(path, json.dumps(report, indent=2))
    print(f'\n{report["table"]}\n')
    if 'complexity' in report:
        print('backbones (no fc): ' + '; '.join(
            f"{label}: {c['params']:,} params, {c['mflops_64']:.1f} MFLOPs at 64x64, "
            f"{c['mflops_192']:.1f} at 192x192" for label, c in report['complexity'].items()))
    for line in report['notes']:
        print(line)
    print(f'written to {path}')


def seeds_report(variants, seeds, dirs, fast=False):
    """Per-seed metrics, summary statistics, complexity and power of a multi-seed run; with
    `fast` (fast vs plain path of one backbone) the verdict on AP@0.5 instead of the last two."""
    from resnext_det.analysis.results import best_logged
    from resnext_det.analysis.statistics import (
        format_markdown,
        metrics_from_work_dir,
        seeds_needed,
        summarize,
    )
    runs = {label: {seed: dict(metrics_from_work_dir(det_dir),
                               top1=best_logged(cls_dir, 'accuracy/top1'))
                    for seed, (cls_dir, det_dir) in per_seed.items()}
            for label, per_seed in dirs.items()}
    baseline = variants[0].label
    # --fast: one classifier per seed behind both paths, so top-1 is the same number on both
    # (kept per seed in `runs`, nothing to compare)
    metrics = ['AP', 'AP50', 'AP75'] if fast else ['top1', 'AP', 'AP50', 'AP75']
    summary = summarize(runs, baseline=baseline, metrics=metrics)
    report = dict(
        seeds=list(seeds), baseline=baseline, runs=runs,
        stats={k: {m: {key: v[key] for key in ('n', 'mean', 'sd')}
                   for m, v in per_model.items()} for k, per_model in summary.stats.items()},
        differences={k: {m: dict(mean=d.mean, sd=d.sd, ci=d.ci, p_value=d.p_value,
                                 reason=d.reason)
                         for m, d in per_model.items()} for k, per_model in summary.diffs.items()})
    if fast:
        # the same backbone on both paths: no complexity to compare, and the question is not
        # the paper's +2.0 AP@0.5 but whether the paths agree
        d = summary.diffs['AP50'][variants[1].label]
        report['equal_within_ci'] = None if d.ci is None else d.ci[0] <= 0 <= d.ci[1]
        notes = [fast_verdict(d)]
    else:
        report['complexity'] = {v.label: complexity(v) for v in variants}
        notes = []
        for label in summary.models[1:]:
            d = summary.diffs['AP50'][label]
            if d.ci is not None and d.sd > 0:
                notes.append(f'{label} - {baseline}: AP@0.5 {d.mean:+.1f} (sd of the paired '
                             f'difference {d.sd:.2f}); seeds needed to detect +2.0 AP@0.5 '
                             f'(the paper\'s gain) with 80% power at this spread: '
                             f'{seeds_needed(2.0, d.sd)}')
    report.update(table=format_markdown(summary), notes=notes,
                  work_dirs={label: {str(s): list(d) for s, d in per_seed.items()}
                             for label, per_seed in dirs.items()})
    return report


def fast_verdict(d):
    """One line on the paired AP@0.5 difference fast - plain path: is 0 inside its CI?"""
    pct = f'{100 * d.confidence:g}%'
    if d.ci is None:
        return f'verdict: AP@0.5 fast - plain path {d.mean:+.1f}, no verdict: {d.reason}'
    found = (f'verdict: AP@0.5 fast - plain path {d.mean:+.1f}, {pct} CI [{d.ci[0]:+.1f}, '
             f'{d.ci[1]:+.1f}] over {d.n} paired seeds')
    if d.ci[0] <= 0 <= d.ci[1]:
        # not a proof that the paths are the same: with few seeds the interval is wide
        line = (f'{found}: 0 is inside, so AP@0.5 is equal on the two paths within the paired '
                f'{pct} CI; {d.n} seeds rule out only differences beyond the interval')
    else:
        line = (f'{found}: 0 is outside (p = {d.p_value:.3g}), so AP@0.5 differs between the '
                f'two paths beyond the paired {pct} CI')
    return line + (f'; {d.reason}' if d.reason else '')


def fast_path_options():
    """--cfg-options that complete the demo's fast config on this machine."""
    import torch
    return FAST_GPU_OPTIONS if torch.cuda.is_available() else []


def detect(name, config, work_dir, extra=()):
    run(f'train {name}', ['tools/train.py', config, '--work-dir', work_dir, *extra])
    run(f'test {name}', ['tools/test.py', config, last_checkpoint(work_dir), '--work-dir',
                         work_dir, '--show-dir', 'predictions', *extra])
    return work_dir


def parse_seeds(text):
    try:
        seeds = [int(s) for s in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a comma-separated list of integer '
                                         'seeds, e.g. 0,1,2') from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f'{text!r} repeats a seed')
    return seeds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--compare', action='store_true',
                        help='also run the slim ResNet-50 baseline and compare')
    parser.add_argument('--scratch', action='store_true',
                        help='also train the detector from scratch (no pretraining)')
    parser.add_argument('--fast', action='store_true',
                        help='also train the ResNeXt detector on the fast path (with --seeds: '
                             'fast vs plain path per seed, fast_seeds.json)')
    parser.add_argument('--mask', action='store_true',
                        help='also train Mask R-CNN from the same export (box and mask AP)')
    parser.add_argument('--seeds', type=parse_seeds, metavar='S,S,...',
                        help='run the comparison (or --ablate) once per seed, with statistics')
    parser.add_argument('--ablate', action='store_true',
                        help='the cardinality ablation at demo scale (seeds: --seeds, default 0)')
    parser.add_argument('--report-only', action='store_true',
                        help='with --seeds/--ablate: only the statistics of the work dirs of '
                             'an earlier run (no training)')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    args = parser.parse_args(argv)
    if args.report_only and not (args.seeds or args.ablate):
        parser.error('--report-only summarises the runs of --seeds or --ablate: give one')
    if args.fast and args.ablate:
        parser.error('--fast with --ablate: the ablation compares templates on the plain path; '
                     'run --ablate, and --seeds S,.. --fast for the fast path, separately')
    if args.fast and args.seeds and args.compare:
        # two baselines in one run: R-50 for X-50, X-50's plain path for its fast path
        parser.error('--seeds --fast compares the fast with the plain path of X-50 '
                     '(fast_seeds.json), --seeds alone X-50 with R-50 (compare_seeds.json): '
                     'drop --compare, run the two separately')
    global DRY_RUN
    DRY_RUN = args.dry_run
    start = time.time()
    if not args.report_only:
        run('demo data', ['tools/make_demo_data.py', '--out', 'data/demo'])
    if args.seeds or args.ablate:
        run_seeds(args, args.seeds or [0])
        print(f'\nfinished in {(time.time() - start) / 60:.1f} min')
        return
    names = list(ARCHS) if args.compare else ['x50_8x4d_slim']
    work_dirs = []
    for name in names:
        cls_config, det_config, scratch_config = ARCHS[name]
        backbone = pretrain_and_export(name, cls_config, args.work_dir)
        from_export = ['--cfg-options', f'model.backbone.init_cfg.checkpoint={backbone}']
        work_dirs.append(detect(name, det_config, osp.join(args.work_dir, name), from_export))
        if args.fast and name in FAST:
            work_dirs.append(detect(f'{name} fast path', FAST[name],
                                    osp.join(args.work_dir, f'{name}_fast'),
                                    from_export + fast_path_options()))
        if args.scratch:
            work_dirs.append(detect(f'{name} from scratch', scratch_config,
                                    osp.join(args.work_dir, f'{name}_scratch')))
        if args.mask:
            work_dirs.append(detect(f'{name} Mask R-CNN', MASK[name],
                                    osp.join(args.work_dir, f'{name}_mask'), from_export))
    run('compare', ['tools/compare_results.py', *work_dirs, '--plot',
                    osp.join(args.work_dir, 'curves.png')])
    # the trained detector (the Mask R-CNN with --mask: it draws masks and writes them as RLE)
    # on a few images, as on your own: tools/infer.py
    infer_dir = osp.join(args.work_dir, 'infer')
    infer_config, infer_run = ((MASK['x50_8x4d_slim'], 'x50_8x4d_slim_mask') if args.mask else
                               (ARCHS['x50_8x4d_slim'][1], 'x50_8x4d_slim'))
    run('predict on images', ['tools/infer.py', 'data/demo/coco/val/00000[1-4].jpg',
                              infer_config, last_checkpoint(osp.join(args.work_dir, infer_run)),
                              '--out-dir', infer_dir])
    print(f'\ndemo finished in {(time.time() - start) / 60:.1f} min; predictions drawn under '
          f'{args.work_dir}/*/<timestamp>/predictions')
    print(f'tools/infer.py on 4 val images: drawn in {infer_dir}/vis, JSON in {infer_dir}/preds')


if __name__ == '__main__':
    main()
