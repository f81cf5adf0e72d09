"""Which ResNeXt a backbone state dict is, read from its keys and tensor shapes.

A checkpoint does not say which network it belongs to, and loading it into the wrong one either
fails deep inside ``load_state_dict`` or, with ``strict=False`` (mmengine's ``Pretrained``
init), loads nothing but a logged warning. So the architecture is inferred from the tensors
themselves, and the whole state dict is then checked against the network that architecture
builds: every key present, none left over, every shape right.
"""
import functools
import re
from typing import Dict, Mapping, Tuple

import torch

from ..errors import WeightsError, first_few
from ..models import ResNeXt

# At most this many keys are named in an error message.
MAX_NAMED_KEYS = 5
DEPTHS = {blocks: depth for depth, (_, blocks) in ResNeXt.arch_settings.items()}
BLOCK_KEY = re.compile(r'^layer([1-4])\.(\d+)\.')


def name_keys(keys, describe=repr) -> str:
    """``'a', 'b', 'c', 'd', 'e' and 7 more``: enough keys to recognise the problem."""
    return first_few(keys, MAX_NAMED_KEYS, describe)


def _blocks_per_stage(state_dict: Mapping) -> Tuple[int, ...]:
    num_blocks = {}
    for key in state_dict:
        match = BLOCK_KEY.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            num_blocks[stage] = max(num_blocks.get(stage, 0), block + 1)
    if not num_blocks:
        prefixed = [k for k in state_dict if '.layer1.0.' in k]
        hint = (f"; its keys carry the prefix {prefixed[0].split('layer1.0.')[0]!r} (convert() "
                f"strips 'backbone.' for mmdet/mmpretrain checkpoints)" if prefixed else '')
        raise WeightsError(f'not a ResNet/ResNeXt backbone state dict: no stage keys like '
                           f"'layer1.0.conv1.weight' (keys: {name_keys(state_dict)}){hint}")
    if sorted(num_blocks) != [1, 2, 3, 4]:
        raise WeightsError(f'a ResNet/ResNeXt backbone has stages layer1..layer4, this state '
                           f'dict has {", ".join(f"layer{i}" for i in sorted(num_blocks))}')
    return tuple(num_blocks[stage] for stage in (1, 2, 3, 4))


def _shape(state_dict: Mapping, key: str) -> torch.Size:
    if key not in state_dict:
        raise WeightsError(f'missing key {key!r}, needed to tell the architecture')
    value = state_dict[key]
    if not isinstance(value, torch.Tensor):
        raise WeightsError(f'{key!r} holds a {type(value).__name__}, not a tensor')
    return value.shape


def _stem(state_dict: Mapping) -> Dict:
    """``stem_channels`` and ``deep_stem`` of a state dict, from its stem's tensors.

    The plain stem is one 7x7 conv (``conv1``, ``bn1``); the deep stem (ResNet-C/D, mmdet's
    ``ResNetV1c``/``ResNetV1d``) three 3x3 convs of ``C/2``, ``C/2`` and ``C`` outputs
    (``stem.0/3/6`` with their norms ``stem.1/4/7``). ``C`` is ``stem_channels``, the input
    width of ``layer1``.
    """
    if 'conv1.0.weight' in state_dict:
        raise WeightsError("deep stem in timm's layout (key 'conv1.0.weight'); convert it with "
                           "convert('timm', ...) or tools/convert_weights.py timm, which rename "
                           "conv1.{0,1,3,4,6}/bn1 to stem.{0,1,3,4,6,7}")
    if 'stem.0.weight' not in state_dict:
        return dict(stem_channels=_shape(state_dict, 'conv1.weight')[0], deep_stem=False)
    widths = [_shape(state_dict, f'stem.{i}.weight')[0] for i in (0, 3, 6)]
    stem_channels = widths[2]
    if widths != [stem_channels // 2, stem_channels // 2, stem_channels]:
        raise WeightsError(f'deep stem of widths {"/".join(map(str, widths))}: only the '
                           f'C/2, C/2, C stem (ResNet-C/D, e.g. 32/32/64) is supported, not '
                           f"a tiered one (timm's resnet*t)")
    return dict(stem_channels=stem_channels, deep_stem=True)


def infer_arch(state_dict: Mapping) -> Dict:
    """The :class:`ResNeXt` arguments of a backbone-only state dict (``ResNeXt(**arch)``).

    Returns ``dict(depth, groups, base_width, base_channels, stem_channels, deep_stem,
    avg_down)``. ResNets come out as ``groups=1, base_width=64`` like the builders'
    ``resnet50``. ``deep_stem`` (three 3x3 convs, keys ``stem.*``) and ``avg_down`` (the
    shortcut average-pools before its 1x1 conv, keys ``layerN.0.downsample.{1,2}``) are both
    True for ResNet-D (timm's ``resnet50d``/``resnext50d_32x4d`` once converted, mmdet's and
    mmpretrain's ``ResNetV1d``). BN ``num_batches_tracked`` buffers may be absent (checkpoints
    older than PyTorch 0.4.1 lack them and BN fills them in on load); any other missing, extra
    or misshapen tensor raises :class:`WeightsError`.
    """
    blocks = _blocks_per_stage(state_dict)
    if 'layer1.0.conv3.weight' not in state_dict and 'layer1.0.conv2.weight' in state_dict:
        raise WeightsError(f'BasicBlock ResNet checkpoint (ResNet-18/34 style: two 3x3 convs '
                           f"per block, no 'layer1.0.conv3.weight', blocks per stage {blocks}); "
                           f'only bottleneck ResNet/ResNeXt (depth 50/101/152) is supported')
    if blocks not in DEPTHS:
        known = ', '.join(f'{d}: {b}' for b, d in DEPTHS.items())
        raise WeightsError(f'blocks per stage {blocks} match no ResNet/ResNeXt depth ({known})')

    conv2, conv3 = (_shape(state_dict, f'layer1.0.conv{i}.weight') for i in (2, 3))
    if len(conv2) != 4 or len(conv3) != 4 or not conv2[1] or conv3[0] < ResNeXt.block.expansion:
        raise WeightsError(f'layer1.0.conv2/conv3 weights of shapes {tuple(conv2)}/'
                           f'{tuple(conv3)} are not those of a bottleneck block')
    planes = conv3[0] // ResNeXt.block.expansion
    width = conv2[0]
    groups = width // conv2[1]
    if groups == 1 and width != planes:
        raise WeightsError(f'bottleneck width {width} != planes {planes} without groups (a Wide '
                           f'ResNet?); only ResNet and ResNeXt are supported')
    stem = _stem(state_dict)
    # The first stage's planes are base_channels, so its 3x3 is base_width * groups wide.
    arch = dict(depth=DEPTHS[blocks], groups=groups, base_width=64 if groups == 1 else
                width // groups, base_channels=planes, stem_channels=stem['stem_channels'],
                deep_stem=stem['deep_stem'],
                # plain shortcut: conv 'downsample.0', norm '.1'; avg-down: pool, conv, norm
                avg_down=('layer1.0.downsample.0.weight' not in state_dict
                          and 'layer1.0.downsample.1.weight' in state_dict))
    _check_against(state_dict, arch)
    return arch


def describe_arch(arch: Mapping) -> str:
    """``ResNeXt(depth=50, groups=32, ...)`` for messages: every field of :func:`infer_arch`."""
    return 'ResNeXt(' + ', '.join(f'{k}={v}' for k, v in arch.items()) + ')'


@functools.lru_cache(maxsize=None)
def _expected_shapes(depth: int, groups: int, base_width: int, base_channels: int,
                     stem_channels: int, deep_stem: bool,
                     avg_down: bool) -> Dict[str, torch.Size]:
    # Built on the meta device: the real module gives the exact keys that a strict load
    # checks, with no memory or init cost.
    with torch.device('meta'):
        model = ResNeXt(depth=depth, groups=groups, base_width=base_width,
                        base_channels=base_channels, stem_channels=stem_channels,
                        deep_stem=deep_stem, avg_down=avg_down)
    return {key: value.shape for key, value in model.state_dict().items()}


def _check_against(state_dict: Mapping, arch: Dict) -> None:
    expected = _expected_shapes(**arch)
    missing = [k for k in expected
               if k not in state_dict and not k.endswith('.num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in expected]
    not_tensors = [k for k in state_dict
                   if k in expected and not isinstance(state_dict[k], torch.Tensor)]
    misshapen = [k for k in state_dict if k in expected and k not in not_tensors
                 and state_dict[k].shape != expected[k]]
    problems = [f'{what}: {name_keys(keys)}' for what, keys in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('values that are not tensors', not_tensors)) if keys]
    if misshapen:
        problems.append('wrong shapes: ' + name_keys(misshapen, lambda k: (
            f'{k!r} {tuple(state_dict[k].shape)} instead of {tuple(expected[k])}')))
    if problems:
        raise WeightsError(f'state dict does not fit {describe_arch(arch)}: '
                           f'{"; ".join(problems)}')
