# ImageNet classifier: the detection backbone + global average pooling + a 1000-way fc.
# label_smoothing (e.g. 0.1) and dropout are off in the paper's recipe.
model = dict(
    type='resnext_det.ImageClassifier',
    backbone=dict(type='resnext_det.ResNeXt', depth=50, groups=1, base_width=64),
    num_classes=1000,
    label_smoothing=0.0)
