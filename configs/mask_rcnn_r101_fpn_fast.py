# Mask R-CNN R-101-FPN on the fast training path: the same model, recipe and checkpoints as
# mask_rcnn_r101_fpn.py with the switches of faster_rcnn_r101_fpn_fast.py (docs/benchmarks.md).
# They are repeated rather than shared: mmengine refuses a key defined by two bases, and a
# fragment's own variables would end up in every config that inherits it.
_base_ = './mask_rcnn_r101_fpn.py'
model = dict(backbone=dict(channels_last=True, fold_frozen_bn=True))
# bf16 has fp32's exponent range: no loss scaling, so no inf check and host sync per step
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False))
env_cfg = dict(cudnn_benchmark=True)
# inference (val/test) in fp16 autocast: mmengine's loops have no bf16 switch
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
