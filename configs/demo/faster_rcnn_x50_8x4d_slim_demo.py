# Demo detector with a slim ResNeXt-50 8x4d: the slim ResNet-50's template with 8 groups of
# width 4 (grouped 3x3 width 32/64/128/256, twice the ResNet's, at about the same complexity,
# as 32x4d is to ResNet-50 at full width).
_base_ = './faster_rcnn_r50_slim_demo.py'
model = dict(backbone=dict(groups=8, base_width=4))
