from .bbox_head import Shared2FCBBoxHead
from .builders import (
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    resnext152_32x4d,
)
from .classifier import ImageClassifier
from .data_preprocessor import DeviceDecodePreprocessor
from .resnext import Bottleneck, ResNeXt, bottleneck_width
from .roi_extractor import SingleRoIExtractor
from .rpn_head import RPNHead

__all__ = [
    'Bottleneck', 'ResNeXt', 'ImageClassifier', 'DeviceDecodePreprocessor', 'SingleRoIExtractor',
    'RPNHead', 'Shared2FCBBoxHead', 'bottleneck_width', 'resnet50', 'resnet101', 'resnet152',
    'resnext50_32x4d', 'resnext101_32x4d', 'resnext101_32x8d', 'resnext101_64x4d',
    'resnext152_32x4d'
]
