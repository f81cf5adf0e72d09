"""Reading what tools/train.py and tools/test.py leave in a work dir, for comparisons."""
import glob
import json
import os.path as osp
from collections import defaultdict

# mmdet 3.3 model zoo, COCO val2017 box AP (Faster / Mask R-CNN 1x; mask AP after the slash).
MODEL_ZOO_BOX_AP = {
    'faster_rcnn_r50_fpn': 37.4,
    'faster_rcnn_r101_fpn': 39.4,
    'faster_rcnn_x101_32x4d_fpn': 41.2,
    'faster_rcnn_x101_64x4d_fpn': 42.1,
    'mask_rcnn_r50_fpn': 38.2,
    'mask_rcnn_r101_fpn': 40.0,
    'mask_rcnn_x101_32x4d_fpn': 41.9,
    'mask_rcnn_x101_64x4d_fpn': 42.8,
}
# The paper (Faster R-CNN, COCO minival): ResNeXt-50 vs ResNet-50, AP@0.5.
PAPER_AP50_GAIN = 2.1


def load_run(work_dir):
    """Final test metrics and per-epoch history (train loss, val metrics) of one work dir."""
    results_path = osp.join(work_dir, 'test_results.json')
    if not osp.isfile(results_path):
        raise FileNotFoundError(f'{results_path} does not exist: run tools/test.py CONFIG '
                                f'CHECKPOINT --work-dir {work_dir} first')
    with open(results_path) as f:
        results = json.load(f)
    losses, val = defaultdict(list), {}
    # every training run leaves WORK_DIR/TIMESTAMP/vis_data/scalars.json; use the newest one
    # that has training logs (test runs write one too)
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                       reverse=True):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        if not any('loss' in r for r in rows):
            continue
        for r in rows:
            if 'loss' in r and 'epoch' in r:
                losses[r['epoch']].append(r['loss'])
            elif any(k.endswith('_mAP_50') for k in r):
                val[r['step']] = r
        break
    history = []
    for epoch in sorted(losses):
        metrics = {k: v for k, v in val.get(epoch, {}).items() if k.startswith('coco/')}
        history.append(dict(epoch=epoch, loss=sum(losses[epoch]) / len(losses[epoch]),
                            **metrics))
    name = osp.splitext(osp.basename(results['config']))[0]
    return dict(work_dir=work_dir, name=name, metrics=results['metrics'], history=history)


def best_logged(work_dir, key='accuracy/top1'):
    """The best (largest) value of a validation metric logged in a training work dir, e.g. the
    classifier's top-1 that ``CheckpointHook(save_best=...)`` picked; None if never logged."""
    best = None
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                if line.strip():
                    value = json.loads(line).get(key)
                    if value is not None and (best is None or value > best):
                        best = float(value)
    return best


def group_runs(runs):
    """Runs (``load_run`` dicts) grouped by name in first-seen order: the seeds of one model."""
    groups = {}
    for run in runs:
        groups.setdefault(run['name'], []).append(run)
    return groups
