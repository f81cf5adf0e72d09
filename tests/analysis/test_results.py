"""tools/compare_results.py reads what tools/test.py and training leave in work dirs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def fake_run(work_dir, config, ap, ap50, losses):
    work_dir.mkdir(parents=True)
    metrics = {'coco/bbox_mAP': ap, 'coco/bbox_mAP_50': ap50, 'coco/bbox_mAP_75': ap / 2,
               'coco/bbox_mAP_s': 0.1, 'coco/bbox_mAP_m': 0.2, 'coco/bbox_mAP_l': 0.3}
    (work_dir / 'test_results.json').write_text(json.dumps(
        dict(config=f'configs/{config}.py', checkpoint='x.pth', metrics=metrics)))
    vis = work_dir / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    rows = []
    for epoch, loss in enumerate(losses, 1):
        rows += [dict(loss=loss + 0.1, epoch=epoch, iter=epoch * 2 - 1, step=epoch * 2 - 1),
                 dict(loss=loss - 0.1, epoch=epoch, iter=epoch * 2, step=epoch * 2),
                 {'coco/bbox_mAP_50': ap50 * epoch / len(losses), 'step': epoch}]
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in rows))


@pytest.mark.slow
def test_table_deltas_and_plot(tmp_path):
    fake_run(tmp_path / 'r50', 'faster_rcnn_r50_fpn', 0.374, 0.581, [1.0, 0.8])
    fake_run(tmp_path / 'x50', 'faster_rcnn_x50_32x4d_fpn', 0.390, 0.602, [0.9, 0.7])
    plot = tmp_path / 'curves.png'
    out = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'compare_results.py'), str(tmp_path / 'r50'),
         str(tmp_path / 'x50'), '--plot', str(plot)],
        capture_output=True, text=True, check=True).stdout
    r50 = next(line for line in out.splitlines() if line.startswith('| faster_rcnn_r50_fpn'))
    x50 = next(line for line in out.splitlines() if line.startswith('| faster_rcnn_x50'))
    assert '| 37.4 | 58.1 | 18.7 |' in r50
    assert r50.endswith('| 37.4 |') and x50.endswith('| - |')  # model zoo box AP
    assert '+1.6 | +2.1 | +0.8' in x50  # AP, AP@0.5, AP@0.75 over the first run
    assert '+2.1 AP@0.5' in out  # the paper's claim is printed next to it
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_missing_results_name_the_fix(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'compare_results.py'),
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and 'tools/test.py' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_seeds_of_one_config_are_summarised_and_plotted_with_spread(tmp_path):
    for seed, (ap50, losses) in enumerate([(0.58, [1.0, 0.8]), (0.62, [1.2, 0.6])]):
        fake_run(tmp_path / f'seed{seed}' / 'r50', 'faster_rcnn_r50_fpn', 0.37, ap50, losses)
        fake_run(tmp_path / f'seed{seed}' / 'x50', 'faster_rcnn_x50_32x4d_fpn', 0.39, 0.6, losses)
    plot = tmp_path / 'curves.png'
    out = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'compare_results.py'),
         *[str(tmp_path / f'seed{s}' / m) for s in (0, 1) for m in ('r50', 'x50')],
         '--plot', str(plot)], capture_output=True, text=True, check=True).stdout
    row = next(line for line in out.splitlines() if line.startswith('| faster_rcnn_r50_fpn (2)'))
    assert '| 37.0 ± 0.0 | 60.0 ± 2.8 |' in row  # mean ± sample sd over the two seeds
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_mask_rcnn_runs_get_a_mask_ap_table_next_to_their_box_ap(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('compare_cli',
                                                  ROOT / 'tools' / 'compare_results.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    fake_run(tmp_path / 'faster', 'faster_rcnn_x50_32x4d_fpn', 0.390, 0.602, [0.9])
    fake_run(tmp_path / 'mask', 'mask_rcnn_x101_32x4d_fpn', 0.419, 0.630, [0.9])
    results = tmp_path / 'mask' / 'test_results.json'
    run = json.loads(results.read_text())
    run['metrics'].update({'coco/segm_mAP': 0.375, 'coco/segm_mAP_50': 0.598,
                           'coco/segm_mAP_75': 0.401, 'coco/segm_mAP_s': 0.17,
                           'coco/segm_mAP_m': -1.0, 'coco/segm_mAP_l': 0.55})
    results.write_text(json.dumps(run))
    cli.main([str(tmp_path / 'faster'), str(tmp_path / 'mask')])
    out = capsys.readouterr().out
    mask_rows = [line for line in out.splitlines() if line.startswith('| mask_rcnn')]
    # the box table has both runs; the mask table only the Mask R-CNN, -1 (no objects) as '-'
    assert len(mask_rows) == 2 and not any(
        line.startswith('| faster_rcnn') and 'mask AP' in line for line in out.splitlines())
    assert mask_rows[1].endswith('| 37.5 | 59.8 | 40.1 | 17.0 | - | 55.0 | 41.9 | -4.4 |')
    assert '| run (Mask R-CNN) | mask AP | mask AP@0.5 |' in out
