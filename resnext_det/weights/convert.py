"""Backbone weights from torchvision, timm, mmpretrain and mmdet checkpoints.

All four use the backbone's own key names (``conv1.weight``, ``layer1.0.conv2.weight``, ...);
they differ only in what surrounds them: a classifier ``fc``, a ``backbone.`` prefix next to a
classification head or a detector's neck and heads, and a ``state_dict``/``model`` wrapper.
The one renaming is timm's deep stem (``resnet50d``, ``resnext50d_32x4d``, ...): its
``conv1.{0,1,3,4,6}`` and ``bn1`` are our (and mmdet's/mmpretrain's ``ResNetV1d``)
``stem.{0,1,3,4,6,7}``; the avg-down shortcuts' ``downsample.{1,2}`` are the same in all.
:func:`convert` removes exactly that and then checks the result against the architecture it
describes, so a checkpoint either loads completely or is refused with the keys at fault. It
never gives the half-loaded backbone that mmengine's ``Pretrained`` init (``strict=False``)
would only log a warning about.
"""
import os
from collections import OrderedDict
from typing import Dict, Mapping

import torch

from ..utils.safe_load import CheckpointLoadError, load_checkpoint_file
from .arch import WeightsError, infer_arch, name_keys

SOURCES = ('torchvision', 'timm', 'mmpretrain', 'mmdet')
BACKBONE_PREFIX = 'backbone.'
# the convs and norms of timm's deep stem (2 and 5 are ReLUs); its last norm is ``bn1``
TIMM_DEEP_STEM = ('0', '1', '3', '4', '6')


def read_checkpoint(path: str):
    """A checkpoint file on CPU, tensors and plain containers only.

    ``*.safetensors`` files (timm's and the Hugging Face hub's format) are read with
    ``safetensors.torch.load_file``; anything else by the project's one safe loader
    (:func:`resnext_det.utils.safe_load.load_checkpoint_file`, ``weights_only=True``), so
    mmengine runner checkpoints load too. A file that is not a checkpoint, is truncated or
    holds any other object raises :class:`WeightsError` naming the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    if str(path).lower().endswith('.safetensors'):
        return _read_safetensors(path)
    try:
        return load_checkpoint_file(path, map_location='cpu', allow_unsafe=False)
    except CheckpointLoadError as exc:
        raise WeightsError(f'{path}: not a readable PyTorch checkpoint ({exc.reason})') from None


def _read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise WeightsError(f'{path}: reading .safetensors files needs the safetensors package '
                           f'(pip install safetensors; timm installs it)') from None
    try:
        return load_file(path, device='cpu')
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise WeightsError(f'{path}: not a readable safetensors file ({reason})') from None


def _unwrap(checkpoint) -> Mapping:
    """The state dict of a checkpoint: mmengine/timm's ``state_dict`` or torchvision's
    reference scripts' ``model``, or the checkpoint itself when it is a bare state dict."""
    if not isinstance(checkpoint, Mapping):
        raise WeightsError(f'expected a state dict or a checkpoint dict, got a '
                           f'{type(checkpoint).__name__}')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def _strip_prefix(state_dict: Mapping, source: str) -> Dict:
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items()
                if k.startswith(BACKBONE_PREFIX)}
    if not backbone:
        raise WeightsError(f"{source} checkpoint without 'backbone.*' keys "
                           f'(keys: {name_keys(state_dict)})')
    return backbone


def _rename_timm_deep_stem(state_dict: Mapping) -> Dict:
    """timm's deep stem (``conv1`` a Sequential of conv, BN, ReLU x2 and a conv, then ``bn1``)
    under our keys: ``conv1.{0,1,3,4,6}.*`` -> ``stem.{0,1,3,4,6}.*``, ``bn1.*`` ->
    ``stem.7.*``. Any other key is kept as it is (and so refused if it does not belong)."""
    if 'conv1.0.weight' not in state_dict:
        return dict(state_dict)
    renamed = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition('.')
        index = rest.split('.', 1)[0]
        if head == 'conv1' and index in TIMM_DEEP_STEM:
            key = f'stem.{rest}'
        elif head == 'bn1':
            key = f'stem.7.{rest}'
        renamed[key] = value
    return renamed


def _to_cpu_float(state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """CPU copies, floating point as float32 (half checkpoints too); integer buffers, i.e. BN's
    ``num_batches_tracked``, keep their type. Missing ``num_batches_tracked`` buffers
    (checkpoints older than PyTorch 0.4.1) are added as 0, what BN itself would load."""
    out = OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f'{key!r} holds a {type(value).__name__}, not a tensor')
        value = value.detach()
        dtype = torch.float32 if value.is_floating_point() else value.dtype
        out[key] = value.to(device='cpu', dtype=dtype, copy=True).contiguous()
        if key.endswith('.running_var'):
            counter = key[:-len('running_var')] + 'num_batches_tracked'
            if counter not in state_dict:
                out[counter] = torch.tensor(0, dtype=torch.long)
    return out


def convert(source: str, state_dict_or_checkpoint) -> 'OrderedDict[str, torch.Tensor]':
    """The backbone state dict of a ``source`` checkpoint, ready for a strict load.

    Args:
        source: 'torchvision' or 'timm' (``resnet*``/``resnext*``: the classifier ``fc`` is
            dropped; timm's deep-stem ``resnet*d``/``resnext*d``/``resnet*c`` are renamed to
            our ``stem.*`` keys), 'mmpretrain' (``backbone.*`` kept, head dropped; our
            classification trainer writes this layout) or 'mmdet' (a detector:
            ``backbone.*`` kept, neck and heads dropped; or a backbone-only state dict).
        state_dict_or_checkpoint: a state dict, or a checkpoint dict holding it under
            ``state_dict`` or ``model``.

    Raises:
        WeightsError: the result would not be a complete ResNet/ResNeXt backbone (missing,
            left-over or misshapen keys, a BasicBlock ResNet, ...).
    """
    if source not in SOURCES:
        raise WeightsError(f'unknown source {source!r}; choose one of {", ".join(SOURCES)}')
    state_dict = _unwrap(state_dict_or_checkpoint)
    if source in ('torchvision', 'timm'):
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith('fc.')}
        if source == 'timm':
            state_dict = _rename_timm_deep_stem(state_dict)
    elif source == 'mmpretrain' or any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        state_dict = _strip_prefix(state_dict, source)
    # else: an mmdet backbone-only state dict, taken as it is
    state_dict = _to_cpu_float(state_dict)
    infer_arch(state_dict)
    return state_dict


def verify_against(state_dict: Mapping, expected_arch: Mapping) -> Dict:
    """Check a backbone state dict against the architecture a config asks for.

    ``expected_arch`` holds any of :func:`infer_arch`'s fields, e.g.
    ``dict(depth=101, groups=32, base_width=4)``. ``base_width`` is not compared when both
    sides are ResNets (``groups=1``), where it does not change the network. Returns the
    inferred architecture; raises :class:`WeightsError` naming every mismatch.
    """
    arch = infer_arch(state_dict)
    unknown = [k for k in expected_arch if k not in arch]
    if unknown:
        raise WeightsError(f'unknown architecture fields {", ".join(unknown)}; known: '
                           f'{", ".join(arch)}')
    both_resnets = arch['groups'] == 1 and expected_arch.get('groups', 1) == 1
    mismatches = [f'{key}: checkpoint has {arch[key]}, config asks for {value}'
                  for key, value in expected_arch.items()
                  if arch[key] != value and not (key == 'base_width' and both_resnets)]
    if mismatches:
        raise WeightsError('checkpoint does not match the expected architecture: '
                           + '; '.join(mismatches))
    return arch
