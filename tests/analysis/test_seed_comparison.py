"""The multi-seed machinery of `tools/demo.py --seeds/--ablate`: the commands it runs and the
report it writes from the runs' work dirs (statistics, complexity, power)."""
import json
import re

import pytest

from resnext_det.analysis.statistics import paired_difference


@pytest.fixture(scope='module')
def demo(demo_cli):
    return demo_cli


def fake_runs(tmp_path, labels, seeds, ap50):
    """Work dirs as tools/train.py and tools/test.py leave them, with chosen numbers."""
    dirs = {}
    for label in labels:
        dirs[label] = {}
        for seed in seeds:
            cls_dir = tmp_path / f'{label}_{seed}_cls' / '20260101_000000' / 'vis_data'
            cls_dir.mkdir(parents=True)
            top1 = 80.0 + seed + (2 if label != labels[0] else 0)
            cls_dir.joinpath('scalars.json').write_text(
                json.dumps({'accuracy/top1': top1 - 5, 'step': 5}) + '\n'
                + json.dumps({'accuracy/top1': top1, 'step': 10}) + '\n')
            det_dir = tmp_path / f'{label}_{seed}'
            det_dir.mkdir()
            value = ap50[label][seed] / 100
            det_dir.joinpath('test_results.json').write_text(json.dumps(dict(
                config=f'configs/demo/{label}.py', checkpoint='x.pth',
                metrics={'coco/bbox_mAP': value - 0.2, 'coco/bbox_mAP_50': value,
                         'coco/bbox_mAP_75': value - 0.1})))
            dirs[label][seed] = (str(tmp_path / f'{label}_{seed}_cls'), str(det_dir))
    return dirs


@pytest.mark.slow
def test_seeds_report_pairs_seeds_and_states_complexity(demo, tmp_path):
    variants = demo.experiment_variants(ablate=False)
    labels = [v[1] for v in variants]
    ap50 = {labels[0]: {0: 88.3, 1: 92.0}, labels[1]: {0: 93.2, 1: 93.0}}
    report = demo.seeds_report(variants, [0, 1], fake_runs(tmp_path, labels, [0, 1], ap50))
    diff = report['differences']['AP50'][labels[1]]
    expected = paired_difference([93.2, 93.0], [88.3, 92.0])
    assert diff['mean'] == pytest.approx(2.95) and diff['ci'] == pytest.approx(expected.ci)
    assert report['stats']['top1'][labels[1]]['mean'] == pytest.approx(82.5)  # best logged
    assert report['stats']['AP50'][labels[0]]['sd'] == pytest.approx(2.616, abs=1e-3)
    complexity = report['complexity']
    assert complexity[labels[1]]['params'] > complexity[labels[0]]['params'] > 1e6
    assert 'seeds needed to detect +2.0 AP@0.5' in report['notes'][0]
    assert '| AP@0.5 |' in report['table'] and json.dumps(report)


def test_dry_run_lists_every_step_per_seed_and_template(demo, capsys):
    demo.main(['--seeds', '0,1', '--dry-run', '--work-dir', 'wd'])
    out = capsys.readouterr().out
    for seed in (0, 1):
        for name in ('r50_slim', 'x50_8x4d_slim'):
            assert f'--work-dir wd/seed{seed}/{name}_cls --cfg-options randomness.seed={seed}' \
                in out
            assert f'init_cfg.checkpoint=wd/seed{seed}/backbones/{name}.pth' in out
    demo.main(['--ablate', '--dry-run', '--work-dir', 'wd'])
    out = capsys.readouterr().out
    for template, (groups, width) in {'1x16d': (1, 64), '2x10d': (2, 10), '4x6d': (4, 6),
                                      '8x3d': (8, 3), '32x1d': (32, 1)}.items():
        assert (f'x50_{template}_slim_cls --cfg-options model.backbone.groups={groups} '
                f'model.backbone.base_width={width} randomness.seed=0') in out
    with pytest.raises(SystemExit):
        demo.main(['--seeds', '0,0', '--dry-run'])


@pytest.mark.slow
def test_report_only_summarises_finished_seeds_and_names_missing_ones(demo, tmp_path, capsys):
    """--report-only reads the seeds' work dirs where --seeds left them, trains nothing."""
    variants = demo.experiment_variants(ablate=False)
    labels = [v[1] for v in variants]
    ap50 = {labels[0]: {0: 88.3, 1: 92.0}, labels[1]: {0: 93.2, 1: 93.0}}
    runs = fake_runs(tmp_path / 'made', labels, [0, 1], ap50)
    work_dir = tmp_path / 'wd'
    for (name, label, *_), seed in [(v, s) for v in variants for s in (0, 1)]:
        for made, expected in zip(runs[label][seed],
                                  demo.seed_work_dirs(name, str(work_dir / f'seed{seed}'))):
            (work_dir / f'seed{seed}').mkdir(parents=True, exist_ok=True)
            (tmp_path / 'made' / made).rename(expected)
    demo.main(['--seeds', '0,1', '--report-only', '--work-dir', str(work_dir)])
    out = capsys.readouterr().out
    assert '==> pretrain' not in out and '==> demo data' not in out
    report = json.loads((work_dir / 'compare_seeds.json').read_text())
    assert report['differences']['AP50'][labels[1]]['mean'] == pytest.approx(2.95)
    with pytest.raises(SystemExit) as stop:  # one `error:` line, exit status 2
        demo.main(['--seeds', '0,1,2', '--report-only', '--work-dir', str(work_dir)])
    assert stop.value.code == 2
    assert re.search(r'^error: no evaluated run in .*seed2/r50_slim', capsys.readouterr().err,
                     re.M)
    with pytest.raises(SystemExit):
        demo.main(['--report-only'])
