# Demo detector for 2 CPU cores: Faster R-CNN + FPN with a slim ResNet-50 (base_channels 16:
# the same 50 layers at a quarter of the width, outputs 64/128/256/512 channels), on the
# generated demo set. The ResNet side of the demo comparison.
_base_ = [
    '../_base_/models/faster_rcnn_fpn.py', '../_base_/datasets/demo_detection.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        base_channels=16,
        # from scratch unless a pretrained demo backbone is given (make demo does)
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=4)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=2))
# a fixed seed: the demo's numbers are reproducible run to run
randomness = dict(seed=0)
