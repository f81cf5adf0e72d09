"""tools/benchmark.py at CI size: every variant runs and the report is complete (no timings
are asserted: speed belongs in docs/benchmarks.md)."""
import json
from pathlib import Path

import pytest
import torch
from analysis_tools import detector_benchmark
from analysis_tools.detector_benchmark import (
    Result,
    has_mask_head,
    load_variant_config,
    markdown,
    process_rss_mb,
    summarize,
    synthetic_batch,
    variants,
)
from mmdet.structures.mask import BitmapMasks
from model_testing import SMALL_ROI_SAMPLE  # tests/, on sys.path under pytest

ROOT = Path(__file__).resolve().parents[2]



def test_ci_size_run_reports_every_variant_and_case(tmp_path, capsys, benchmark_cli):
    out, md = tmp_path / 'bench.json', tmp_path / 'bench.md'
    benchmark_cli.main(['--ci', '--device', 'cpu', '--archs', 'r101', '--size', '128', '192',
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
    assert report['settings']['isolate'] is False and report['settings']['wall_s'] > 0
    environment = report['settings']['environment']
    assert environment['PyTorch'] == torch.__version__ and environment['MMDetection'] == '3.3.0'
    raw = {r['variant']: r for r in report['results']}
    assert len(raw['ours']['times_ms']['detector_train']) == 1
    assert '| r50 | fast | fp32 (no AMP on CPU) |' in md.read_text()  # depth 50 named
    assert 'detector train step (ms)' in capsys.readouterr().out


def test_variants_are_built_from_the_stock_and_our_configs(benchmark_cli):
    paths = benchmark_cli.config_paths
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
               result('r101', 'stock', 40.0), result('r101', 'fast', 25.0),
               # each ResNeXt pairs with the ResNet of its own detector and depth only
               result('mask_x50_32x4d', 'stock', 90.0), result('mask_r50', 'stock', 60.0),
               result('mask_r101', 'fast', 10.0)]
    summary = summarize(results, batch_size=2)
    fast = summary['rows'][1]
    assert fast['backbone_train'] == 20.0 and fast['backbone_train_speedup'] == 3.0
    assert fast['backbone_infer'] == pytest.approx(200.0)  # 2 images per 10 ms
    ratios = {(r['pair'], r['variant']): r['backbone_train'] for r in summary['x_over_r']}
    assert ratios == {('x101_32x4d / r101', 'stock'): 1.5, ('x101_32x4d / r101', 'fast'): 0.8,
                      ('mask_x50_32x4d / mask_r50', 'stock'): 1.5}
    table = markdown(summary)
    assert '| fast | x101_32x4d / r101 | 0.80 |' in table
    assert 'peak RSS' not in table  # measured only when each variant has its own process


def test_peak_rss_columns_come_from_the_train_case():
    r = Result('mask_x101_32x4d', 'ours', 'fp32', '')
    r.times_ms = {'detector_train': [4000.0], 'detector_infer': [900.0]}
    r.peak_rss_mb, r.start_rss_mb = {'detector_train': 6144.4}, {'detector_train': 800.2}
    row, = summarize([r], batch_size=2)['rows']
    assert (row['detector_train_peak_rss_mb'], row['detector_train_start_rss_mb']) == (
        6144.4, 800.2)
    assert 'detector_infer_peak_rss_mb' not in row
    header, _, line = markdown(summarize([r], batch_size=2)).splitlines()
    assert header.endswith('| peak RSS, train (MiB) | RSS before build (MiB) |')
    assert line.endswith('| - | 6144 | 800 |')  # no GPU peak on CPU, then the two RSS cells
    assert 0 < process_rss_mb(peak=False) <= process_rss_mb()


# Mask R-CNN's train step at tiny inputs is mostly its mask head over up to 128 positive RoIs
# (4 convs of 256 channels each): stock's and our config as they are, but sampling a few RoIs
@pytest.fixture
def small_mask_configs(tmp_path):
    stock, ours = tmp_path / 'stock_mask.py', tmp_path / 'ours_mask.py'
    stock.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py'" + SMALL_ROI_SAMPLE)
    ours.write_text(f"_base_ = '{ROOT / 'configs' / 'mask_rcnn_r101_fpn.py'}'" + SMALL_ROI_SAMPLE)
    return {'mask_r101': (str(stock), str(ours), None)}


def run_small(configs, **kwargs):
    return detector_benchmark.run(configs, parts=['detector'], depth=50, batch_size=1,
                                  height=96, width=128, warmup=0, iters=1, log=lambda m: None,
                                  **kwargs)


def test_mask_rcnn_train_and_inference_in_process(small_mask_configs):
    results = run_small(small_mask_configs)
    assert [(r.arch, r.variant) for r in results] == [('mask_r50', 'stock'), ('mask_r50', 'ours')]
    for row in summarize(results, batch_size=1)['rows']:
        assert row['detector_train'] > 0 and row['detector_infer'] > 0
        assert 'detector_train_peak_rss_mb' not in row  # one process for all: no clean peak


@pytest.mark.slow  # two fresh python processes that import torch and mmdet
def test_isolated_run_reports_each_variants_peak_rss(small_mask_configs):
    results = run_small(small_mask_configs, isolate=True, modes=['train'])
    rows = summarize(results, batch_size=1)['rows']
    assert [(row['arch'], row['variant']) for row in rows] == [
        ('mask_r50', 'stock'), ('mask_r50', 'ours')]
    for row, result in zip(rows, results):
        assert row['detector_train'] > 0 and len(result.times_ms['detector_train']) == 1
        assert 'detector_infer' not in row  # train only
        # the fresh process's own figures: imports before the build, the model and step after
        assert 0 < row['detector_train_start_rss_mb'] < row['detector_train_peak_rss_mb']
    assert 'peak RSS, train (MiB)' in markdown(summarize(results, batch_size=1))


@pytest.mark.slow  # a fresh python process that imports torch and mmdet
def test_a_failing_worker_raises_with_its_traceback(benchmark_cli):
    configs = {'r101': benchmark_cli.config_paths('r101')}
    with pytest.raises(RuntimeError, match=r'worker \(ours backbone\) failed:(.|\n)*depth'):
        # the depth is only looked up when the model is built: in the worker
        detector_benchmark.run(configs, parts=['backbone'], depth=7, warmup=0, iters=1,
                               only=['ours'], isolate=True, height=64, width=64,
                               batch_size=1, log=lambda msg: None)


def test_mask_archs_and_a_missing_fast_config(tmp_path, monkeypatch, benchmark_cli):
    cli = benchmark_cli
    stock, ours, fast = cli.config_paths('mask_x101_32x4d')
    assert stock == 'mmdet::mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py'
    assert ours == str(ROOT / 'configs' / 'mask_rcnn_x101_32x4d_fpn.py')
    configs = [load_variant_config(v, depth=50) for v in variants((stock, ours, fast), 'cpu')]
    assert all(has_mask_head(c) for c in configs)
    assert not has_mask_head(load_variant_config(variants(cli.config_paths('r101'), 'cpu')[0],
                                                 depth=50))
    # a repository without the fast config: stock and ours only, on CPU and GPU alike
    (tmp_path / 'mask_rcnn_r101_fpn.py').write_text('')
    monkeypatch.setattr(cli, 'CONFIGS', str(tmp_path))
    paths = cli.config_paths('mask_r101')
    assert paths[2] is None
    assert [v.name for v in variants(paths, 'cpu')] == ['stock', 'ours']
    assert [v.name for v in variants(paths, 'cuda', compile_backbone=True)] == [
        'stock', 'stock --amp', 'ours']


def test_presets_and_explicit_flags(benchmark_cli):
    cli = benchmark_cli
    full = cli.parse_args(['--cpu-full'])
    assert (full.device, full.batch, full.size, full.warmup, full.iters) == (
        'cpu', 2, [800, 1333], 1, 2)
    assert full.archs == ['x101_32x4d', 'mask_x101_32x4d'] and full.parts == ['detector']
    assert full.variants == ['stock', 'ours'] and full.modes == ['train'] and full.isolate
    assert cli.parse_args(['--cpu-full', '--iters', '3', '--archs', 'r101']).iters == 3
    plain = cli.parse_args([])
    assert plain.archs == ['x101_32x4d', 'r101'] and not plain.isolate
    assert plain.modes == ['train', 'infer'] and plain.size == [800, 1216]
    with pytest.raises(SystemExit):
        cli.parse_args(['--ci', '--cpu-full'])


def test_synthetic_masks_fill_their_boxes():
    plain, with_masks = synthetic_batch(2, 48, 64), synthetic_batch(2, 48, 64, masks=True)
    assert 'masks' not in plain['data_samples'][0].gt_instances
    for a, b in zip(plain['data_samples'], with_masks['data_samples']):
        assert torch.equal(a.gt_instances.bboxes, b.gt_instances.bboxes)
        masks = b.gt_instances.masks
        assert isinstance(masks, BitmapMasks) and (masks.height, masks.width) == (48, 64)
        assert masks.masks.shape == (8, 48, 64)
        # each mask is its box, to the pixel the box's corners fall in
        for mask, box in zip(masks.masks, b.gt_instances.bboxes):
            ys, xs = mask.nonzero()
            assert (xs.min(), ys.min()) == tuple(box[:2].floor().long().tolist())
            assert (xs.max(), ys.max()) == tuple(box[2:].floor().clamp(
                max=torch.tensor([63, 47])).long().tolist())


def test_synthetic_batch_is_deterministic_and_inside_the_image():
    a, b = synthetic_batch(2, 96, 128), synthetic_batch(2, 96, 128)
    assert all(torch.equal(x, y) for x, y in zip(a['inputs'], b['inputs']))
    boxes = torch.cat([s.gt_instances.bboxes for s in a['data_samples']])
    assert torch.equal(boxes, torch.cat([s.gt_instances.bboxes for s in b['data_samples']]))
    assert (boxes[:, 2:] > boxes[:, :2]).all() and (boxes[:, 2] <= 128).all()
    assert (boxes[:, 3] <= 96).all() and a['inputs'][0].dtype == torch.uint8


def test_bad_arguments_are_refused(benchmark_cli):
    cli = benchmark_cli
    with pytest.raises(SystemExit):
        cli.parse_args(['--iters', '0'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            cli.parse_args(['--device', 'cuda'])
