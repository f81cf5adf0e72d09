# Faster R-CNN R-50-FPN, mmdet's 1x COCO recipe (model zoo: 37.4 box AP). The ResNet baseline
# of the comparison: same class as the ResNeXt configs with groups=1.
_base_ = [
    '_base_/models/faster_rcnn_fpn.py', '_base_/datasets/coco_detection.py',
    '_base_/schedules/schedule_1x.py', '_base_/default_runtime.py'
]
