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

from ..models import ResNeXt

# At most this many keys are named in an error message.
MAX_NAMED_KEYS = 5
DEPTHS = {blocks: depth for depth, blocks in ResNeXt.arch_settings.items()}
BLOCK_KEY = re.compile(r'^layer([1-4])\.(\d+)\.')


class WeightsError(ValueError):
    """A checkpoint that does not fit the ResNeXt backbone, or is not a checkpoint at all."""


def name_keys(keys, describe=repr) -> str:
    """``'a', 'b', ... (N in all)``: the first few keys, enough to recognise the problem."""
    keys = list(keys)
    named = ', '.join(describe(k) for k in keys[:MAX_NAMED_KEYS])
    return named if len(keys) <= MAX_NAMED_KEYS else f'{named}, ... ({len(keys)} in all)'


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


def infer_arch(state_dict: Mapping) -> Dict:
    """The :class:`ResNeXt` arguments of a backbone-only state dict (``ResNeXt(**arch)``).

    Returns ``dict(depth, groups, base_width, base_channels, deep_stem=False)``. ResNets come
    out as ``groups=1, base_width=64`` like the builders' ``resnet50``. BN
    ``num_batches_tracked`` buffers may be absent (checkpoints older than PyTorch 0.4.1 lack
    them and BN fills them in on load); any other missing, extra or misshapen tensor raises
    :class:`WeightsError`.
    """
    for key in ('stem.0.weight', 'conv1.0.weight'):
        if key in state_dict:
            raise WeightsError(f'deep-stem (ResNet-C/D) checkpoint (key {key!r}): only the '
                               f'plain 7x7-stem ResNet/ResNeXt is supported')
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
    # The first stage's planes are base_channels, so its 3x3 is base_width * groups wide.
    arch = dict(depth=DEPTHS[blocks], groups=groups, base_width=64 if groups == 1 else
                width // groups, base_channels=planes, deep_stem=False)
    _check_against(state_dict, arch)
    return arch


@functools.lru_cache(maxsize=None)
def _expected_shapes(depth: int, groups: int, base_width: int,
                     base_channels: int) -> Dict[str, torch.Size]:
    # Built on the meta device: the real module gives the exact keys that a strict load
    # checks, with no memory or init cost.
    with torch.device('meta'):
        model = ResNeXt(depth=depth, groups=groups, base_width=base_width,
                        base_channels=base_channels)
    return {key: value.shape for key, value in model.state_dict().items()}


def _check_against(state_dict: Mapping, arch: Dict) -> None:
    expected = _expected_shapes(arch['depth'], arch['groups'], arch['base_width'],
                                arch['base_channels'])
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
        name = (f"ResNeXt(depth={arch['depth']}, groups={arch['groups']}, "
                f"base_width={arch['base_width']}, base_channels={arch['base_channels']})")
        raise WeightsError(f'state dict does not fit {name}: {"; ".join(problems)}')
