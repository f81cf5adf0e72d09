# mmdet's Mask R-CNN + FPN with this package's backbone (see faster_rcnn_fpn.py).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='resnext_det.ResNeXt',
        depth=50,
        frozen_stages=1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50.pth')),
    # proposals decoded and RoIAlign run in fp32 on NCHW memory: right under bf16 autocast
    # and with channels_last features (resnext_det/models/rpn_head.py, roi_extractor.py)
    rpn_head=dict(type='resnext_det.RPNHead'),
    roi_head=dict(
        bbox_roi_extractor=dict(type='resnext_det.SingleRoIExtractor'),
        bbox_head=dict(type='resnext_det.Shared2FCBBoxHead'),
        mask_roi_extractor=dict(type='resnext_det.SingleRoIExtractor')))
