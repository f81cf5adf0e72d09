# COCO 2017 boxes, exactly mmdet's pipeline: resize (1333, 800) keeping the ratio, flip 0.5,
# 2 images per GPU. Data under data/coco/ (override: --cfg-options data_root=...).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
