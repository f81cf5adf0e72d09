"""ResNeXt backbone (Xie et al., 2017) for MMDetection 3.x.

One class covers ResNet and ResNeXt: a bottleneck block whose 3x3 convolution has ``groups``
groups (the paper's form (c)). ``groups=1`` is ResNet. Module names, and so state-dict keys, are
those of mmdet's ``ResNet``/``ResNeXt`` and torchvision's ``resnet*``/``resnext*`` (minus ``fc``),
so model-zoo checkpoints load as they are.

Differences from mmdet 3.3's ``ResNeXt`` that users may notice:

* ``zero_init_residual=True`` zeroes the last norm of every block (mmdet's check compares the
  block class with ResNet's by identity and silently skips ResNeXt);
* bad arguments raise ``ValueError`` naming the argument and the allowed values instead of a bare
  ``assert``; a wrong input channel count is reported at forward;
* ``with_cp`` uses non-reentrant checkpointing, which also works with frozen inputs;
* a ``dcn`` with ``fallback_on_stride=True`` gives a plain 3x3 conv in the strided blocks only,
  and the ``dcn`` dict passed in is never modified.

mmdet's other checks are kept (as ``ValueError``): ``style`` and plugin positions are validated
by the block too, ``dcn`` cannot be combined with a ``conv_cfg``; and the deprecated
``pretrained=`` argument works as in mmdet (a warning, then
``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``).
"""
import math
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer, build_plugin_layer
from mmdet.models.layers import ResLayer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import MODELS

STYLES = ('pytorch', 'caffe')
PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


def _allowed(values) -> str:
    return ', '.join(map(repr, values))


def _dcn_conv_cfg_message(dcn, conv_cfg) -> str:
    return (f'dcn={dcn!r} cannot be combined with conv_cfg={conv_cfg!r}: the 3x3 convs would be '
            f'DCN and every other conv {conv_cfg!r} (mmdet: conv_cfg must be None for DCN); '
            f'set conv_cfg=None or dcn=None')


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    # exact types: a DCN or weight-standardised conv is not a linear map of its weight alone
    return (type(conv) is nn.Conv2d and isinstance(norm, _BatchNorm) and not norm.training
            and norm.track_running_stats and not conv.weight.requires_grad)


def fold_bn_into_conv(conv: nn.Conv2d, norm: _BatchNorm) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the one conv equal to ``norm(conv(x))`` for a BN in eval mode.

    The arithmetic of ``torch.nn.utils.fusion.fuse_conv_bn_weights``, without the
    ``nn.Parameter`` it returns, which torch.compile cannot trace.
    """
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    bias = -norm.running_mean * scale
    if norm.bias is not None:
        bias = bias + norm.bias
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale.reshape(-1, 1, 1, 1), bias


def conv_norm(conv: nn.Module, norm: nn.Module, x: torch.Tensor, fold: bool) -> torch.Tensor:
    """``norm(conv(x))``; with ``fold``, one convolution with the BN folded into its weights.

    Folding is exact only for a frozen conv followed by a BN in eval mode (fixed statistics,
    fixed affine), i.e. the stem and stages that ``frozen_stages`` freezes; anything else runs
    unfolded. It saves one read and write of the activation per BN. In eager mode the folded
    weights are cached on the conv and recomputed whenever one of the source tensors changes
    (loading a checkpoint, ``.to(device)``), which ``_version`` and ``data_ptr`` tell; under
    torch.compile the fold is part of the graph instead.
    """
    if not (fold and _foldable(conv, norm)):
        return norm(conv(x))
    if torch.compiler.is_compiling():
        with torch.no_grad():
            weight, bias = fold_bn_into_conv(conv, norm)
        return conv._conv_forward(x, weight, bias)
    sources = (conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.weight,
               norm.bias)
    key = tuple((t._version, t.data_ptr()) if t is not None else None for t in sources)
    cached = getattr(conv, '_folded_bn', None)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = conv._folded_bn = (key, *fold_bn_into_conv(conv, norm))
    return conv._conv_forward(x, cached[1], cached[2])


def run_sequential(layers: nn.Sequential, x: torch.Tensor, fold: bool) -> torch.Tensor:
    """Run ``layers`` (a stem or a downsample shortcut), folding conv + BN pairs if ``fold``."""
    modules = list(layers)
    i = 0
    while i < len(modules):
        if fold and i + 1 < len(modules) and _foldable(modules[i], modules[i + 1]):
            x = conv_norm(modules[i], modules[i + 1], x, fold=True)
            i += 2
        else:
            x = modules[i](x)
            i += 1
    return x


def bottleneck_width(planes: int, groups: int, base_width: int, base_channels: int = 64) -> int:
    """Channels of a bottleneck's grouped 3x3 conv: ``floor(planes * W / 64) * C``.

    ``groups == 1`` means ResNet, whose bottleneck width is ``planes`` whatever ``base_width``
    says (mmdet's convention, kept so ``groups=1`` configs give the same network).
    """
    if groups == 1:
        return planes
    return math.floor(planes * base_width / base_channels) * groups


class Bottleneck(BaseModule):
    """ResNeXt bottleneck: 1x1 reduce -> 3x3 grouped -> 1x1 expand, plus the shortcut.

    ``style='pytorch'`` puts the stride on the 3x3 conv, ``'caffe'`` on the first 1x1.
    Arguments are checked as in mmdet's ``Bottleneck`` (``style``, plugin positions, ``dcn``
    without ``conv_cfg``), with one ``ValueError`` that names every bad argument.
    """
    expansion = 4
    # set by the backbone on frozen blocks when ``fold_frozen_bn`` is on
    fold_bn = False

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 groups: int = 1,
                 base_width: int = 4,
                 base_channels: int = 64,
                 style: str = 'pytorch',
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 plugins: Optional[list] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        self._check_args(style, conv_cfg, dcn, plugins)
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        width = bottleneck_width(planes, groups, base_width, base_channels)
        out_channels = planes * self.expansion

        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, out_channels, postfix=3)

        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, width, kernel_size=1, stride=self.conv1_stride, bias=False)
        self.add_module(self.norm1_name, norm1)
        conv2_cfg = conv_cfg
        if dcn is not None:
            dcn = dict(dcn)
            # mmdet's convention: a DCN whose 'fallback_on_stride' is set is a plain conv in
            # strided blocks.
            if not (dcn.pop('fallback_on_stride', False) and self.conv2_stride > 1):
                conv2_cfg = dcn
        self.conv2 = build_conv_layer(
            conv2_cfg, width, width, kernel_size=3, stride=self.conv2_stride,
            padding=dilation, dilation=dilation, groups=groups, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(conv_cfg, width, out_channels, kernel_size=1, bias=False)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

        plugins = plugins or []
        self.after_conv1_plugin_names = self._make_plugins(width, plugins, 'after_conv1')
        self.after_conv2_plugin_names = self._make_plugins(width, plugins, 'after_conv2')
        self.after_conv3_plugin_names = self._make_plugins(out_channels, plugins, 'after_conv3')

    @staticmethod
    def _check_args(style, conv_cfg, dcn, plugins) -> None:
        """mmdet's block-level checks, as one ValueError naming every bad argument."""
        problems = []
        if not (isinstance(style, str) and style in STYLES):
            problems.append(f'style={style!r} is not supported; allowed values: '
                            f'{_allowed(STYLES)}')
        if dcn is not None and not isinstance(dcn, dict):
            problems.append(f'dcn={dcn!r} must be None or a dict (a conv layer config)')
        elif dcn is not None and conv_cfg is not None:
            problems.append(_dcn_conv_cfg_message(dcn, conv_cfg))
        for i, plugin in enumerate(plugins or []):
            if not (isinstance(plugin, dict) and isinstance(plugin.get('cfg'), dict)):
                problems.append(f"plugins[{i}]={plugin!r} must be a dict with a 'cfg' dict and "
                                f"a 'position'")
            elif plugin.get('position') not in PLUGIN_POSITIONS:
                problems.append(f"plugins[{i}] position={plugin.get('position')!r} is not "
                                f'supported; allowed values: {_allowed(PLUGIN_POSITIONS)}')
        if problems:
            raise ValueError('Bottleneck: ' + '; '.join(problems))

    def _make_plugins(self, in_channels: int, plugins: list, position: str) -> list:
        names = []
        for plugin in plugins:
            if plugin['position'] != position:
                continue
            cfg = dict(plugin['cfg'])
            name, layer = build_plugin_layer(cfg, in_channels=in_channels,
                                             postfix=cfg.pop('postfix', ''))
            if hasattr(self, name):
                raise ValueError(f'plugins: two plugins are both named {name!r}; give them '
                                 f"different 'postfix' values")
            self.add_module(name, layer)
            names.append(name)
        return names

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _run_plugins(self, x: torch.Tensor, names: list) -> torch.Tensor:
        for name in names:
            x = getattr(self, name)(x)
        return x

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        fold = self.fold_bn
        out = self.relu(conv_norm(self.conv1, self.norm1, x, fold))
        out = self._run_plugins(out, self.after_conv1_plugin_names)
        out = self.relu(conv_norm(self.conv2, self.norm2, out, fold))
        out = self._run_plugins(out, self.after_conv2_plugin_names)
        out = conv_norm(self.conv3, self.norm3, out, fold)
        out = self._run_plugins(out, self.after_conv3_plugin_names)
        identity = x if self.downsample is None else run_sequential(self.downsample, x, fold)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and torch.is_grad_enabled():
            # non-reentrant: also recomputes correctly when x itself needs no grad
            # (frozen stem), where reentrant checkpointing would drop the block's weight grads
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


def _check_choice(name, value, allowed):
    # exact types too: 50.0 or True would otherwise compare equal to 50 or 1
    if isinstance(value, bool) or not any(value == a and type(value) is type(a)
                                          for a in allowed):
        raise ValueError(f'ResNeXt: {name}={value!r} is not supported; '
                         f'allowed values: {", ".join(map(repr, allowed))}')


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(name, value, length=None, minimum=None):
    """``value`` as a tuple of ints, or a ValueError naming ``name``."""
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if (items is None or (length is not None and len(items) != length)
            or not all(_is_int(v) and (minimum is None or v >= minimum) for v in items)):
        what = f'{length} ' if length is not None else ''
        bound = f' >= {minimum}' if minimum is not None else ''
        raise ValueError(f'ResNeXt: {name}={value!r} must be a sequence of {what}integers{bound}')
    return items


def _check_pretrained(pretrained, init_cfg) -> None:
    """mmdet's checks of the deprecated ``pretrained`` (TypeError as in mmdet)."""
    if pretrained is not None and not isinstance(pretrained, str):
        raise TypeError(f'ResNeXt: pretrained={pretrained!r} must be a str (checkpoint path '
                        f'or URL) or None')
    if pretrained is not None and init_cfg is not None:
        raise ValueError(f'ResNeXt: pretrained={pretrained!r} and init_cfg={init_cfg!r} '
                         f"cannot both be given; use init_cfg=dict(type='Pretrained', "
                         f'checkpoint=...) alone')


def _check_dcn(dcn, stage_with_dcn, conv_cfg, num_stages) -> None:
    if dcn is None:
        return
    if not isinstance(dcn, dict):
        raise ValueError(f'ResNeXt: dcn={dcn!r} must be None or a dict (a conv layer config)')
    if not isinstance(stage_with_dcn, (tuple, list)) or len(stage_with_dcn) != num_stages:
        raise ValueError(f'ResNeXt: stage_with_dcn={stage_with_dcn!r} must have '
                         f'num_stages={num_stages} entries')
    if conv_cfg is not None and any(stage_with_dcn):
        # as mmdet: only refused when some stage actually gets the DCN
        raise ValueError('ResNeXt: ' + _dcn_conv_cfg_message(dcn, conv_cfg))


def _check_plugins(plugins, num_stages) -> None:
    for plugin in plugins or []:
        if not (isinstance(plugin, dict) and isinstance(plugin.get('cfg'), dict)):
            raise ValueError(f"ResNeXt: plugins entry {plugin!r} must be a dict with a 'cfg' "
                             f"dict, a 'position' and optionally 'stages'")
        if plugin.get('position') not in PLUGIN_POSITIONS:
            raise ValueError(f"ResNeXt: plugin position {plugin.get('position')!r} is not "
                             f'one of {PLUGIN_POSITIONS}')
        if plugin.get('stages') is not None and len(plugin['stages']) != num_stages:
            raise ValueError(f"ResNeXt: plugin stages={plugin['stages']} must have "
                             f'num_stages={num_stages} entries')


@MODELS.register_module()
class ResNeXt(BaseModule):
    """ResNeXt (and ResNet, ``groups=1``) backbone with mmdet's arguments and outputs.

    Args:
        depth (int): 50, 101 or 152.
        groups (int): cardinality C of the grouped 3x3 convs. 1 gives ResNet.
        base_width (int): width W of one group in the first stage ("32x4d": groups=32,
            base_width=4). The 3x3 width of stage i is ``floor(64 * 2**i * W / 64) * C``.
        in_channels (int): input image channels.
        stem_channels (int, optional): stem output channels; defaults to ``base_channels``.
        base_channels (int): ``planes`` of the first stage (outputs 4x that).
        num_stages (int): 1-4 residual stages.
        strides, dilations (Sequence[int]): per stage, for the first block.
        out_indices (Sequence[int]): stages whose outputs are returned (FPN takes all four:
            strides 4/8/16/32, channels 256/512/1024/2048 at the default widths).
        style (str): 'pytorch' (stride on the 3x3) or 'caffe' (stride on the first 1x1).
        deep_stem (bool): three 3x3 convs instead of the 7x7 stem (ResNet-D).
        avg_down (bool): average-pool then 1x1 in the shortcut when downsampling (ResNet-D).
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and stages 1..k
            (no grads, norm layers kept in eval mode).
        conv_cfg, norm_cfg (dict): mmcv layer configs (BN, SyncBN, GN, ...).
        norm_eval (bool): keep BN layers in eval mode during training (frozen statistics).
        dcn (dict), stage_with_dcn (Sequence[bool]): deformable 3x3 convs per stage.
        plugins (list[dict]): mmdet-style block plugins (``cfg``, ``position``, ``stages``).
        with_cp (bool): activation checkpointing per block (less memory, more compute).
        zero_init_residual (bool): init the last norm of each block to zero, so every block
            starts as the identity (ignored when weights are loaded from a checkpoint).
        channels_last (bool): keep weights and activations in channels_last (NHWC) memory,
            the layout fp16/bf16 tensor-core convolutions run fastest in. Outputs are
            channels_last too, so the neck and heads' convolutions follow.
        fold_frozen_bn (bool): fold each BN of the frozen stem/stages into the conv before it
            (exact: frozen stages keep their BN in eval mode). Needs BN-type norm layers.
        pretrained (str, optional): deprecated, as in mmdet: a checkpoint path or URL, turned
            into ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` with a warning.
            Cannot be combined with ``init_cfg``.
        init_cfg (dict | list[dict]): e.g. ``dict(type='Pretrained', checkpoint=PATH)``.

    State dicts are the same with and without ``channels_last`` and ``fold_frozen_bn``.
    """

    arch_settings = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
    block = Bottleneck

    def __init__(self,
                 depth: int,
                 groups: int = 1,
                 base_width: int = 4,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[list] = None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 channels_last: bool = False,
                 fold_frozen_bn: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        _check_pretrained(pretrained, init_cfg)
        _check_choice('depth', depth, tuple(self.arch_settings))
        for name, value in (('channels_last', channels_last), ('fold_frozen_bn', fold_frozen_bn)):
            if not isinstance(value, bool):
                raise ValueError(f'ResNeXt: {name}={value!r} must be True or False')
        norm_type = norm_cfg.get('type') if isinstance(norm_cfg, dict) else None
        if fold_frozen_bn and not (isinstance(norm_type, str) and 'BN' in norm_type):
            raise ValueError(f'ResNeXt: fold_frozen_bn=True needs BatchNorm layers '
                             f'(norm_cfg type BN or SyncBN), got norm_cfg={norm_cfg!r}; '
                             f'set fold_frozen_bn=False')
        _check_choice('style', style, ('pytorch', 'caffe'))
        _check_choice('num_stages', num_stages, (1, 2, 3, 4))
        for name, value in (('groups', groups), ('base_width', base_width),
                            ('in_channels', in_channels), ('base_channels', base_channels)):
            if not _is_int(value) or value < 1:
                # zero or fractional groups/widths would give zero-width or fractional
                # bottlenecks (width = floor(planes * base_width / base_channels) * groups)
                raise ValueError(f'ResNeXt: {name}={value!r} must be a positive integer')
        stem_channels = base_channels if stem_channels is None else stem_channels
        if not _is_int(stem_channels) or stem_channels < (2 if deep_stem else 1):
            raise ValueError(f'ResNeXt: stem_channels={stem_channels!r} must be a positive '
                             f'integer (>= 2 with deep_stem)')
        # one per stage (num_stages entries)
        strides = _int_tuple('strides', strides, num_stages, minimum=1)
        dilations = _int_tuple('dilations', dilations, num_stages, minimum=1)
        out_indices = _int_tuple('out_indices', out_indices)
        if not out_indices or any(i not in range(num_stages) for i in out_indices):
            raise ValueError(f'ResNeXt: out_indices={out_indices} must be stage indices in '
                             f'0..{num_stages - 1} (num_stages={num_stages})')
        if not _is_int(frozen_stages) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'ResNeXt: frozen_stages={frozen_stages!r} must be in '
                             f'-1..{num_stages} (-1: nothing, 0: stem, k: stem + k stages)')
        _check_dcn(dcn, stage_with_dcn, conv_cfg, num_stages)
        _check_plugins(plugins, num_stages)

        self.depth = depth
        self.groups = groups
        self.base_width = base_width
        self.in_channels = in_channels
        self.stem_channels = stem_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = strides
        self.dilations = dilations
        self.out_indices = out_indices
        self.style = style
        self.deep_stem = deep_stem
        self.avg_down = avg_down
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.channels_last = channels_last
        self.fold_frozen_bn = fold_frozen_bn
        self.stage_blocks = self.arch_settings[depth][:num_stages]

        if pretrained is not None:
            warnings.warn('DeprecationWarning: pretrained is deprecated, please use "init_cfg" '
                          f'instead (ResNeXt: pretrained={pretrained!r} is read as '
                          f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r}))")
            self.init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif init_cfg is None:
            self.init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                             dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        # Zero-init of the last norm only makes sense for a random start: pretrained weights
        # loaded through init_cfg must not be overwritten afterwards.
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        loads_checkpoint = any(cfg.get('type') == 'Pretrained' for cfg in init_cfgs)
        block_init_cfg = (dict(type='Constant', val=0, override=dict(name='norm3'))
                          if zero_init_residual and not loads_checkpoint else None)

        self._make_stem_layer(in_channels, stem_channels)
        self.res_layers = []
        inplanes = stem_channels
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            stage_plugins = [p for p in plugins or []
                             if p.get('stages') is None or p['stages'][i]]
            res_layer = ResLayer(
                block=self.block,
                inplanes=inplanes,
                planes=planes,
                num_blocks=num_blocks,
                stride=strides[i],
                dilation=dilations[i],
                groups=groups,
                base_width=base_width,
                base_channels=base_channels,
                style=style,
                avg_down=avg_down,
                with_cp=with_cp,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                dcn=dcn if dcn is not None and stage_with_dcn[i] else None,
                plugins=stage_plugins,
                init_cfg=block_init_cfg)
            inplanes = planes * self.block.expansion
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, res_layer)
            self.res_layers.append(layer_name)
        # in the order forward() returns the outputs: stage order, whatever out_indices' order
        self.out_channels = tuple(base_channels * 2**i * self.block.expansion
                                  for i in sorted(set(out_indices)))
        self.feat_dim = inplanes
        self._freeze_stages()
        if fold_frozen_bn:
            for i in range(1, frozen_stages + 1):
                for block in getattr(self, f'layer{i}'):
                    block.fold_bn = True
        if channels_last:
            # only 4-d tensors change layout; loading weights later (copy_) keeps it
            self.to(memory_format=torch.channels_last)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            half = stem_channels // 2
            layers = []
            for i, (cin, cout) in enumerate(((in_channels, half), (half, half),
                                             (half, stem_channels))):
                layers += [
                    build_conv_layer(self.conv_cfg, cin, cout, kernel_size=3,
                                     stride=2 if i == 0 else 1, padding=1, bias=False),
                    build_norm_layer(self.norm_cfg, cout)[1],
                    nn.ReLU(inplace=True)
                ]
            self.stem = nn.Sequential(*layers)
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels,
                                          kernel_size=7, stride=2, padding=3, bias=False)
            self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def frozen_modules(self) -> list:
        """The stem and stages that ``frozen_stages`` freezes, in forward order."""
        if self.frozen_stages < 0:
            return []
        stem = [self.stem] if self.deep_stem else [self.conv1, self.norm1]
        return stem + [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]

    def _freeze_stages(self) -> None:
        for m in self.frozen_modules():
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'ResNeXt expects input of shape (N, {self.in_channels}, H, W) '
                             f'(in_channels={self.in_channels}), got {tuple(x.shape)}')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        fold_stem = self.fold_frozen_bn and self.frozen_stages >= 0
        if self.deep_stem:
            x = run_sequential(self.stem, x, fold_stem)
        else:
            x = self.relu(conv_norm(self.conv1, self.norm1, x, fold_stem))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'ResNeXt':
        """Train mode that keeps frozen stages, and with ``norm_eval`` all BN, in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
