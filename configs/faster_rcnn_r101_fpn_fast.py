# Faster R-CNN R-101-FPN on the fast training path: see faster_rcnn_x101_32x4d_fpn_fast.py.
_base_ = './faster_rcnn_r101_fpn.py'
model = dict(backbone=dict(channels_last=True, fold_frozen_bn=True))
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False))
env_cfg = dict(cudnn_benchmark=True)
