# The slim ResNeXt demo detector started from its pretrained export (see the ResNet one).
# tools/demo.py passes the exported file: --cfg-options model.backbone.init_cfg.checkpoint=...
_base_ = './faster_rcnn_r50_slim_pretrained_demo.py'
model = dict(
    backbone=dict(
        groups=8, base_width=4,
        init_cfg=dict(checkpoint='work_dirs/demo/backbones/x50_8x4d_slim.pth')))
