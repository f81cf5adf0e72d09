# The slim ResNet-50 demo detector started from its pretrained export (see the ResNeXt one).
_base_ = './faster_rcnn_r50_slim_demo.py'
model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/demo/backbones/r50_slim.pth')))
