# ResNeXt-50 8x14d on ImageNet-1K, the paper's recipe: the cardinality ablation at ResNet-50's
# complexity (paper Table 3: top-1 error 22.3). d from resnext_det.analysis.cardinality.
_base_ = './resnet50_8xb32_in1k.py'
model = dict(backbone=dict(groups=8, base_width=14))
