# Faster R-CNN R-101-FPN on the fast training path (docs/benchmarks.md): the same model, recipe
# and checkpoints as faster_rcnn_r101_fpn.py, trained in bf16 autocast with a channels_last
# backbone (the neck and heads follow its layout), the frozen stem and stage-1 BN folded into
# their convs, and cuDNN autotuning. mmengine's AmpOptimWrapper needs a GPU.
_base_ = './faster_rcnn_r101_fpn.py'
model = dict(backbone=dict(channels_last=True, fold_frozen_bn=True))
# bf16 has fp32's exponent range: no loss scaling, so no inf check and host sync per step
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False))
env_cfg = dict(cudnn_benchmark=True)
# inference (val/test) in fp16 autocast: mmengine's loops have no bf16 switch
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
