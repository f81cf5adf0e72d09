"""The demo's synthetic data: shapes on textured backgrounds, in COCO and ImageNet formats."""
from .make_data import CLASSES, make_demo_data

__all__ = ['CLASSES', 'make_demo_data']
