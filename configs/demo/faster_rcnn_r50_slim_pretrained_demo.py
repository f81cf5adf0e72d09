# The slim ResNet-50 demo detector started from the backbone pretrained by the companion
# trainer (configs/demo/resnet50_slim_cls_demo.py, exported by tools/export_backbone.py), with
# mmdet's fine-tuning settings: stem + stage 1 frozen, BN statistics frozen.
_base_ = './faster_rcnn_r50_slim_demo.py'
model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(_delete_=True, type='Pretrained',
                      checkpoint='work_dirs/demo/backbones/r50_slim.pth')))
