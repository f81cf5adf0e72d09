"""resnext_det.CocoMetric: mmdet's CocoMetric on faster-coco-eval, same numbers as pycocotools."""
import json
import sys

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from faster_coco_eval import COCOeval_faster
from mmdet.evaluation import CocoMetric as MMDetCocoMetric
from mmdet.evaluation.metrics import coco_metric as mmdet_coco_metric
from mmdet.registry import METRICS
from mmengine.registry import DefaultScope
from pycocotools.cocoeval import COCOeval as PycocotoolsCOCOeval

from resnext_det.evaluation import CocoMetric, coco_metric

CLASSES = ('car', 'bicycle')
HEIGHT, WIDTH = 480, 640


def box_mask(x1, y1, x2, y2):
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[int(y1):int(y2), int(x1):int(x2)] = 1
    return mask


def encoded(mask):
    rle = mask_util.encode(np.asfortranarray(mask))
    rle['counts'] = rle['counts'].decode()
    return rle


@pytest.fixture
def ann_file(tmp_path):
    """Two images: small, medium and large boxes of both classes and a crowd region, in mmdet's
    test layout (category ids from 0)."""
    boxes = {  # image id -> (category id, xywh, iscrowd)
        0: [(0, [50, 60, 20, 20], 0), (0, [100, 120, 30, 30], 0), (1, [150, 160, 40, 40], 0),
            (0, [250, 260, 100, 100], 0), (1, [400, 50, 150, 120], 0)],
        1: [(1, [10, 10, 25, 25], 0), (0, [300, 200, 60, 80], 0), (0, [420, 250, 200, 200], 1)],
    }
    annotations = []
    for image_id, anns in boxes.items():
        for category_id, (x, y, w, h), iscrowd in anns:
            mask = box_mask(x + 2, y, x + w, y + h)  # a mask a little smaller than its box
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                    category_id=category_id, bbox=[x, y, w, h],
                                    area=int(mask.sum()), iscrowd=iscrowd,
                                    segmentation=encoded(mask)))
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(dict(
        images=[dict(id=i, width=WIDTH, height=HEIGHT, file_name=f'{i}.jpg') for i in (0, 1)],
        annotations=annotations,
        categories=[dict(id=i, name=name, supercategory=name) for i, name in enumerate(CLASSES)])))
    return str(path)


def predictions(image_id, boxes, scores, labels):
    """One ``process()`` data sample: an mmdet detector's output for one image."""
    masks = np.stack([box_mask(*box) for box in boxes]) if boxes else \
        np.zeros((0, HEIGHT, WIDTH), np.uint8)
    return dict(img_id=image_id, ori_shape=(HEIGHT, WIDTH), pred_instances=dict(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor(scores, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.int64), masks=torch.from_numpy(masks)))


# hits, a loose box, a wrong class, a duplicate, a miss and a box in the crowd region
DATA_SAMPLES = [
    predictions(0, [[50, 60, 70, 80], [103, 124, 133, 150], [150, 160, 190, 200],
                    [250, 260, 350, 360], [260, 270, 350, 360], [400, 50, 560, 170]],
                [0.95, 0.9, 0.8, 0.85, 0.6, 0.3], [0, 0, 0, 0, 0, 1]),
    predictions(1, [[300, 200, 360, 280], [430, 260, 600, 440], [12, 10, 37, 35]],
                [0.7, 0.5, 0.2], [0, 0, 0]),
]


def evaluate(ann_file, data_samples=DATA_SAMPLES, **kwargs):
    metric = CocoMetric(ann_file=ann_file, **kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, data_samples)
    return metric.evaluate(size=len(data_samples))


def test_registered_as_resnext_det_cocometric(ann_file):
    # as in an mmdet config (default_scope='mmdet'), whatever scope an earlier test left
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(dict(type='resnext_det.CocoMetric', ann_file=ann_file))
    assert type(metric) is CocoMetric and isinstance(metric, MMDetCocoMetric)
    assert metric.backend == 'faster_coco_eval'
    assert METRICS.get('CocoMetric') is MMDetCocoMetric  # mmdet's stays what it was


@pytest.mark.parametrize('kwargs, keys', [
    (dict(metric=['bbox', 'segm'], classwise=True),
     [f'coco/{kind}_{item}' for kind in ('bbox', 'segm')
      for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')] +
     ['coco/car_precision', 'coco/bicycle_precision']),
    (dict(metric='proposal'),
     ['coco/AR@100', 'coco/AR@300', 'coco/AR@1000', 'coco/AR_s@1000', 'coco/AR_m@1000',
      'coco/AR_l@1000']),
    (dict(metric='bbox', metric_items=['mAP_50', 'AR@100', 'AR_l@1000']),
     ['coco/bbox_mAP_50', 'coco/bbox_AR@100', 'coco/bbox_AR_l@1000']),
    # maxDets (1, 2, 3) has no 100: pycocotools' stats[0] is then -1, and so is ours
    (dict(metric='bbox', proposal_nums=(1, 2, 3)),
     ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
      'coco/bbox_mAP_m', 'coco/bbox_mAP_l']),
])
def test_same_results_as_pycocotools(ann_file, kwargs, keys):
    ours = evaluate(ann_file, **kwargs)
    reference = evaluate(ann_file, backend='pycocotools', **kwargs)
    assert sorted(ours) == sorted(keys)
    assert ours == reference
    assert ours == evaluate(ann_file, **dict(kwargs, backend='faster_coco_eval'))
    assert any(0 < value < 1 for value in ours.values())  # not a trivial all-ones case


def test_same_results_as_mmdet_cocometric(ann_file, tmp_path):
    stock = MMDetCocoMetric(ann_file=ann_file, metric=['bbox', 'segm'], classwise=True)
    stock.dataset_meta = dict(classes=CLASSES)
    stock.process({}, DATA_SAMPLES)
    ours = evaluate(ann_file, metric=['bbox', 'segm'], classwise=True,
                    outfile_prefix=str(tmp_path / 'results'))
    assert ours == stock.evaluate(size=len(DATA_SAMPLES))
    assert ours['coco/bbox_mAP'] == 0.532 and ours['coco/bbox_mAP_75'] == 0.454
    assert ours['coco/segm_mAP_75'] == 0.644 and ours['coco/car_precision'] == 0.762
    # the json files mmdet writes under outfile_prefix
    assert (tmp_path / 'results.bbox.json').is_file()
    assert (tmp_path / 'results.segm.json').is_file()


def test_every_validation_gives_the_same_numbers(ann_file):
    # both evaluators write into the ground-truth dicts of the metric's COCO index, which lives
    # as long as the metric, i.e. across every validation of a training run
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=CLASSES)
    results = []
    for _ in range(2):
        metric.process({}, DATA_SAMPLES)
        results.append(metric.evaluate(size=len(DATA_SAMPLES)))
    assert results[0] == results[1] == evaluate(ann_file, metric=['bbox', 'segm'],
                                                backend='pycocotools')


def test_ground_truth_from_the_dataset_without_ann_file():
    instances = [dict(bbox_label=0, bbox=[50, 60, 70, 80], ignore_flag=0,
                      mask=encoded(box_mask(50, 60, 70, 80))),
                 dict(bbox_label=1, bbox=[150, 160, 190, 200], ignore_flag=0,
                      mask=encoded(box_mask(150, 160, 190, 200)))]
    sample = predictions(0, [[50, 60, 70, 80], [150, 160, 190, 210], [10, 10, 50, 50]],
                         [0.9, 0.8, 0.7], [0, 1, 1])
    # proposal_fast is mmdet's own recall code, no COCOeval; on one image only, as mmdet 3.3's
    # eval_recalls fails on ragged per-image ground truth with numpy 2 (stock CocoMetric too)
    results = [evaluate(None, [dict(sample, instances=instances)],
                        metric=['bbox', 'segm', 'proposal_fast'], backend=backend)
               for backend in coco_metric.BACKENDS]
    assert results[0] == results[1] and results[0]['coco/bbox_mAP_50'] == 1.0
    assert results[0]['coco/AR@100'] == 0.85  # the second box has IoU 0.8


def test_empty_results(ann_file):
    empty = [predictions(0, [], [], [])]
    assert evaluate(ann_file, empty) == evaluate(ann_file, empty, backend='pycocotools') == {}


def test_ap_counts_the_first_100_detections_as_pycocotools_does(ann_file):
    # 100 high-score misses, then one hit: AP within 100 detections is 0; faster-coco-eval's own
    # summarize takes AP at maxDets[-1] = 1000 and would count the hit
    misses = [[x, 5, x + 3, 8] for x in range(0, 600, 6)]
    sample = predictions(1, misses + [[10, 10, 35, 35]], [0.9] * 100 + [0.1], [1] * 101)
    results = [evaluate(ann_file, [sample], backend=backend) for backend in coco_metric.BACKENDS]
    assert results[0] == results[1]
    assert results[0]['coco/bbox_mAP'] == 0.0 and results[0]['coco/bbox_mAP_50'] > 0


def test_faster_coco_eval_does_the_evaluation(ann_file, monkeypatch):
    metric = CocoMetric(ann_file=ann_file)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, DATA_SAMPLES)
    evaluated = []

    def evaluate_spy(self):
        evaluated.append(type(self))
        assert mmdet_coco_metric.COCOeval is PycocotoolsCOCOeval  # mmdet's module untouched
        return base_evaluate(self)

    base_evaluate = metric.coco_eval_class.evaluate
    monkeypatch.setattr(metric.coco_eval_class, 'evaluate', evaluate_spy)
    metric.evaluate(size=len(DATA_SAMPLES))
    assert evaluated == [metric.coco_eval_class]
    assert issubclass(metric.coco_eval_class, COCOeval_faster)
    assert mmdet_coco_metric.COCOeval is PycocotoolsCOCOeval


def test_mmdet_method_reused_with_our_evaluator_only():
    method = coco_metric.mmdet_compute_metrics_with(object)
    assert method.__code__ is mmdet_coco_metric.CocoMetric.compute_metrics.__code__
    assert method.__globals__['COCOeval'] is object
    assert mmdet_coco_metric.COCOeval is PycocotoolsCOCOeval


def test_falls_back_to_pycocotools_with_one_warning(ann_file, monkeypatch):
    reference = evaluate(ann_file, metric=['bbox', 'segm'])
    monkeypatch.setitem(sys.modules, 'faster_coco_eval', None)  # makes its import fail
    monkeypatch.setattr(coco_metric, '_warned_about_fallback', False)
    logged = []
    monkeypatch.setattr(coco_metric, 'print_log',
                        lambda message, **kwargs: logged.append((message, kwargs['level'])))
    metrics = [CocoMetric(ann_file=ann_file, metric=['bbox', 'segm']) for _ in range(2)]
    assert [metric.backend for metric in metrics] == ['pycocotools'] * 2
    assert all(metric.coco_eval_class is None for metric in metrics)
    assert len(logged) == 1 and logged[0][1] == 30  # logging.WARNING
    assert 'faster_coco_eval cannot be imported' in logged[0][0]
    assert evaluate(ann_file, metric=['bbox', 'segm']) == reference


def test_arguments(ann_file):
    with pytest.raises(ValueError, match='backend must be one of'):
        CocoMetric(ann_file=ann_file, backend='detectron2')
    with pytest.raises(KeyError, match='metric should be one of'):  # mmdet's checks still run
        CocoMetric(ann_file=ann_file, metric='unknown')
    multi_process = CocoMetric(ann_file=ann_file, use_mp_eval=True)
    assert multi_process.backend == 'pycocotools' and multi_process.coco_eval_class is None
    assert CocoMetric(ann_file=ann_file, backend='pycocotools').coco_eval_class is None


# --- Mask R-CNN outputs on polygon ground truth, against pycocotools run by hand -------------

POLY_CLASSES = ('person', 'dog', 'kite')
POLY_HEIGHT, POLY_WIDTH = 160, 200
# mmdet's CocoMetric output keys, in the order of COCOeval.stats (names fixed by mmdet whatever
# proposal_nums is: 'AR@100' is stats[6], AR at proposal_nums[0] detections)
STAT_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
              'AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000')


def polygon_mask(polygon):
    """The mask pycocotools rasterises a COCO polygon to (the ground truth the metric sees)."""
    rle = mask_util.frPyObjects([polygon], POLY_HEIGHT, POLY_WIDTH)
    return mask_util.decode(mask_util.merge(rle))


@pytest.fixture(scope='module')
def polygon_case(tmp_path_factory):
    """Five images with 2-4 polygon objects each of three classes (small, medium and large, one
    crowd region as RLE), and Mask R-CNN-like predictions: the ground-truth masks shifted,
    dilated or eroded, with boxes around them off by a few pixels; some objects missed, one
    duplicate, one wrong class, false positives, scores spread over (0.05, 1)."""
    import cv2
    rng = np.random.default_rng(0)
    kernel = np.ones((3, 3), np.uint8)
    perturb = [lambda m: np.roll(m, (2, -3), axis=(0, 1)),
               lambda m: cv2.dilate(m, kernel, iterations=2),
               lambda m: cv2.erode(m, kernel, iterations=1),
               lambda m: np.roll(cv2.dilate(m, kernel), (-4, 1), axis=(0, 1)),
               lambda m: np.roll(m, (1, 6), axis=(0, 1))]
    images, annotations, samples = [], [], []
    for image_id in range(5):
        images.append(dict(id=image_id, width=POLY_WIDTH, height=POLY_HEIGHT,
                           file_name=f'{image_id}.jpg'))
        masks, boxes, scores, labels = [], [], [], []
        for _ in range(rng.integers(2, 5)):
            label = int(rng.integers(len(POLY_CLASSES)))
            # in turn: areas of ~200 and ~500 px (small), ~1700 and ~4500 (medium), ~13000 (large)
            radius = float((9, 14, 25, 40, 70)[len(annotations) % 5])
            cx, cy = rng.uniform(radius, POLY_WIDTH - radius), rng.uniform(radius,
                                                                             POLY_HEIGHT - radius)
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))
            radii = radius * rng.uniform(0.75, 1.0, len(angles))
            polygon = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
            polygon = np.clip(polygon, 0, [POLY_WIDTH - 1, POLY_HEIGHT - 1]).round(1)
            polygon = polygon.ravel().tolist()
            gt = polygon_mask(polygon)
            ys, xs = np.nonzero(gt)
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                segmentation=[polygon], area=int(gt.sum()), iscrowd=0,
                bbox=[float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                      float(ys.max() - ys.min() + 1)]))
            n = len(annotations)
            if n % 6 == 0:  # missed
                continue
            pred = perturb[n % len(perturb)](gt)
            if n == 4:  # also detected as another class
                masks.append(pred)
                labels.append((label + 1) % len(POLY_CLASSES))
            if n == 9:  # detected twice
                masks.append(cv2.dilate(gt, kernel, iterations=3))
                labels.append(label)
            masks.append(pred)
            labels.append(label)
        for _ in range(2 if image_id % 2 else 1):  # false positives: blobs where nothing is
            blob = np.zeros((POLY_HEIGHT, POLY_WIDTH), np.uint8)
            x, y, r = int(rng.integers(20, 180)), int(rng.integers(20, 140)), int(
                rng.integers(5, 20))
            cv2.circle(blob, (x, y), r, 1, -1)
            masks.append(blob)
            labels.append(int(rng.integers(len(POLY_CLASSES))))
        for mask in masks:
            ys, xs = np.nonzero(mask)
            # the box head's own error: boxes a few pixels off their mask's extent, so that
            # bbox and segm AP differ
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
            boxes.append((box + rng.normal(0, 2.5, 4)).clip(0, [POLY_WIDTH, POLY_HEIGHT] * 2))
            scores.append(float(rng.uniform(0.05, 1)))
        samples.append(dict(img_id=image_id, ori_shape=(POLY_HEIGHT, POLY_WIDTH),
                            pred_instances=dict(
                                bboxes=torch.tensor(np.array(boxes), dtype=torch.float32),
                                scores=torch.tensor(scores, dtype=torch.float32),
                                labels=torch.tensor(labels, dtype=torch.int64),
                                masks=torch.from_numpy(np.stack(masks).astype(bool)))))
    # a crowd region (RLE, as COCO stores crowds) over part of image 0: detections in it are
    # neither true nor false positives
    crowd = np.zeros((POLY_HEIGHT, POLY_WIDTH), np.uint8)
    crowd[100:150, 10:80] = 1
    annotations.append(dict(id=len(annotations) + 1, image_id=0, category_id=1,
                            segmentation=encoded(crowd), area=int(crowd.sum()), iscrowd=1,
                            bbox=[10.0, 100.0, 70.0, 50.0]))
    path = tmp_path_factory.mktemp('polygons') / 'instances.json'
    path.write_text(json.dumps(dict(
        images=images, annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='thing')
                    for i, name in enumerate(POLY_CLASSES)])))
    return str(path), samples


@pytest.mark.parametrize('proposal_nums', [(100, 300, 1000), (1, 10, 100)])
def test_segm_and_bbox_agree_with_pycocotools_on_polygon_ground_truth(
        polygon_case, tmp_path, monkeypatch, proposal_nums):
    """resnext_det.CocoMetric (faster-coco-eval) on Mask R-CNN-like outputs against pycocotools'
    COCOeval run directly on the json files the metric wrote: all 12 stats of segm and bbox,
    rounded as mmdet reports them and raw. (1, 10, 100) are pycocotools' own maxDets; mmdet's
    default (100, 300, 1000) is what it sets COCOeval.params.maxDets to."""
    from pycocotools.coco import COCO
    ann_file, samples = polygon_case
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'], metric_items=STAT_NAMES,
                        proposal_nums=proposal_nums, outfile_prefix=str(tmp_path / 'results'))
    metric.dataset_meta = dict(classes=POLY_CLASSES)
    raw = {}
    summarize = metric.coco_eval_class.summarize

    def summarize_and_keep(self):
        summarize(self)
        raw[self.params.iouType] = np.array(self.stats)

    monkeypatch.setattr(metric.coco_eval_class, 'summarize', summarize_and_keep)
    metric.process({}, samples)
    ours = metric.evaluate(size=len(samples))
    assert sorted(raw) == ['bbox', 'segm']

    coco_gt = COCO(ann_file)  # a fresh index: COCOeval writes into the ground-truth dicts
    for iou_type in ('bbox', 'segm'):
        results = json.loads((tmp_path / f'results.{iou_type}.json').read_text())
        if iou_type == 'segm':
            # as mmdet does: with a 'bbox' key, loadRes takes a detection's area from its box,
            # which moves detections between the small/medium/large ranges of the mask AP
            assert all('bbox' in r and 'segmentation' in r for r in results)
            results = [{k: v for k, v in r.items() if k != 'bbox'} for r in results]
        reference = PycocotoolsCOCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        if proposal_nums != (1, 10, 100):
            reference.params.maxDets = list(proposal_nums)
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
        for i, name in enumerate(STAT_NAMES):
            assert ours[f'coco/{iou_type}_{name}'] == float(f'{round(reference.stats[i], 3)}'), \
                (iou_type, name, ours[f'coco/{iou_type}_{name}'], reference.stats[i])
        np.testing.assert_allclose(raw[iou_type], reference.stats, rtol=0, atol=1e-12)
        # a case where each stat is a real measurement: no -1 (empty area range), not 0 or 1
        assert all(0 < s < 1 for s in reference.stats), (iou_type, reference.stats)
    assert ours['coco/segm_mAP'] != ours['coco/bbox_mAP']
    assert len(ours) == 2 * len(STAT_NAMES)
