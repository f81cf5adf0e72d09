# COCO 2017 boxes + masks (Mask R-CNN), mmdet's pipeline; data under data/coco/.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'
