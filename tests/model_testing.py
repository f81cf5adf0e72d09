"""Helpers for tests (as mmdet.testing): models whose wrong loading cannot go unnoticed, and the
slim detectors of the detection configs. Imported as ``model_testing``: tests/ is on sys.path
under pytest (its conftest.py)."""
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from resnext_det.models.resnext import FoldedNorm


def randomize_bn(model, seed=0):
    """Give every BN layer (folded ones too) non-trivial affine parameters and statistics, so
    that a checkpoint loaded into the wrong layer, or a BN left at its defaults, changes the
    outputs. A backbone with folded BNs folds the new values on its next ``train()``/``eval()``."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (_BatchNorm, FoldedNorm)):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean = torch.randn(n, generator=g) * 0.1
            m.running_var = torch.rand(n, generator=g) + 0.5
    return model


def slim_detector_cfg(config_path, **backbone):
    """The ``model`` of a Faster/Mask R-CNN config at slim widths (depth 50, 16 base channels,
    32-channel FPN and heads): a detector that builds and steps in a second on a CPU.
    ``backbone`` overrides the slim backbone's settings."""
    from mmengine.config import Config
    model = Config.fromfile(config_path).model
    model.backbone.update(depth=50, groups=4, base_channels=16, init_cfg=None)
    model.backbone.update(backbone)
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=32)
    model.rpn_head.update(in_channels=32, feat_channels=32)
    model.roi_head.bbox_roi_extractor.out_channels = 32
    model.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64)
    if 'mask_head' in model.roi_head:
        model.roi_head.mask_roi_extractor.out_channels = 32
        model.roi_head.mask_head.update(in_channels=32, conv_out_channels=32)
    return model


# appended to a Faster/Mask R-CNN config: the model as it is, but a few proposals and sampled
# RoIs, so that a train step at tiny inputs takes about a second on one core (the benchmark
# harness tests)
SMALL_ROI_SAMPLE = """
model = dict(
    train_cfg=dict(rpn_proposal=dict(max_per_img=64), rcnn=dict(sampler=dict(num=16))),
    test_cfg=dict(rpn=dict(max_per_img=64), rcnn=dict(max_per_img=10)))
"""
