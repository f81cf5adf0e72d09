# Mask R-CNN R-101-FPN, mmdet's 1x COCO recipe (model zoo: 40.0 box / 36.1 mask AP).
_base_ = [
    '_base_/models/mask_rcnn_fpn.py', '_base_/datasets/coco_instance.py',
    '_base_/schedules/schedule_1x.py', '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(depth=101, init_cfg=dict(checkpoint='checkpoints/resnet101.pth')))
