# ResNeXt-101 64x4d on ImageNet-1K, the paper's recipe (paper top-1 error 20.4).
_base_ = './resnet50_8xb32_in1k.py'
model = dict(backbone=dict(depth=101, groups=64, base_width=4))
