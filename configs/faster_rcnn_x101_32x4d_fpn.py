# Faster R-CNN X-101-32x4d-FPN, mmdet's 1x COCO recipe (model zoo: 41.2 box AP).
_base_ = './faster_rcnn_r50_fpn.py'
model = dict(
    backbone=dict(
        depth=101, groups=32, base_width=4,
        init_cfg=dict(checkpoint='checkpoints/resnext101_32x4d.pth')))
