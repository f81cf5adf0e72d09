"""tools/benchmark_input.py at CI size: the report is complete (no timing asserts: the machine's
load decides those)."""
import json

import pytest
from analysis_tools.input_pipeline_benchmark import make_cls_images


@pytest.mark.slow  # the CLI in a fresh interpreter (mmdet's import, the photos): ~20 s
def test_ci_run_reports_every_pipeline(run_tool, tmp_path):
    out = tmp_path / 'report.json'
    proc = run_tool('benchmark_input.py', '--ci', '--num-cls', 4, '--num-det', 2,
                    '--large-fraction', 0.25, '--work-dir', tmp_path / 'images', '--out', out,
                    timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    cls, det = report['cls'], report['det']
    names = {row['pipeline'] for row in cls['rows']}
    former = 'cv2 + v2 (ImageNetFolder until now)'
    assert names == {f'{split} ({k}) {what}' for split, k, what in [
        ('train', 'a', 'torchvision PIL'), ('train', 'b', former),
        ('train', 'c', 'RandomResizedCropDecoder'), ('test', 'a', 'torchvision PIL'),
        ('test', 'b', former), ('test', 'c', 'ResizeCenterCropDecoder'),
        ('train', 'd', 'RandomResizedCropDecoder, full decode'),
        ('test', 'd', 'ResizeCenterCropDecoder, full decode')]}
    assert {row['images'] for row in cls['rows']} == {'all', 'typical', 'large'}
    for row in cls['rows']:
        assert row['img_per_s'] > 0 and row['cores_for_8_gpus'] > 0
    # same seed, same boxes: the pipelines' crops match (v2 and the PIL pipeline to rounding)
    for name, stats in cls['pixel_stats'].items():
        if ' (a) ' not in name:
            assert stats['mean_abs_diff_vs_a'] < 3, name
    assert {row['pipeline'] for row in det['rows']} == {
        'mmdet boxes', 'mmdet boxes + masks', 'ours boxes', 'ours boxes + masks'}
    assert all(det['outputs_complete'].values())
    for part in ('Classification:', 'Detection:', 'train (c) RandomResizedCropDecoder',
                 'mean abs diff to (a)', 'ours boxes + masks', 'cores for 8 GPUs'):
        assert part in proc.stdout
    assert report['settings']['command'].startswith('python tools/benchmark_input.py --ci')


def test_generated_images_are_deterministic(tmp_path):
    first = make_cls_images(str(tmp_path / 'a'), 3, 0.34, seed=5)
    second = make_cls_images(str(tmp_path / 'b'), 3, 0.34, seed=5)
    assert [it['size'] for it in first] == [it['size'] for it in second]
    assert [it['large'] for it in first] == [True, False, False]
    for a, b in zip(first, second):
        assert open(a['path'], 'rb').read() == open(b['path'], 'rb').read()
