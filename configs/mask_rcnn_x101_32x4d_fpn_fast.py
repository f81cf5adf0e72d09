# Mask R-CNN X-101-32x4d-FPN on the fast training path: mask_rcnn_x101_32x4d_fpn.py with the
# switches of mask_rcnn_r101_fpn_fast.py.
_base_ = './mask_rcnn_r101_fpn_fast.py'
model = dict(
    backbone=dict(
        groups=32, base_width=4,
        init_cfg=dict(checkpoint='checkpoints/resnext101_32x4d.pth')))
