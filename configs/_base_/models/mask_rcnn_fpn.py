# mmdet's Mask R-CNN + FPN with this package's backbone (see faster_rcnn_fpn.py).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='resnext_det.ResNeXt',
        depth=50,
        frozen_stages=1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50.pth')))
