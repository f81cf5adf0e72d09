from ..errors import DatasetError
from .coco import CocoDataset
from .imagenet import ImageNetFolder

__all__ = ['CocoDataset', 'DatasetError', 'ImageNetFolder']
