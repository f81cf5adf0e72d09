from .accuracy import Accuracy
from .coco_metric import CocoMetric

__all__ = ['Accuracy', 'CocoMetric']
