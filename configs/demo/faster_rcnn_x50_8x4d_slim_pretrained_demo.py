# The demo detector started from the slim ResNeXt pretrained by the companion trainer
# (configs/demo/resnext50_8x4d_slim_cls_demo.py, exported by tools/export_backbone.py), with
# mmdet's fine-tuning settings: stem + stage 1 frozen, BN statistics frozen.
# tools/demo.py passes the exported file: --cfg-options model.backbone.init_cfg.checkpoint=...
_base_ = './faster_rcnn_x50_8x4d_slim_demo.py'
model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/demo/backbones/x50_8x4d_slim.pth')))
