"""`tools/demo.py --seeds S,.. --fast`: per seed one X-50 pretraining and export, its detector
on the plain and on the fast path from that export, and the paired difference fast - plain
(WORK_DIR/fast_seeds.json) with a verdict on AP@0.5."""
import json
import math
import re
import statistics

import pytest
from scipy import stats

PLAIN = 'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_demo.py'
FAST = 'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_fast_demo.py'
CLS = 'configs/demo/resnext50_8x4d_slim_cls_demo.py'


@pytest.fixture(scope='module')
def demo(demo_cli):
    return demo_cli


def steps(out):
    """The `==> step: command` lines a run printed, as (step, command)."""
    return re.findall(r'^==> ([^:]+): (.*)$', out, re.M)


def test_dry_run_pretrains_once_and_detects_on_both_paths_per_seed(demo, capsys):
    demo.main(['--seeds', '0,1', '--fast', '--dry-run', '--work-dir', 'wd'])
    printed = steps(capsys.readouterr().out)
    assert not any('r50' in command for _, command in printed)  # no comparison with R-50
    for seed in (0, 1):
        export = f'wd/seed{seed}/backbones/x50_8x4d_slim.pth'
        pretrains = [c for s, c in printed if s.startswith('pretrain') and f'seed{seed}/' in c]
        assert pretrains == [f'tools/train.py {CLS} --work-dir wd/seed{seed}/x50_8x4d_slim_cls '
                             f'--cfg-options randomness.seed={seed}']
        exports = [c for s, c in printed if s.startswith('export') and f'seed{seed}/' in c]
        assert len(exports) == 1 and exports[0].split()[2] == export
        from_export = (f'--cfg-options model.backbone.init_cfg.checkpoint={export} '
                       f'randomness.seed={seed}')
        trains = [c for s, c in printed
                  if s.startswith('train') and f'seed{seed}/' in c]
        assert trains == [
            f'tools/train.py {PLAIN} --work-dir wd/seed{seed}/x50_8x4d_slim {from_export}',
            f'tools/train.py {FAST} --work-dir wd/seed{seed}/x50_8x4d_slim_fast {from_export}']
        tests = [c for s, c in printed if s.startswith('test') and f'seed{seed}/' in c]
        assert [c.split()[1] for c in tests] == [PLAIN, FAST]
        assert all(c.endswith(from_export) for c in tests)
    assert sum(s.startswith('pretrain') for s, _ in printed) == 2


def fabricate(root, seed, plain_ap50, fast_ap50):
    """One seed's work dirs as tools/train.py and tools/test.py leave them: the classifier's
    logged top-1, and each path's test_results.json with the chosen AP@0.5."""
    vis_data = root / f'seed{seed}' / 'x50_8x4d_slim_cls' / '20260101_000000' / 'vis_data'
    vis_data.mkdir(parents=True)
    vis_data.joinpath('scalars.json').write_text(
        json.dumps({'accuracy/top1': 85.0 + seed, 'step': 5}) + '\n'
        + json.dumps({'accuracy/top1': 90.0 + seed, 'step': 10}) + '\n')
    for name, config, ap50 in (('x50_8x4d_slim', PLAIN, plain_ap50),
                               ('x50_8x4d_slim_fast', FAST, fast_ap50)):
        det_dir = root / f'seed{seed}' / name
        det_dir.mkdir()
        value = ap50 / 100  # COCO's fractions, as tools/test.py writes them
        det_dir.joinpath('test_results.json').write_text(json.dumps(dict(
            config=config, checkpoint='epoch_12.pth',
            metrics={'coco/bbox_mAP': value - 0.2, 'coco/bbox_mAP_50': value,
                     'coco/bbox_mAP_75': value - 0.1})))


def paired_ci(fast, plain):
    """Mean and 95% CI of fast - plain by hand: mean +- t_{0.975, n-1} * sd / sqrt(n)."""
    diffs = [f - p for f, p in zip(fast, plain)]
    n, mean = len(diffs), statistics.fmean(diffs)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean, (mean - half, mean + half)


@pytest.mark.parametrize('fast_ap50, inside', [
    ((90.0, 95.9, 91.1), True),  # fast - plain: -0.2, +0.7, -0.8
    ((92.2, 97.7, 94.1), False),  # +2.0, +2.5, +2.2: 0 is outside the interval
])
def test_report_only_writes_the_paired_difference_and_the_verdict(
        demo, tmp_path, capsys, monkeypatch, fast_ap50, inside):
    plain_ap50 = (90.2, 95.2, 91.9)
    for seed in (0, 1, 2):
        fabricate(tmp_path, seed, plain_ap50[seed], fast_ap50[seed])
    ran = []  # the curves' plot is tools/compare_results.py's (tested there): record, not run
    monkeypatch.setattr(demo, 'run', lambda step, args: ran.append((step, args)))
    demo.main(['--seeds', '0,1,2', '--fast', '--report-only', '--work-dir', str(tmp_path)])
    out = capsys.readouterr().out
    assert [step for step, _ in ran] == ['curves']
    assert str(tmp_path / 'curves_fast_seeds.png') in ran[0][1]

    report = json.loads((tmp_path / 'fast_seeds.json').read_text())
    assert report['baseline'] == 'plain path'
    diff = report['differences']['AP50']['fast path']
    mean, ci = paired_ci(fast_ap50, plain_ap50)
    assert diff['mean'] == pytest.approx(mean)
    assert diff['ci'] == pytest.approx(ci)
    assert diff['p_value'] == pytest.approx(stats.ttest_rel(fast_ap50, plain_ap50).pvalue)
    assert set(report['differences']) == {'AP', 'AP50', 'AP75'}  # top-1: one classifier
    assert report['runs']['fast path']['0']['top1'] == report['runs']['plain path']['0']['top1']
    assert 'complexity' not in report  # one backbone: nothing to compare
    assert report['equal_within_ci'] is inside

    [verdict] = [line for line in out.splitlines() if line.startswith('verdict:')]
    assert f'{mean:+.1f}, 95% CI [{ci[0]:+.1f}, {ci[1]:+.1f}] over 3 paired seeds' in verdict
    if inside:
        assert 'equal on the two paths within the paired 95% CI' in verdict
    else:
        assert 'differs between the two paths beyond the paired 95% CI' in verdict
    assert report['notes'] == [verdict]
    assert '| AP@0.5 |' in out and 'fast path − plain path' in out


@pytest.mark.parametrize('flags, fix', [
    (['--seeds', '0,1', '--fast', '--ablate'], 'run --ablate, and --seeds S,.. --fast'),
    (['--ablate', '--fast'], 'run --ablate, and --seeds S,.. --fast'),
    (['--seeds', '0,1', '--fast', '--compare'], 'drop --compare'),
])
def test_fast_seeds_refuses_a_second_baseline(demo, capsys, flags, fix):
    with pytest.raises(SystemExit) as stop:
        demo.main([*flags, '--dry-run'])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r'error: .*' + re.escape(fix), err), err


def test_on_a_gpu_the_fast_path_adds_bf16_autocast_and_nothing_else_does(demo, capsys,
                                                                          monkeypatch):
    """mmengine's AmpOptimWrapper needs CUDA, so the demo's fast config leaves AMP out; where
    torch sees a GPU, the demo completes the fast path with it (the plain path stays fp32)."""
    import torch
    amp = ' '.join(demo.FAST_GPU_OPTIONS)
    for gpu in (False, True):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: gpu)
        demo.main(['--seeds', '0', '--fast', '--dry-run', '--work-dir', 'wd'])
        seeds_run = steps(capsys.readouterr().out)
        demo.main(['--fast', '--dry-run', '--work-dir', 'wd'])
        single_run = steps(capsys.readouterr().out)
        for printed in (seeds_run, single_run):
            detections = [c for s, c in printed if s.startswith(('train', 'test'))
                          and 'cls_demo' not in c]
            fast = [c for c in detections if FAST in c]
            assert len(fast) == 2 and len(detections) > 2
            assert all(c.endswith(amp) == gpu for c in fast), fast
            assert not any(amp in c for c in detections if FAST not in c)
