# Faster R-CNN X-101-64x4d-FPN, 1x COCO (model zoo: 42.1 box AP).
_base_ = './faster_rcnn_r50_fpn.py'
model = dict(
    backbone=dict(
        depth=101, groups=64, base_width=4,
        init_cfg=dict(checkpoint='checkpoints/resnext101_64x4d.pth')))
