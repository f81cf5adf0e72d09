# Pretraining of the demo's slim ResNet-50 (the baseline of `tools/demo.py --compare`).
_base_ = './resnext50_8x4d_slim_cls_demo.py'
model = dict(backbone=dict(groups=1, base_width=64))
