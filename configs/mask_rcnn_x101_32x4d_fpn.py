# Mask R-CNN X-101-32x4d-FPN, 1x COCO (model zoo: 41.9 box / 37.5 mask AP).
_base_ = './mask_rcnn_r101_fpn.py'
model = dict(
    backbone=dict(
        groups=32, base_width=4,
        init_cfg=dict(checkpoint='checkpoints/resnext101_32x4d.pth')))
