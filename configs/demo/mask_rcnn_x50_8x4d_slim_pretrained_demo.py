# Demo Mask R-CNN with the slim ResNeXt-50 8x4d, from its pretrained export: the ResNet one's
# model and recipe with the grouped backbone (as faster_rcnn_x50_8x4d_slim_pretrained_demo.py).
_base_ = './mask_rcnn_r50_slim_pretrained_demo.py'
model = dict(
    backbone=dict(
        groups=8, base_width=4,
        init_cfg=dict(checkpoint='work_dirs/demo/backbones/x50_8x4d_slim.pth')))
