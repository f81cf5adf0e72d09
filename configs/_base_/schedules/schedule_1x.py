# mmdet's 1x: SGD lr 0.02 (16 images/iter), momentum 0.9, wd 1e-4, 12 epochs, lr x0.1 at 8 and
# 11, 500-iter linear warmup; auto_scale_lr base batch 16 (--auto-scale-lr for other GPU counts).
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
