# Pretraining of the demo's slim ResNeXt-50 8x4d on the demo's ImageNet-format crops
# (data/demo/imagenet, 4 classes, 64x64): the paper's recipe, scaled to 2 CPU cores.
_base_ = [
    '../_base_/models/resnext_classifier.py', '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_step_100e.py', '../_base_/cls_runtime.py'
]
model = dict(
    backbone=dict(depth=50, groups=8, base_width=4, base_channels=16),
    num_classes=4)
data_root = 'data/demo/imagenet/'
train_dataloader = dict(
    batch_size=32, num_workers=1, pin_memory=False,
    dataset=dict(data_root=data_root + 'train', crop_size=64))
val_dataloader = dict(
    batch_size=50, num_workers=1, pin_memory=False,
    dataset=dict(data_root=data_root + 'val', crop_size=64, resize_size=72))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, ))
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = dict(milestones=[20, 27])
optim_wrapper = dict(optimizer=dict(lr=0.1))
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False)
# a fixed seed: the demo's numbers are reproducible run to run
randomness = dict(seed=0)
