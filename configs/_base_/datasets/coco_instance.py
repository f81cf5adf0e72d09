# COCO 2017 boxes + masks (Mask R-CNN), mmdet's pipeline; data under data/coco/.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'
# mmdet's CocoDataset that logs what it skips (boxes outside the image, unknown categories)
dataset_type = 'resnext_det.CocoDataset'
train_dataloader = dict(dataset=dict(type=dataset_type))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
# mmdet's CocoMetric on faster-coco-eval: the same 12 numbers, 7-8x faster (docs/benchmarks.md)
val_evaluator = dict(type='resnext_det.CocoMetric')
test_evaluator = val_evaluator
