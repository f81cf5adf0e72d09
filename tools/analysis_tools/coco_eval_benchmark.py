"""How fast COCO bbox evaluation runs, and whether a faster evaluator gives the same numbers.

A val2017-sized synthetic set (5,000 images, 36,800 boxes over the 80 COCO categories, 100
detections per image as a Faster R-CNN result file has) is generated in memory from a seed, then
evaluated with pycocotools, with faster-coco-eval (its own COCO and COCOeval_faster) and with what
``resnext_det.CocoMetric`` runs (pycocotools' COCO, faster-coco-eval's evaluation), each called
the way mmdet's ``CocoMetric`` calls pycocotools: ``loadRes`` on the result list, then
``evaluate``, ``accumulate``, ``summarize``. ``tools/benchmark_eval.py`` is the command line.
"""
import contextlib
import copy
import gc
import io
import os
import platform
import statistics
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from mmdet.evaluation.functional.class_names import coco_classes

from resnext_det.utils.collect_env import cpu_name

# The 80 category ids of instances_val2017.json: 1..90 with the ten ids COCO never used left out.
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90)
# COCOeval.stats in pycocotools' order.
SUMMARY_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm',
                 'ARl')
PHASES = ('loadRes', 'evaluate', 'accumulate', 'summarize')

# val2017 statistics the generator aims at: 36,781 boxes on 5,000 images (7.36 per image, 48
# images without any), 0.8% crowd regions, 41% / 34% / 25% small / medium / large boxes and
# person in 30% of the boxes.
MEAN_BOXES_PER_IMAGE = 7.36
EMPTY_IMAGE_FRACTION = 0.01
CROWD_FRACTION = 0.01
PERSON_FRACTION = 0.3
# sqrt(box area) is log-normal; with ``area`` at 45-95% of the box and boxes clipped to the
# image, these give 40% / 35% / 25% small / medium / large ``area``.
LOG_SIDE_MEAN, LOG_SIDE_STD = 3.95, 1.2
# Shorter sides of val2017 images, the longer side being 640 for almost all of them.
SHORT_SIDES = (480, 427, 426, 425, 428, 424, 360, 512, 383, 640, 375, 500)
SHORT_SIDE_WEIGHTS = (0.40, 0.15, 0.07, 0.07, 0.05, 0.04, 0.04, 0.04, 0.03, 0.04, 0.03, 0.04)


def _box_sizes(rng: np.random.Generator, count: int):
    """Widths and heights whose areas spread over small / medium / large as COCO's do."""
    side = np.exp(rng.normal(LOG_SIDE_MEAN, LOG_SIDE_STD, count))
    aspect = np.exp(rng.normal(0.0, 0.6, count))  # w / h
    return side * np.sqrt(aspect), side / np.sqrt(aspect)


def coco_images(rng: np.random.Generator, num_images: int):
    """(ids, widths, heights) of ``num_images`` COCO-like images: sparse ids as COCO's, ~640x480,
    three in four landscape."""
    image_ids = np.sort(rng.choice(581929, size=num_images, replace=False) + 1)
    short = rng.choice(SHORT_SIDES, size=num_images, p=SHORT_SIDE_WEIGHTS)
    long = np.where(rng.random(num_images) < 0.95, 640, rng.integers(500, 640, num_images))
    short = np.minimum(short, long)
    landscape = rng.random(num_images) < 0.75
    return image_ids, np.where(landscape, long, short), np.where(landscape, short, long)


def _place_boxes(rng: np.random.Generator, widths, heights, image_w, image_h):
    """xywh boxes of the given sizes, clipped to the image, at uniform positions inside it."""
    widths = np.clip(widths, 1.0, image_w)
    heights = np.clip(heights, 1.0, image_h)
    x = rng.random(len(widths)) * (image_w - widths)
    y = rng.random(len(heights)) * (image_h - heights)
    return np.stack([x, y, widths, heights], axis=1)


def _category_weights(rng: np.random.Generator) -> np.ndarray:
    """Long-tailed class frequencies: person first, the other 79 drawn from a gamma, mixed
    with a uniform tenth so that, as in val2017, every category has some boxes."""
    others = rng.gamma(0.7, size=len(COCO_CATEGORY_IDS) - 1)
    others = 0.9 * others / others.sum() + 0.1 / len(others)
    return np.concatenate([[PERSON_FRACTION], others * (1 - PERSON_FRACTION)])


def box_counts(rng: np.random.Generator, num_images: int, mean: float) -> np.ndarray:
    """Boxes per image, about ``mean`` on average: 1 + negative binomial, a heavy tail of
    crowded images as COCO has, cut at 90 so that 100 detections can cover every box, and
    ``EMPTY_IMAGE_FRACTION`` of the images without a box."""
    nb_mean = mean / (1 - EMPTY_IMAGE_FRACTION) - 1
    nb_shape = 1.5
    counts = 1 + rng.negative_binomial(nb_shape, nb_shape / (nb_shape + nb_mean), num_images)
    counts = np.minimum(counts, 90)
    counts[rng.random(num_images) < EMPTY_IMAGE_FRACTION] = 0
    return counts


def make_coco_ground_truth(num_images: int = 5000, seed: int = 0) -> dict:
    """A COCO instances json (as a dict) shaped like val2017, from ``seed`` alone.

    Images are ~640x480 with sparse ids as COCO's, boxes carry a mask-like ``area`` (45-95% of
    the box, because pycocotools picks the small/medium/large range from ``area``, not from the
    box) and about 1% of them are ``iscrowd`` regions.
    """
    rng = np.random.default_rng(seed)
    image_ids, widths, heights = coco_images(rng, num_images)

    counts = box_counts(rng, num_images, MEAN_BOXES_PER_IMAGE)
    # Spread the sampling error (+-400 boxes on 5,000 images) over random non-empty images, so
    # that the box count is val2017's 7.36 per image whatever the seed.
    target = round(MEAN_BOXES_PER_IMAGE * num_images)
    nonempty = np.flatnonzero(counts)
    while counts.sum() != target and nonempty.size:
        excess = int(counts.sum() - target)
        np.add.at(counts, rng.choice(nonempty, size=abs(excess)), -np.sign(excess))
        counts[nonempty] = np.clip(counts[nonempty], 1, 90)
    category_weights = _category_weights(rng)

    images, annotations = [], []
    for image_id, width, height, count in zip(image_ids, widths, heights, counts):
        images.append(dict(id=int(image_id), file_name=f'{image_id:012d}.jpg',
                           width=int(width), height=int(height)))
        if count == 0:
            continue
        boxes = _place_boxes(rng, *_box_sizes(rng, count), width, height).round(2)
        mask_fraction = rng.uniform(0.45, 0.95, count)
        categories = rng.choice(COCO_CATEGORY_IDS, size=count, p=category_weights)
        crowd = rng.random(count) < CROWD_FRACTION
        for box, fraction, category_id, is_crowd in zip(boxes, mask_fraction, categories, crowd):
            annotations.append(dict(
                id=len(annotations) + 1, image_id=int(image_id), category_id=int(category_id),
                bbox=box.tolist(), area=round(float(box[2] * box[3] * fraction), 2),
                iscrowd=int(is_crowd)))
    categories = [dict(id=category_id, name=name, supercategory=name)
                  for category_id, name in zip(COCO_CATEGORY_IDS, coco_classes())]
    return dict(info=dict(description=f'synthetic val2017-sized set, seed {seed}'),
                images=images, annotations=annotations, categories=categories)


def make_detections(ground_truth: dict, dets_per_image: int = 100, seed: int = 0,
                    recall: float = 0.85, duplicate_rate: float = 0.15,
                    wrong_category_rate: float = 0.1) -> List[dict]:
    """A COCO result list like a detector's: ``dets_per_image`` boxes on every image.

    Most ground-truth boxes get a jittered copy with a high score (some with a wrong category,
    some twice: a duplicate is a false positive at a lower score), the rest of the image's budget
    are random low-score boxes. Boxes go through float32 xyxy and scores are float32, as in
    mmdet's ``CocoMetric.results2json``, so some scores tie exactly, as they do in real results.
    """
    # a stream apart from the ground truth's, so the detections do not replay its draws
    rng = np.random.default_rng([seed, 1])
    category_ids = np.asarray(COCO_CATEGORY_IDS)
    # the classes that false positives and confusions are drawn from: long-tailed as well
    category_weights = _category_weights(rng)
    boxes_by_image: Dict[int, list] = {image['id']: [] for image in ground_truth['images']}
    for ann in ground_truth['annotations']:
        boxes_by_image[ann['image_id']].append(ann)

    detections = []
    for image in ground_truth['images']:
        anns = boxes_by_image[image['id']]
        gt_boxes = np.array([ann['bbox'] for ann in anns], dtype=np.float64).reshape(-1, 4)
        gt_categories = np.array([ann['category_id'] for ann in anns], dtype=np.int64)

        found = rng.random(len(anns)) < recall
        twice = found & (rng.random(len(anns)) < duplicate_rate)
        copies = np.concatenate([np.flatnonzero(found), np.flatnonzero(twice)])
        is_duplicate = np.arange(len(copies)) >= found.sum()
        source = gt_boxes[copies]
        jitter = np.where(is_duplicate, 0.2, 0.08)[:, None]
        centers = source[:, :2] + source[:, 2:] / 2 + rng.normal(size=(len(copies), 2)) * \
            jitter * source[:, 2:]
        sizes = source[:, 2:] * np.exp(rng.normal(size=(len(copies), 2)) * jitter)
        hit_boxes = np.concatenate([centers - sizes / 2, sizes], axis=1)
        hit_categories = gt_categories[copies]
        wrong = rng.random(len(copies)) < wrong_category_rate
        hit_categories[wrong] = rng.choice(category_ids, size=wrong.sum(), p=category_weights)
        hit_scores = 0.35 + 0.65 * rng.beta(4.0, 1.5, len(copies))
        hit_scores[is_duplicate] *= rng.uniform(0.3, 0.8, is_duplicate.sum())

        num_random = max(dets_per_image - len(copies), 0)
        random_boxes = _place_boxes(rng, *_box_sizes(rng, num_random), image['width'],
                                    image['height'])
        random_categories = rng.choice(category_ids, size=num_random, p=category_weights)
        random_scores = rng.beta(1.2, 10.0, num_random)

        boxes = np.concatenate([hit_boxes, random_boxes])
        categories = np.concatenate([hit_categories, random_categories])
        scores = np.concatenate([hit_scores, random_scores]).astype(np.float32)
        # a detector's test_cfg keeps the best max_per_img boxes
        keep = np.argsort(-scores, kind='stable')[:dets_per_image]
        xyxy = np.concatenate([boxes[keep, :2], boxes[keep, :2] + boxes[keep, 2:]], axis=1)
        xyxy = np.clip(xyxy, 0, [image['width'], image['height']] * 2).astype(np.float32)
        for (x1, y1, x2, y2), score, category_id in zip(xyxy.tolist(), scores[keep].tolist(),
                                                        categories[keep].tolist()):
            detections.append(dict(image_id=image['id'], bbox=[x1, y1, x2 - x1, y2 - y1],
                                   score=score, category_id=category_id))
    return detections


def copy_detections(detections: Sequence[dict]) -> List[dict]:
    """A copy that ``loadRes`` may write into (both evaluators add keys to the dicts given)."""
    return [dict(det, bbox=list(det['bbox'])) for det in detections]


def _pycocotools_run(ground_truth: dict, detections: List[dict],
                     coco_eval_class: Optional[type] = None) -> dict:
    """pycocotools' COCO and ``loadRes``, then ``coco_eval_class`` (default: its COCOeval)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    COCOeval = coco_eval_class or COCOeval
    coco_gt = COCO()
    coco_gt.dataset = ground_truth
    coco_gt.createIndex()
    clock = [time.perf_counter()]
    coco_dt = coco_gt.loadRes(detections)
    clock.append(time.perf_counter())
    coco_eval = COCOeval(coco_gt, coco_dt, 'bbox')
    return _evaluate_accumulate_summarize(coco_eval, clock)


def _faster_coco_eval_run(ground_truth: dict, detections: List[dict],
                          separate_eval: bool = False) -> dict:
    """faster-coco-eval's own COCO and COCOeval_faster with their defaults.

    Without ``separate_eval`` its C++ ``evaluate`` also accumulates, so ``accumulate`` has
    nothing left to do; with it, the two run apart as in pycocotools.
    """
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*args, **kwargs):
        pass

    coco_gt = COCO(ground_truth, print_function=quiet)
    clock = [time.perf_counter()]
    coco_dt = coco_gt.loadRes(detections)
    clock.append(time.perf_counter())
    coco_eval = COCOeval_faster(coco_gt, coco_dt, 'bbox', print_function=quiet,
                                separate_eval=separate_eval)
    return _evaluate_accumulate_summarize(coco_eval, clock)


def _coco_metric_run(ground_truth: dict, detections: List[dict]) -> dict:
    """What ``resnext_det.CocoMetric`` runs by default: mmdet's pycocotools COCO and
    ``loadRes``, faster-coco-eval's evaluate / accumulate, pycocotools' summarize."""
    from resnext_det.evaluation.coco_metric import faster_coco_eval_class
    return _pycocotools_run(ground_truth, detections, faster_coco_eval_class())


# name -> function(ground_truth, detections) returning the clock readings around the four phases
# and the COCOeval object; the first one is the reference the others are compared with.
EVALUATORS: Dict[str, Callable[[dict, List[dict]], dict]] = {
    'pycocotools': _pycocotools_run,
    'faster-coco-eval': _faster_coco_eval_run,
    'faster-coco-eval (separate_eval=True)':
        lambda gt, dets: _faster_coco_eval_run(gt, dets, separate_eval=True),
    'resnext_det.CocoMetric (pycocotools COCO + faster-coco-eval)': _coco_metric_run,
}


def time_evaluator(run: Callable[[dict, List[dict]], dict], ground_truth: dict,
                   detections: Sequence[dict], repeats: int = 3) -> dict:
    """Median seconds per phase over ``repeats`` runs, each on fresh copies of the inputs.

    The copies, the ground-truth index and the evaluators' printing (silenced) stay out of the
    clock: mmdet builds the ground-truth index once, when the metric is made.
    """
    runs = []
    for _ in range(repeats):
        gt_copy, dets_copy = copy.deepcopy(ground_truth), copy_detections(detections)
        gc.collect()
        with contextlib.redirect_stdout(io.StringIO()):
            result = run(gt_copy, dets_copy)
        clock = result['clock']
        seconds = {phase: clock[i + 1] - clock[i] for i, phase in enumerate(PHASES)}
        seconds['total'] = clock[-1] - clock[0]
        coco_eval = result['coco_eval']
        runs.append(dict(seconds=seconds,
                         stats=np.asarray(coco_eval.stats[:len(SUMMARY_NAMES)], np.float64),
                         precision=np.asarray(coco_eval.eval['precision'], np.float64),
                         recall=np.asarray(coco_eval.eval['recall'], np.float64)))
    # every repeat must give the same numbers, or the comparison below would mean nothing
    for other in runs[1:]:
        assert np.array_equal(other['stats'], runs[0]['stats'])
    return dict(
        seconds={key: statistics.median(run['seconds'][key] for run in runs)
                 for key in (*PHASES, 'total')},
        seconds_per_run=[run['seconds'] for run in runs],
        stats=runs[0]['stats'], precision=runs[0]['precision'], recall=runs[0]['recall'])


def compare(reference: dict, other: dict) -> dict:
    """How far ``other``'s 12 stats (and the precision / recall arrays behind them) are from
    ``reference``'s: exact float equality and the largest absolute difference.

    faster-coco-eval's precision can differ from pycocotools' by 2.2e-16, in one case only:
    pycocotools divides by ``tp + fp + np.spacing(1)``, which for the first detection of a
    precision/recall curve (tp + fp == 1) gives 1 / (1 + 2**-52) = 0.9999999999999998 where the
    C++ code gives 1.0 (for tp + fp >= 2 the epsilon is lost to rounding). The recall arrays are
    identical; the AP stats, means over these arrays, may then differ by about 1e-16 on a small
    set, and are identical on val2017-sized ones, where the rounding of the sums absorbs it.
    """
    stats_diff = np.abs(other['stats'] - reference['stats'])
    comparison = dict(
        stats_identical=bool(np.array_equal(other['stats'], reference['stats'])),
        stats_max_abs_diff=float(stats_diff.max()),
        stats_within_1e12=bool(stats_diff.max() < 1e-12),
        stats_abs_diff=dict(zip(SUMMARY_NAMES, stats_diff.tolist())))
    for key in ('precision', 'recall'):
        same_shape = other[key].shape == reference[key].shape
        comparison[f'{key}_identical'] = same_shape and bool(
            np.array_equal(other[key], reference[key]))
        comparison[f'{key}_max_abs_diff'] = (
            float(np.abs(other[key] - reference[key]).max()) if same_shape else None)
    return comparison


def _package_version(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment(packages: Sequence[str] = ('numpy', 'pycocotools', 'faster-coco-eval',
                                            'mmdet')) -> dict:
    """The machine and the versions of ``packages`` (None: not installed), for a report."""
    return dict(
        python=sys.version.split()[0], platform=platform.platform(), cpu=cpu_name(),
        cpu_count=os.cpu_count(),
        versions={name: _package_version(name) for name in packages})


def benchmark(num_images: int = 5000, repeats: int = 3, seed: int = 0,
              dets_per_image: int = 100,
              evaluators: Optional[Sequence[str]] = None) -> dict:
    """Generate the synthetic set, time every evaluator on it and compare their numbers with
    the first one's (pycocotools by default)."""
    evaluators = list(evaluators or EVALUATORS)
    ground_truth = make_coco_ground_truth(num_images, seed)
    detections = make_detections(ground_truth, dets_per_image, seed)
    timings = {name: time_evaluator(EVALUATORS[name], ground_truth, detections, repeats)
               for name in evaluators}
    reference = timings[evaluators[0]]
    results = {}
    for name, timing in timings.items():
        results[name] = dict(
            seconds=timing['seconds'], seconds_per_run=timing['seconds_per_run'],
            speedup=reference['seconds']['total'] / timing['seconds']['total'],
            stats=dict(zip(SUMMARY_NAMES, timing['stats'].tolist())),
            **({} if name == evaluators[0] else {'vs_reference': compare(reference, timing)}))
    return dict(
        config=dict(images=num_images, repeats=repeats, seed=seed, dets_per_image=dets_per_image,
                    gt_boxes=len(ground_truth['annotations']),
                    crowd_boxes=sum(ann['iscrowd'] for ann in ground_truth['annotations']),
                    detections=len(detections), reference=evaluators[0]),
        environment=environment(), results=results,
        identical=all(result['vs_reference']['stats_identical'] for result in results.values()
                      if 'vs_reference' in result),
        within_1e12=all(result['vs_reference']['stats_within_1e12']
                        for result in results.values() if 'vs_reference' in result))


def format_markdown(report: dict) -> str:
    """The timing table, then the 12 stats of every evaluator and how far they are apart."""
    results = report['results']
    names = list(results)
    lines = ['| evaluator | ' + ' | '.join(f'{phase} (s)' for phase in PHASES) +
             ' | total (s) | speed-up |',
             '|---|' + '---:|' * (len(PHASES) + 2)]
    for name, result in results.items():
        seconds = result['seconds']
        lines.append(f'| {name} | ' + ' | '.join(f'{seconds[phase]:.2f}' for phase in PHASES) +
                     f" | {seconds['total']:.2f} | {result['speedup']:.1f}x |")
    lines += ['', '| stat | ' + ' | '.join(names) + ' | max abs diff |',
              '|---|' + '---:|' * (len(names) + 1)]
    for stat in SUMMARY_NAMES:
        values = [results[name]['stats'][stat] for name in names]
        diff = max(abs(value - values[0]) for value in values)
        lines.append(f'| {stat} | ' + ' | '.join(f'{value:.6f}' for value in values) +
                     f' | {diff:.3g} |')
    return '\n'.join(lines)


def _evaluate_accumulate_summarize(coco_eval, clock: List[float]) -> dict:
    """Run the three steps, appending the time after each to ``clock``."""
    for step in (coco_eval.evaluate, coco_eval.accumulate, coco_eval.summarize):
        step()
        clock.append(time.perf_counter())
    return dict(clock=clock, coco_eval=coco_eval)
