"""The tiny 2-process training configs of the distributed tests: the demo detector and
classifier on a small generated set, loaders in the main process. Format with ``root`` (the
repository) and ``data`` (the generated set's root), then append the test's own settings."""

DETECTION = """
_base_ = '{root}/configs/demo/faster_rcnn_r50_slim_demo.py'
data_root = '{data}/coco/'
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
"""
CLASSIFICATION = """
_base_ = '{root}/configs/demo/resnext50_8x4d_slim_cls_demo.py'
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root='{data}/imagenet/train'))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{data}/imagenet/val'))
test_dataloader = val_dataloader
"""
TASKS = dict(detection=DETECTION, classification=CLASSIFICATION)
