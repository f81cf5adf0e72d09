"""ResNeXt backbone (Xie et al., 2017): mmdet 3.3's ``ResNeXt`` and ``Bottleneck`` subclassed,
same arguments, module names and state-dict keys (torchvision's too, minus ``fc``), plus:

* ``zero_init_residual`` that works for ResNeXt (mmdet compares the block class with ResNet's by
  identity and skips it): each block's ``zero_init_last()`` (timm's hook) runs after the init,
  unless a ``'Pretrained'`` ``init_cfg`` (or ``pretrained=``) loads weights;
* one ``ValueError`` naming every bad argument, before mmdet's asserts; a wrong input channel
  count is reported at forward;
* non-reentrant ``with_cp``: right gradients also for frozen (no-grad) inputs;
* ``dcn`` with ``fallback_on_stride``: a plain 3x3 in strided blocks only, the dict untouched;
* ``channels_last`` and ``fold_frozen_bn``. Folding is a structural change made once, as
  detectron2's FrozenBatchNorm2d: each frozen (conv, BN) becomes a conv with the BN in
  non-persistent buffers and an identity holding the BN's tensors (same state dict), refolded
  after init, on ``load_state_dict``, ``.to()`` and ``train()``: forward checks nothing.
"""
import inspect
import math

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmdet.models.backbones import ResNet, ResNeXt as MMDetResNeXt
from mmdet.models.backbones.resnext import Bottleneck as MMDetBottleneck
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import MODELS

PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


def bottleneck_width(planes: int, groups: int, base_width: int, base_channels: int = 64) -> int:
    """Channels of a block's grouped 3x3, as mmdet's block computes them: the paper's
    ``floor(planes * W / 64) * C``; ``groups == 1`` (ResNet) is ``planes`` whatever W."""
    return planes if groups == 1 else math.floor(planes * (base_width / base_channels)) * groups


class Bottleneck(MMDetBottleneck):
    """mmdet's ResNeXt block with non-reentrant ``with_cp``, ``zero_init_last`` and a
    per-block ``fallback_on_stride`` that leaves the ``dcn`` dict passed in unchanged."""

    def __init__(self, inplanes, planes, stride=1, style='pytorch', dcn=None, **kwargs):
        if isinstance(dcn, dict):
            dcn = dict(dcn)
            if dcn.pop('fallback_on_stride', False) and style == 'pytorch' and stride > 1:
                dcn = None  # the strided 3x3 stays a plain conv
        super().__init__(inplanes, planes, stride=stride, style=style, dcn=dcn, **kwargs)

    def zero_init_last(self) -> None:
        """Start as the identity: zero the last norm (mmdet's Constant(val=0) on norm3)."""
        for p in self.norm3.parameters():
            nn.init.zeros_(p)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for k in (1, 2, 3):  # conv, norm, relu (not after the last), plugins
            out = getattr(self, f'norm{k}')(getattr(self, f'conv{k}')(out))
            out = self.relu(out) if k < 3 else out
            if self.with_plugins:
                out = self.forward_plugin(out, getattr(self, f'after_conv{k}_plugin_names'))
        return out + (x if self.downsample is None else self.downsample(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and torch.is_grad_enabled():
            return self.relu(cp.checkpoint(self._inner_forward, x, use_reentrant=False))
        return self.relu(self._inner_forward(x))


def fold_bn_into_conv(conv: nn.Conv2d, norm: nn.Module):
    """Weight and bias of the one conv equal to ``norm(conv(x))`` for a BN in eval mode (the
    arithmetic of ``torch.nn.utils.fusion.fuse_conv_bn_weights``, without its Parameters)."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    scale = scale if norm.weight is None else scale * norm.weight
    bias = -norm.running_mean * scale + (0 if norm.bias is None else norm.bias)
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale.reshape(-1, 1, 1, 1), bias


class FoldedConv2d(nn.Conv2d):
    """A frozen conv computing ``norm(conv(x))``: the BN is in ``folded_weight``/``_bias``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.folded_weight, self.folded_bias)


class FoldedNorm(nn.Module):
    """A frozen BN folded into the conv before it: an identity keeping the BN's tensors."""
    _version = 2  # BN's, so even the state dict's metadata is unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _is_int(value, minimum) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _seq(value, length, minimum=None) -> bool:
    """A list or tuple of ``length`` (any if None) items, integers >= ``minimum`` if given."""
    return (isinstance(value, (tuple, list)) and length in (None, len(value))
            and (minimum is None or all(_is_int(v, minimum) for v in value)))


def _check_args(a: dict) -> None:
    """One ValueError naming every bad argument, where mmdet would assert (or KeyError). A
    non-str ``pretrained`` is left to mmdet's TypeError."""
    bad, depths = [], tuple(MMDetResNeXt.arch_settings)
    n = a['num_stages'] if _is_int(a['num_stages'], 1) and a['num_stages'] <= 4 else None

    def need(ok, name, what):
        if not ok:
            bad.append(f'{name}={a[name]!r} {what}')

    need(type(a['depth']) is int and a['depth'] in depths, 'depth',  # not 50.0, not True
         f"is not one of {', '.join(map(str, depths))}")
    need(n, 'num_stages', 'is not one of 1, 2, 3, 4')
    for name in ('groups', 'base_width', 'in_channels', 'base_channels'):  # no zero widths
        need(_is_int(a[name], 1), name, 'must be a positive integer')
    need(_is_int(a['stem_channels'], 1 + bool(a['deep_stem'])), 'stem_channels',
         'must be a positive integer (>= 2 with deep_stem)')
    for name in ('strides', 'dilations'):
        need(_seq(a[name], n, 1), name, f'must be {n or "num_stages"} integers >= 1')
    need(_seq(a['out_indices'], None, 0) and a['out_indices'] and max(a['out_indices']) < (
        n or 4), 'out_indices', f"must be stage indices in 0..{n - 1 if n else 'num_stages-1'}")
    need(_is_int(a['frozen_stages'], -1) and a['frozen_stages'] <= (n or 4), 'frozen_stages',
         f"must be in -1..{n or 'num_stages'} (-1: nothing, 0: stem, k: stem + k stages)")
    need(a['style'] in ('pytorch', 'caffe'), 'style', "is not one of 'pytorch', 'caffe'")
    for name in ('channels_last', 'fold_frozen_bn'):
        need(isinstance(a[name], bool), name, 'must be True or False')
    norm = a['norm_cfg'].get('type') if isinstance(a['norm_cfg'], dict) else None
    need(a['fold_frozen_bn'] is not True or 'BN' in str(norm), 'fold_frozen_bn',
         f"needs BatchNorm layers (BN or SyncBN), got norm_cfg={a['norm_cfg']!r}")
    need(not (a['pretrained'] and a['init_cfg']), 'pretrained',
         f"and init_cfg={a['init_cfg']!r} cannot both be given")
    if a['dcn'] is not None:
        with_dcn = a['stage_with_dcn']
        need(isinstance(a['dcn'], dict), 'dcn', 'must be None or a dict (a conv layer config)')
        need(_seq(with_dcn, n), 'stage_with_dcn', f'must have num_stages={n} entries')
        need(a['conv_cfg'] is None or not (_seq(with_dcn, None) and any(with_dcn)), 'conv_cfg',
             f"cannot be combined with dcn={a['dcn']!r} (mmdet: conv_cfg must be None for DCN)")
    _check_plugins(a['plugins'] or [], n, bad)
    if bad:
        raise ValueError('ResNeXt: ' + '; '.join(bad))


def _check_plugins(plugins, n, bad: list) -> None:
    if not isinstance(plugins, list):
        return bad.append(f'plugins={plugins!r} must be None or a list of dicts')
    for i, p in enumerate(plugins):
        if not (isinstance(p, dict) and isinstance(p.get('cfg'), dict)):
            bad.append(f"plugins[{i}]={p!r} must be a dict with a 'cfg' dict and a 'position'")
        elif p.get('position') not in PLUGIN_POSITIONS:
            bad.append(f"plugins[{i}] position={p.get('position')!r} is not one of "
                       f"{', '.join(map(repr, PLUGIN_POSITIONS))}")
        elif p.get('stages') is not None and not _seq(p['stages'], n):
            bad.append(f"plugins[{i}] stages={p['stages']!r} must have num_stages={n} entries")
    for stage in range(n or 0) if not bad else ():  # a plugin's name: its type's, + postfix
        names = [(p['cfg'].get('type'), str(p['cfg'].get('postfix', ''))) for p in plugins
                 if p.get('stages') is None or p['stages'][stage]]
        if len(set(names)) < len(names):
            return bad.append(f"plugins: two of one type in stage {stage + 1}; give them "
                              f"different 'postfix' values")


@MODELS.register_module()
class ResNeXt(MMDetResNeXt):
    """mmdet's ``ResNeXt`` (``groups=1``: ResNet) with the module docstring's fixes, plus:

    Args:
        channels_last (bool): weights and input in channels_last (NHWC) memory, the layout
            fp16/bf16 tensor-core convolutions run fastest in; outputs stay channels_last.
        fold_frozen_bn (bool): fold each BN of the frozen stem/stages into the conv before it
            (exact: those BNs stay in eval mode). Needs BN-type norm layers.
    """
    block = Bottleneck  # mmdet sets it per instance from arch_settings; here for the class too
    arch_settings = {depth: (Bottleneck, blocks)
                     for depth, (_, blocks) in MMDetResNeXt.arch_settings.items()}
    _folded = ()

    def __init__(self, depth: int, groups: int = 1, base_width: int = 4,
                 channels_last: bool = False, fold_frozen_bn: bool = False, **kwargs):
        args = inspect.signature(ResNet.__init__).bind(self, depth, **kwargs)
        args.apply_defaults()
        args = dict(args.arguments, groups=groups, base_width=base_width,
                    channels_last=channels_last, fold_frozen_bn=fold_frozen_bn)
        if args['stem_channels'] is None:
            args['stem_channels'] = args['base_channels']
        _check_args(args)
        if args['dcn'] is None:  # mmdet indexes stage_with_dcn even without a DCN
            kwargs['stage_with_dcn'] = (False, ) * args['num_stages']
        self.in_channels = args['in_channels']
        self.channels_last, self.fold_frozen_bn = channels_last, fold_frozen_bn
        super().__init__(depth=depth, groups=groups, base_width=base_width, **kwargs)
        # in forward's (stage) order, whatever out_indices' order
        self.out_channels = tuple(self.base_channels * 2**i * self.block.expansion
                                  for i in sorted(set(self.out_indices)))
        self._folded = self._frozen_conv_bn_pairs() if fold_frozen_bn else []
        for conv, norm in self._folded:  # a class swap, as torch.nn.utils.parametrize does
            conv.__class__, norm.__class__ = FoldedConv2d, FoldedNorm
            conv.register_buffer('folded_weight', None, persistent=False)
            conv.register_buffer('folded_bias', None, persistent=False)
        self.refold()
        self.register_load_state_dict_post_hook(ResNeXt.refold)
        if channels_last:  # 4-d tensors only; loading weights later (copy_) keeps the layout
            self.to(memory_format=torch.channels_last)

    def _frozen_conv_bn_pairs(self) -> list:
        """(conv, BN) pairs of the frozen stem and stages, where ``BN(conv(x))`` folds."""
        if self.frozen_stages < 0:
            return []
        blocks = [b for i in range(1, self.frozen_stages + 1) for b in getattr(self, f'layer{i}')]
        pairs = [(b.conv1, b.norm1) for b in blocks] + [(b.conv2, b.norm2) for b in blocks] + [
            (b.conv3, b.norm3) for b in blocks]
        pairs += [] if self.deep_stem else [(self.conv1, self.norm1)]
        sequences = [self.stem] if self.deep_stem else []  # and the shortcuts: (pool,) conv, BN
        for seq in sequences + [b.downsample for b in blocks if b.downsample is not None]:
            pairs += zip(seq[:-1], seq[1:])
        # exact types: a DCN or weight-standardised conv is not a linear map of its weight
        return [(c, n) for c, n in pairs
                if type(c) is nn.Conv2d and isinstance(n, _BatchNorm) and n.track_running_stats]

    @torch.no_grad()
    def refold(self, *_) -> None:
        """Fold the frozen BNs into their convs anew (also the load_state_dict post hook)."""
        for conv, norm in self._folded:
            conv.folded_weight, conv.folded_bias = fold_bn_into_conv(conv, norm)

    def _apply(self, fn, *args, **kwargs):  # .to(), .half(), ...: fold the moved tensors
        super()._apply(fn, *args, **kwargs)
        self.refold()
        return self

    def init_weights(self) -> None:
        first = not self._is_init
        super().init_weights()
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if first and self.zero_init_residual and not any(
                isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs):
            for m in self.modules():
                if hasattr(m, 'zero_init_last'):
                    m.zero_init_last()
        self.refold()

    def train(self, mode: bool = True) -> 'ResNeXt':
        super().train(mode)
        self.refold()
        return self

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'ResNeXt expects input of shape (N, {self.in_channels}, H, W) '
                             f'(in_channels={self.in_channels}), got {tuple(x.shape)}')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)
