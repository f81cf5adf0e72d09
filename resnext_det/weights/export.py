"""Publishing backbone checkpoints: weights, architecture and provenance in one hashed file.

The layout, ``{'state_dict': ..., 'meta': {'arch': ..., ...}}``, is what mmengine's
``load_checkpoint`` and so ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` read. As in
mmdet's ``tools/model_converters/publish_model.py`` the file name ends with the first 8 hex
digits of its sha256, so a config that names the file also pins its content.
"""
import hashlib
import io
import numbers
import os
from typing import Dict, Mapping, Optional

import torch

from ..utils.atomic import atomic_write
from .arch import infer_arch
from .convert import convert, read_checkpoint


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def save_backbone_checkpoint(state_dict: Mapping, out_path: str, meta: Dict) -> str:
    """Save a backbone state dict as ``<out_path minus .pth>-<sha256[:8]>.pth``.

    The file is written all-or-nothing (:mod:`resnext_det.utils.atomic`), so a crash never
    leaves a truncated checkpoint under the final name. ``meta`` (plain Python values, so the
    file loads with ``weights_only=True``) is stored next to the inferred architecture. Saving
    the same content again returns the existing file.

    Returns:
        str: the path written.

    Raises:
        WeightsError: ``state_dict`` is not a complete ResNet/ResNeXt backbone.
        FileExistsError: a file with different content already has the final name.
    """
    arch = infer_arch(state_dict)
    stem = out_path[:-len('.pth')] if out_path.endswith('.pth') else out_path
    # serialised to memory first: the hash names the file. A file object, not a path: torch
    # names the archive inside after a path, which would make the bytes depend on it
    buffer = io.BytesIO()
    torch.save({'state_dict': state_dict, 'meta': {'arch': arch, **meta}}, buffer)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    final_path = f'{stem}-{sha256[:8]}.pth'
    if os.path.exists(final_path):
        if _sha256(final_path) != sha256:
            raise FileExistsError(f'{final_path} already exists with different content; '
                                  f'not overwriting it')
        os.utime(final_path)  # still the newest export, for those who pick by time
    else:
        atomic_write(final_path, data)
    return final_path


def _best_top1(checkpoint: Mapping) -> Optional[float]:
    """The best validation top-1 an mmengine checkpoint records, or None.

    Looked for in ``meta`` (a key ending in ``top1``), then in the message hub mmengine
    saves: its runtime info (``CheckpointHook(save_best=...)`` keeps e.g.
    ``best_score_accuracy/top1``) and, failing that, the best of the logged validation history
    (``val/accuracy/top1``).
    """
    hub = checkpoint.get('message_hub') or {}
    for recorded in (checkpoint.get('meta') or {}, hub.get('runtime_info') or {}):
        for key, value in recorded.items():
            if (str(key).lower().endswith('top1') and isinstance(value, numbers.Real)
                    and not isinstance(value, bool)):
                return float(value)
    for key, history in (hub.get('log_scalars') or {}).items():
        if str(key).lower().endswith('top1'):
            return float(history.max())
    return None


def export_classifier(checkpoint_path: str, out_path: str) -> str:
    """Export the backbone of a classification checkpoint (``backbone.*`` + ``head.fc.*``).

    Only the backbone's tensors are kept, without head, optimizer or scheduler state, with
    ``meta`` = the epoch, best top-1 (None when not recorded) and the source path. Returns
    the hashed path written by :func:`save_backbone_checkpoint`.
    """
    checkpoint = read_checkpoint(checkpoint_path)
    state_dict = convert('mmpretrain', checkpoint)
    epoch = (checkpoint.get('meta') or {}).get('epoch')
    meta = dict(epoch=None if epoch is None else int(epoch), top1=_best_top1(checkpoint),
                source=checkpoint_path)
    return save_backbone_checkpoint(state_dict, out_path, meta)
