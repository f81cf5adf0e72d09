"""The synthetic val2017-like set and the evaluator comparison of tools/benchmark_eval.py."""
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from analysis_tools import coco_eval_benchmark as coco_eval
from analysis_tools.coco_eval_benchmark import (
    COCO_CATEGORY_IDS,
    EVALUATORS,
    SUMMARY_NAMES,
    benchmark,
    compare,
    format_markdown,
    make_coco_ground_truth,
    make_detections,
    time_evaluator,
)

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'benchmark_eval.py'


@pytest.fixture(scope='module')
def small_set():
    ground_truth = make_coco_ground_truth(num_images=50, seed=3)
    return ground_truth, make_detections(ground_truth, dets_per_image=100, seed=3)


@pytest.fixture(scope='module')
def evaluated(small_set):
    """Every evaluator run once on the small set."""
    return {name: time_evaluator(run, *small_set, repeats=1) for name, run in EVALUATORS.items()}


def test_same_seed_same_json_other_seed_other_json(small_set):
    ground_truth, detections = small_set
    again = make_coco_ground_truth(num_images=50, seed=3)
    assert json.dumps(again) == json.dumps(ground_truth)
    assert json.dumps(make_detections(again, seed=3)) == json.dumps(detections)
    other = make_coco_ground_truth(num_images=50, seed=4)
    assert json.dumps(other) != json.dumps(ground_truth)
    assert json.dumps(make_detections(ground_truth, seed=4)) != json.dumps(detections)


def test_ground_truth_looks_like_val2017():
    ground_truth = make_coco_ground_truth(num_images=1000, seed=0)
    images, anns = ground_truth['images'], ground_truth['annotations']
    assert [cat['id'] for cat in ground_truth['categories']] == list(COCO_CATEGORY_IDS)
    assert len(COCO_CATEGORY_IDS) == 80 and max(COCO_CATEGORY_IDS) == 90
    assert ground_truth['categories'][0]['name'] == 'person'
    assert len(images) == 1000 and len({img['id'] for img in images}) == 1000
    assert all(max(img['width'], img['height']) <= 640 for img in images)
    assert np.median([img['width'] * img['height'] for img in images]) == 640 * 480
    assert len(anns) == round(7.36 * 1000)  # val2017's boxes per image
    assert [ann['id'] for ann in anns] == list(range(1, len(anns) + 1))
    sizes = {img['id']: (img['width'], img['height']) for img in images}
    for ann in anns:
        x, y, w, h = ann['bbox']
        width, height = sizes[ann['image_id']]
        assert 0 <= x and 0 <= y and x + w <= width + 0.01 and y + h <= height + 0.01
        assert 0 < ann['area'] <= w * h and ann['category_id'] in COCO_CATEGORY_IDS
    area = np.array([ann['area'] for ann in anns])
    assert 0.35 < np.mean(area < 32**2) < 0.45  # val2017: 41% small
    assert 0.3 < np.mean((area >= 32**2) & (area < 96**2)) < 0.4  # 34% medium
    assert 0.2 < np.mean(area >= 96**2) < 0.3  # 24% large
    assert 0.005 < np.mean([ann['iscrowd'] for ann in anns]) < 0.02
    assert {ann['iscrowd'] for ann in anns} == {0, 1}
    assert 0.25 < np.mean([ann['category_id'] == 1 for ann in anns]) < 0.35  # person
    assert len({ann['category_id'] for ann in anns}) == 80


def test_detections_are_a_result_file(small_set):
    ground_truth, detections = small_set
    sizes = {img['id']: (img['width'], img['height']) for img in ground_truth['images']}
    per_image = {}
    for det in detections:
        per_image[det['image_id']] = per_image.get(det['image_id'], 0) + 1
        x, y, w, h = det['bbox']
        width, height = sizes[det['image_id']]
        assert 0 <= x and 0 <= y and x + w <= width + 1e-3 and y + h <= height + 1e-3
        assert 0 < det['score'] < 1 and det['category_id'] in COCO_CATEGORY_IDS
        assert set(det) == {'image_id', 'bbox', 'score', 'category_id'}
    assert set(per_image.values()) == {100} and set(per_image) == set(sizes)
    scores = np.array([det['score'] for det in detections])
    assert np.array_equal(scores, scores.astype(np.float32))  # float32, as mmdet writes them


def test_evaluators_give_the_same_stats(evaluated):
    reference = evaluated['pycocotools']
    assert 0.2 < reference['stats'][0] < 0.6  # a plausible detector, not a degenerate case
    for name, result in evaluated.items():
        comparison = compare(reference, result)
        assert comparison['stats_max_abs_diff'] <= 2.3e-16, name
        assert comparison['stats_within_1e12'] and comparison['recall_identical'], name
        # the one way the precision arrays may differ (see coco_eval.compare)
        differs = result['precision'] != reference['precision']
        assert np.all(result['precision'][differs] == 1.0), name
        assert np.all(reference['precision'][differs] == 1 / (1 + np.spacing(1))), name


def test_benchmark_report_and_table():
    report = benchmark(num_images=5, repeats=2, seed=0)
    json.dumps(report)  # the --out file
    assert report['config']['detections'] == 500 and report['config']['reference'] == 'pycocotools'
    assert set(report['results']) == set(EVALUATORS)
    assert report['within_1e12']
    assert report['environment']['versions']['faster-coco-eval'] is not None
    for result in report['results'].values():
        assert set(result['stats']) == set(SUMMARY_NAMES)
        assert len(result['seconds_per_run']) == 2
        assert result['seconds']['total'] > 0
    table = format_markdown(report)
    assert table.splitlines()[0].startswith('| evaluator | loadRes (s) | evaluate (s)')
    assert all(f'| {name} |' in table for name in EVALUATORS)
    assert '| AP50 |' in table and '| ARl |' in table


def test_command_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'report.json'
    monkeypatch.setattr(sys, 'argv', [str(TOOL), '--images', '3', '--repeats', '1', '--out',
                                      str(out), '--evaluators', 'pycocotools',
                                      'faster-coco-eval'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(TOOL), run_name='__main__')
    assert exit_info.value.code == 0
    assert '| faster-coco-eval |' in capsys.readouterr().out
    assert set(json.loads(out.read_text())['results']) == {'pycocotools', 'faster-coco-eval'}


def test_loadres_inputs_are_left_untouched(small_set):
    # both loadRes write keys into the dicts they get: the timing harness hands them copies
    ground_truth, detections = small_set
    before = json.dumps([ground_truth, detections])
    for run in coco_eval.EVALUATORS.values():
        time_evaluator(run, ground_truth, detections[:300], repeats=1)
    assert json.dumps([ground_truth, detections]) == before
