# Faster R-CNN X-50-32x4d-FPN, 1x COCO: the paper's ResNeXt-50 vs ResNet-50 (+2.1 AP@0.5).
_base_ = './faster_rcnn_r50_fpn.py'
model = dict(
    backbone=dict(
        groups=32, base_width=4,
        init_cfg=dict(checkpoint='checkpoints/resnext50_32x4d.pth')))
