# COCO 2017 boxes, exactly mmdet's pipeline: resize (1333, 800) keeping the ratio, flip 0.5,
# 2 images per GPU. Data under data/coco/ (override: --cfg-options data_root=...).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
# mmdet's CocoDataset that logs what it skips (boxes outside the image, unknown categories)
dataset_type = 'resnext_det.CocoDataset'
train_dataloader = dict(dataset=dict(type=dataset_type))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
# mmdet's CocoMetric on faster-coco-eval: the same 12 numbers, 7-8x faster (docs/benchmarks.md)
val_evaluator = dict(type='resnext_det.CocoMetric')
test_evaluator = val_evaluator
