"""Cardinality at fixed complexity: the paper's Table 2 (Section 3.3, "Model Capacity").

The paper compares ResNeXt templates ``CxWd`` (C groups of width d in the first stage) against
the ResNet bottleneck at (almost) the same number of parameters and FLOPs. One block of the
first stage (conv2, 256-d in and out at the standard width) costs

* ResNet: ``256*64 + 3*3*64*64 + 64*256 = 69,632`` parameters (~70k);
* ResNeXt: ``C * (256*d + 3*3*d*d + d*256)``;

and d is the width that keeps the second closest to the first: 1x64d, 2x40d, 4x24d, 8x14d,
32x4d (:func:`group_width` reproduces these exactly).

General form, for ``base_channels`` b (the ResNet bottleneck width of stage 1, whose blocks have
4b channels in and out): ResNet costs ``4b*b + 9*b*b + b*4b = 17 b^2`` per block and the
template ``C * (8b*d + 9*d^2)``. Every later stage doubles b, d and the channels together, so
its blocks cost 4, 16, 64 times as much on *both* sides and the best d is the same in every
stage; FLOPs are parameters times the (shared) output size of the block's convs, so they give
the same d too. Depth (50/101/152) only repeats these blocks a different number of times per
stage and therefore never changes the answer; ``depth`` is an argument only so that callers
state which network they build (it is checked against the backbone's depths).

Our backbone takes ``d`` as ``base_width``: its 3x3 width in stage i is
``floor(planes * base_width / base_channels) * groups`` with ``planes = base_channels * 2**i``
(:func:`resnext_det.models.resnext.bottleneck_width`), i.e. exactly ``C * d * 2**i``: so
``ResNeXt(depth, groups=C, base_width=group_width(depth, C, b), base_channels=b)`` is the
paper's template at that base. With ``groups=1`` the backbone ignores ``base_width`` (ResNet's
width is ``planes``), consistent with ``group_width(depth, 1, b) == b``.

At the demo's slim base (``base_channels=16``, a quarter of the width) the widths are
1x16d, 2x10d, 4x6d, 8x3d, 16x2d, 32x1d (:data:`DEMO_WIDTHS`). The demo's ``8x4d`` is *not* the
closest 8-group template there: at base 16, d=3 gives 8 * (128*3 + 9*9) = 3,720 against ResNet's
4,352 per block (-14.5%) and d=4 gives 5,248 (+20.6%); over the whole slim backbone 8x4d has
+15.9% parameters (+19.0% FLOPs) against the slim ResNet-50 and 8x3d -14.5% (the 8-group
template cannot match at that width; 2x10d, 4x6d and 32x1d are within 2%, and 32x1d is 32x4d
at a quarter of the width: the same 3x3 widths as the demo's 8x4d, 32/64/128/256).

Whole-backbone counts differ slightly from the block template (the stem, the stride-2 first
blocks whose 1x1 reduce sees fewer input channels, the downsample shortcuts and the BN
parameters are not in it): at depth 50, base 64, the five templates are within 2.3% of
ResNet-50's 23,508,032 parameters (32x4d: 22,979,904, -2.2%, the paper's 25.0M vs 25.5M with
the fc). :func:`backbone_complexity` counts the real thing (parameters and FLOPs).
"""
import math
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch

from ..models.resnext import ResNeXt, bottleneck_width

# The paper's Table 2 (conv2 template, base 64): cardinality -> group width d.
PAPER_WIDTHS = {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}
# The same rule at the demo's slim base (base_channels=16), see the module docstring.
DEMO_BASE_CHANNELS = 16
DEMO_WIDTHS = {1: 16, 2: 10, 4: 6, 8: 3, 16: 2, 32: 1}
DEPTHS = tuple(ResNeXt.arch_settings)


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name}={value!r} must be a positive integer')


def template_params(cardinality: int, width: int, base_channels: int = 64) -> int:
    """Parameters of one stage-1 bottleneck of the template (convs only, no BN, no shortcut).

    ``cardinality * (4b*d + 9*d*d + d*4b)`` for ``b = base_channels`` and ``d = width``: the
    paper's ``C * (256*d + 3*3*d*d + d*256)`` at b = 64. ``cardinality=1, width=b`` is ResNet's
    bottleneck, ``17 * b**2`` (69,632 at b = 64). FLOPs of the block are this times its output
    size, and later stages multiply it by 4**stage on every side.
    """
    for name, value in (('cardinality', cardinality), ('width', width),
                        ('base_channels', base_channels)):
        _check_positive_int(name, value)
    channels = 4 * base_channels
    return cardinality * (channels * width + 9 * width * width + width * channels)


def group_width(depth: int, cardinality: int, base_channels: int = 64) -> int:
    """Group width d of the ``{cardinality}x{d}d`` template closest in complexity to ResNet.

    Args:
        depth: 50, 101 or 152 (checked; the answer does not depend on it, see the module
            docstring).
        cardinality: number of groups C (1 is ResNet and gives ``base_channels``).
        base_channels: the backbone's ``base_channels`` (64 standard, 16 in the slim demo).

    Returns:
        The integer d >= 1 whose :func:`template_params` is closest to ResNet's
        ``17 * base_channels**2`` (ties go to the smaller d, i.e. not above ResNet's budget).
        Pass it as ``base_width`` with ``groups=cardinality`` and the same ``base_channels``.
        At base 64: C=1 -> 64, 2 -> 40, 4 -> 24, 8 -> 14, 32 -> 4 (the paper's Table 2); at
        base 16: 1 -> 16, 2 -> 10, 4 -> 6, 8 -> 3, 16 -> 2, 32 -> 1. When even d = 1 exceeds
        the budget by more than it misses it at d -> 0 (very many groups at a small base),
        1 is still returned, the narrowest buildable group.
    """
    if isinstance(depth, bool) or depth not in DEPTHS:
        raise ValueError(f'depth={depth!r} is not supported; allowed values: '
                         f'{", ".join(map(str, DEPTHS))}')
    _check_positive_int('cardinality', cardinality)
    _check_positive_int('base_channels', base_channels)
    target = template_params(1, base_channels, base_channels)
    # C * (9 d^2 + 8 b d) = 17 b^2, the positive root; the cost grows with d, so the closest
    # integer is the floor or the ceiling of the root
    c, b = cardinality, base_channels
    root = (-8 * b * c + math.sqrt((8 * b * c) ** 2 + 4 * 9 * c * 17 * b * b)) / (18 * c)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(sorted(candidates),
               key=lambda d: abs(template_params(c, d, b) - target))


def backbone_kwargs(depth: int, cardinality: int, base_channels: int = 64) -> dict:
    """``ResNeXt`` arguments of the ``Cx{d}d`` template at that depth and base.

    ``{'depth', 'groups', 'base_width', 'base_channels'}`` with ``base_width`` from
    :func:`group_width`; cardinality 1 gives ResNet's ``groups=1, base_width=64`` (the
    backbone ignores base_width then; 64 is the convention of the configs and builders).
    """
    width = group_width(depth, cardinality, base_channels)
    if cardinality == 1:
        width = 64
    return dict(depth=depth, groups=cardinality, base_width=width, base_channels=base_channels)


def stage_widths(groups: int, base_width: int, base_channels: int = 64,
                 num_stages: int = 4) -> List[int]:
    """3x3 widths per stage of a backbone, as the backbone computes them (bottleneck_width)."""
    return [bottleneck_width(base_channels * 2**i, groups, base_width, base_channels)
            for i in range(num_stages)]


def cardinality_table(depth: int = 50, base_channels: int = 64,
                      cardinalities: Sequence[int] = (1, 2, 4, 8, 32)) -> List[Dict]:
    """One row per cardinality: the template and how close it is to ResNet, block and backbone.

    Each row: ``cardinality``, ``width`` (d), ``template`` (e.g. ``'8x14d'``), ``stage_widths``
    (3x3 width per stage), ``block_params`` and ``block_dev`` (relative to ResNet's block),
    ``backbone_params`` (the built ``ResNeXt(depth, ...)``, no fc) and ``backbone_dev``.
    Builds each backbone once (about a second per 50-layer network at base 64, on CPU).
    """
    resnet_block = template_params(1, base_channels, base_channels)
    resnet_params = count_params(ResNeXt(**backbone_kwargs(depth, 1, base_channels)))
    rows = []
    for c in cardinalities:
        kwargs = backbone_kwargs(depth, c, base_channels)
        d = group_width(depth, c, base_channels)
        block = template_params(c, d, base_channels)
        params = count_params(ResNeXt(**kwargs))
        rows.append(dict(cardinality=c, width=d, template=f'{c}x{d}d',
                         stage_widths=stage_widths(c, kwargs['base_width'], base_channels),
                         block_params=block, block_dev=block / resnet_block - 1,
                         backbone_params=params, backbone_dev=params / resnet_params - 1))
    return rows


def count_params(module: torch.nn.Module) -> int:
    """Number of parameters of ``module`` (BN affine included, buffers not)."""
    return sum(p.numel() for p in module.parameters())


def backbone_complexity(backbone: Union[Mapping, torch.nn.Module],
                        input_size: Union[int, Sequence[int]] = 224) -> Dict:
    """Parameters and FLOPs of a backbone at one input size.

    Args:
        backbone: a built module, or the keyword arguments of ``resnext_det.ResNeXt`` (a
            config's ``model.backbone`` dict; its ``type`` and ``init_cfg`` are ignored, nothing
            is loaded).
        input_size: ``S`` for an SxS image or ``(H, W)``; 3 channels (the backbone's
            ``in_channels``), batch 1.

    Returns:
        ``dict(params=int, flops=int, gflops=float, input_size=(H, W))``, FLOPs counted as
        :mod:`resnext_det.analysis.complexity` does (mmengine's ``FlopAnalyzer``, one per
        multiply-add, as the paper counts; BN/ReLU/pooling are not counted, no fc).
    """
    from mmengine.analysis import FlopAnalyzer

    if isinstance(backbone, Mapping):
        kwargs = {k: v for k, v in dict(backbone).items() if k not in ('type', 'init_cfg')}
        backbone = ResNeXt(**kwargs)
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    in_channels = getattr(backbone, 'in_channels', 3)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(backbone, torch.zeros(1, in_channels, h, w))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            flops = int(analyzer.total())
    finally:
        backbone.train(was_training)
    return dict(params=count_params(backbone), flops=flops, gflops=flops / 1e9,
                input_size=(h, w))


def config_backbone_complexity(config: str, input_size: Union[int, Sequence[int]] = 224,
                               cfg_options: Optional[dict] = None) -> Dict:
    """:func:`backbone_complexity` of a config file's ``model.backbone``.

    E.g. ``config_backbone_complexity('configs/demo/resnet50_slim_cls_demo.py', 64)`` for the
    demo's pretraining crops. The result also has ``config`` and the backbone's ``depth``,
    ``groups``, ``base_width`` and ``base_channels``.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    backbone = cfg.model.backbone.to_dict()
    stats = backbone_complexity(backbone, input_size)
    defaults = dict(groups=1, base_width=4, base_channels=64)
    arch = {k: backbone.get(k, defaults.get(k)) for k in ('depth', 'groups', 'base_width',
                                                         'base_channels')}
    return dict(config=str(config), **arch, **stats)
