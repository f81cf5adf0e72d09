# Faster R-CNN R-101-FPN, 1x COCO (model zoo: 39.4 box AP).
_base_ = './faster_rcnn_r50_fpn.py'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(checkpoint='checkpoints/resnet101.pth')))
