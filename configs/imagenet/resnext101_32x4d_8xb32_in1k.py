# ResNeXt-101 32x4d on ImageNet-1K, the paper's recipe (paper top-1 error 21.2).
_base_ = './resnet50_8xb32_in1k.py'
model = dict(backbone=dict(depth=101, groups=32, base_width=4))
