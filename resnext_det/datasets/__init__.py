from .coco import CocoDataset
from .errors import DatasetError
from .imagenet import ImageNetFolder

__all__ = ['CocoDataset', 'DatasetError', 'ImageNetFolder']
