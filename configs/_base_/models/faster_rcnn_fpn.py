# mmdet's Faster R-CNN + FPN with this package's backbone (ResNet-50 here; experiments change
# depth/groups/base_width). Backbone settings other than these are the class defaults, which
# are mmdet's: 4 stages, outputs at strides 4/8/16/32, BN with frozen statistics, pytorch style.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='resnext_det.ResNeXt',
        depth=50,
        frozen_stages=1,
        # ImageNet-pretrained weights: our trainer's export (tools/export_backbone.py) or a
        # converted checkpoint (tools/convert_weights.py). Nothing is downloaded.
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50.pth')),
    # proposals decoded, RoIAlign run and detections post-processed in fp32 on NCHW memory:
    # right under bf16/fp16 autocast and with channels_last features
    # (resnext_det/models/rpn_head.py, roi_extractor.py, bbox_head.py)
    rpn_head=dict(type='resnext_det.RPNHead'),
    roi_head=dict(
        bbox_roi_extractor=dict(type='resnext_det.SingleRoIExtractor'),
        bbox_head=dict(type='resnext_det.Shared2FCBBoxHead')))
