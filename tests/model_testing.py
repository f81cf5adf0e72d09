"""Helpers for tests (as mmdet.testing): models whose wrong loading cannot go unnoticed.
Imported as ``model_testing``: tests/ is on sys.path under pytest (its conftest.py)."""
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
