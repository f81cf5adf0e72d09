# ResNet-50 on ImageNet-1K, the paper's recipe (8 GPUs x 32 images; paper top-1 error 23.9).
_base_ = [
    '../_base_/models/resnext_classifier.py', '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_step_100e.py', '../_base_/cls_runtime.py'
]
