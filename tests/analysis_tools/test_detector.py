"""tools/benchmark.py at CI size: every variant runs and the report is complete (no timings
are asserted: speed belongs in docs/benchmarks.md)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from analysis_tools.detector_benchmark import (
    Result,
    load_variant_config,
    markdown,
    summarize,
    synthetic_batch,
    variants,
)

ROOT = Path(__file__).resolve().parents[2]


def load_cli():
    spec = importlib.util.spec_from_file_location('benchmark_cli', ROOT / 'tools' / 'benchmark.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_ci_size_run_reports_every_variant_and_case(tmp_path, capsys):
    out, md = tmp_path / 'bench.json', tmp_path / 'bench.md'
    load_cli().main(['--ci', '--device', 'cpu', '--archs', 'r101', '--size', '128', '192',
                     '--iters', '1', '--warmup',
                     '0', '--out', str(out), '--md', str(md)])
    report = json.loads(out.read_text())
    rows = {row['variant']: row for row in report['summary']['rows']}
    assert list(rows) == ['stock', 'ours', 'fast']
    for row in rows.values():
        for case in ('backbone_train', 'backbone_infer', 'detector_train', 'detector_infer'):
            assert row[case] > 0 and row[case + '_speedup'] > 0
    assert all(rows['stock'][c + '_speedup'] == 1.0 for c in ('backbone_train', 'detector_infer'))
    assert report['settings']['depth'] == 50 and report['settings']['batch'] == 1
    raw = {r['variant']: r for r in report['results']}
    assert len(raw['ours']['times_ms']['detector_train']) == 1
    assert '| r50 | fast | fp32 (no AMP on CPU) |' in md.read_text()  # depth 50 named
    assert 'detector train step (ms)' in capsys.readouterr().out


def test_variants_are_built_from_the_stock_and_our_configs():
    paths = load_cli().config_paths
    x101, r101 = paths('x101_32x4d'), paths('r101')
    # mmdet's by mmengine's package name; ours in the repository, located by the command line
    assert x101[0] == 'mmdet::faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py'
    assert x101[1:] == tuple(str(ROOT / 'configs' / f'faster_rcnn_x101_32x4d_fpn{suffix}.py')
                             for suffix in ('', '_fast'))
    stock, ours, fast = (load_variant_config(v, depth=50) for v in variants(x101, 'cpu'))
    assert stock.model.backbone.type == 'ResNeXt'  # mmdet's own class
    assert ours.model.backbone.type == fast.model.backbone.type == 'resnext_det.ResNeXt'
    assert fast.model.backbone.channels_last and fast.model.backbone.fold_frozen_bn
    assert {c.model.backbone.depth for c in (stock, ours, fast)} == {50}
    assert all(c.model.backbone.init_cfg is None for c in (stock, ours, fast))
    # no AMP on CPU; on GPU the fast config's own bf16, and fp16 with loss scaling beside it
    assert fast.optim_wrapper.type == 'OptimWrapper' and 'dtype' not in fast.optim_wrapper
    gpu = {v.name: load_variant_config(v, None) for v in variants(x101, 'cuda')}
    assert gpu['fast'].optim_wrapper.dtype == 'bfloat16'
    assert gpu['fast'].optim_wrapper.loss_scale == dict(enabled=False)
    assert gpu['fast fp16'].optim_wrapper.loss_scale == 'dynamic'
    assert gpu['stock --amp'].model.backbone.type == 'ResNeXt'
    compiled = variants(r101, 'cuda', compile_backbone=True)[-1]
    assert (compiled.name, compiled.amp, compiled.compile_backbone) == (
        'fast compiled', 'bfloat16', True)
    assert not any(v.compile_backbone for v in variants(r101, 'cpu'))


def test_speedups_and_x_over_r_ratios():
    def result(arch, variant, train_ms):
        r = Result(arch, variant, 'fp32', '')
        r.times_ms = {'backbone_train': [train_ms, train_ms * 3, train_ms],
                      'backbone_infer': [train_ms / 2] * 3}
        return r

    results = [result('x101_32x4d', 'stock', 60.0), result('x101_32x4d', 'fast', 20.0),
               result('r101', 'stock', 40.0), result('r101', 'fast', 25.0)]
    summary = summarize(results, batch_size=2)
    fast = summary['rows'][1]
    assert fast['backbone_train'] == 20.0 and fast['backbone_train_speedup'] == 3.0
    assert fast['backbone_infer'] == pytest.approx(200.0)  # 2 images per 10 ms
    ratios = {r['variant']: r['backbone_train'] for r in summary['x_over_r']}
    assert ratios == {'stock': 1.5, 'fast': 0.8}
    assert '| fast | x101_32x4d / r101 | 0.80 |' in markdown(summary)


def test_synthetic_batch_is_deterministic_and_inside_the_image():
    a, b = synthetic_batch(2, 96, 128), synthetic_batch(2, 96, 128)
    assert all(torch.equal(x, y) for x, y in zip(a['inputs'], b['inputs']))
    boxes = torch.cat([s.gt_instances.bboxes for s in a['data_samples']])
    assert torch.equal(boxes, torch.cat([s.gt_instances.bboxes for s in b['data_samples']]))
    assert (boxes[:, 2:] > boxes[:, :2]).all() and (boxes[:, 2] <= 128).all()
    assert (boxes[:, 3] <= 96).all() and a['inputs'][0].dtype == torch.uint8


def test_bad_arguments_are_refused():
    cli = load_cli()
    with pytest.raises(SystemExit):
        cli.parse_args(['--iters', '0'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            cli.parse_args(['--device', 'cuda'])
