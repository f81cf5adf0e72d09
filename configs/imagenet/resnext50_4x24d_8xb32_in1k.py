# ResNeXt-50 4x24d on ImageNet-1K, the paper's recipe: the cardinality ablation at ResNet-50's
# complexity (paper Table 3: top-1 error 22.6). d from resnext_det.analysis.cardinality.
_base_ = './resnet50_8xb32_in1k.py'
model = dict(backbone=dict(groups=4, base_width=24))
