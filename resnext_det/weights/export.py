"""Saving backbone checkpoints: weights, architecture and provenance in one file.

The layout, ``{'state_dict': ..., 'meta': {'arch': ..., 'sha256': ..., ...}}``, is what
mmengine's ``load_checkpoint`` and so ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``
read. The file goes exactly where it is asked to, so that the path a config names is the path
the tools write. Two hashes identify it:

* ``meta['sha256']``, the weights' hash (:func:`weights_sha256`): the tensors alone, so it does
  not change with the metadata (source path, epoch, ...) and can sit inside the file it
  identifies;
* the sha256 of the file itself, which the tools print and which ``publish=True`` puts in the
  name, ``<stem>-<sha256[:8]>.pth``, as mmdet's ``tools/model_converters/publish_model.py``
  does, so that a config that names the file also pins its content.

An existing file is never replaced silently: the same bytes again is a no-op, anything else
needs ``force=True``.
"""
import hashlib
import io
import numbers
import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

import torch

from ..errors import OutputExistsError
from ..utils.atomic import atomic_write
from .arch import infer_arch
from .convert import convert, read_checkpoint


@dataclass(frozen=True)
class SavedCheckpoint:
    """What :func:`save_backbone_checkpoint` did.

    ``status`` is 'written' (a new file), 'overwritten' (``force=True`` replaced other
    content) or 'unchanged' (the file already held exactly these bytes).
    """
    path: str
    sha256: str          # of the file
    weights_sha256: str  # of the tensors, also in meta['sha256']
    meta: Dict           # as stored: arch, sha256 and the caller's fields
    status: str

    def report(self, *fields: str) -> str:
        """Two lines for the CLIs: the path, architecture, ``meta`` ``fields`` and what
        happened; then both hashes."""
        values = {**self.meta['arch'], **{f: self.meta.get(f) for f in fields}}
        note = {'written': '', 'unchanged': ' (unchanged: it already held exactly this)',
                'overwritten': ' (replaced the previous file)'}[self.status]
        return (f"{self.path}: {' '.join(f'{k}={v}' for k, v in values.items())}{note}\n"
                f"sha256: weights {self.weights_sha256} (meta['sha256']), file {self.sha256}")


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a state dict's tensors, in key order, independent of how they are stored.

    For each entry: the key (UTF-8), the dtype (``torch.float32``), the shape and the raw
    bytes of the contiguous tensor in the machine's byte order (little-endian on every
    platform torch supports), each field followed by a NUL byte. Keys, order, dtypes, shapes
    and every value count; the file format, the metadata and the device do not.
    """
    digest = hashlib.sha256()
    for key, tensor in state_dict.items():
        tensor = tensor.detach().to('cpu').contiguous()
        header = f'{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0'
        digest.update(header.encode('utf-8'))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # no copy
        digest.update(b'\0')
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def save_backbone_checkpoint(state_dict: Mapping, out_path: str, meta: Dict, *,
                             publish: bool = False, force: bool = False) -> SavedCheckpoint:
    """Save a backbone state dict to ``out_path`` (with ``publish``: to
    ``<out_path minus .pth>-<sha256 of the file[:8]>.pth``).

    ``meta`` (plain Python values, so the file loads with ``weights_only=True``) is stored
    next to the inferred architecture (``arch``) and the weights' hash (``sha256``,
    :func:`weights_sha256`). The file is written all-or-nothing
    (:mod:`resnext_det.utils.atomic`), so a crash never leaves a truncated checkpoint under
    the final name. The bytes depend only on the content, so saving the same content again
    finds the file unchanged (its mtime is refreshed, for those who pick the newest).

    Raises:
        WeightsError: ``state_dict`` is not a complete ResNet/ResNeXt backbone.
        OutputExistsError: the final path holds other content (or is a directory) and
            ``force`` is False; nothing is written.
    """
    arch = infer_arch(state_dict)
    weights_hash = weights_sha256(state_dict)
    # serialised to memory first, for the hash. A file object, not a path: torch names the
    # archive inside after a path, which would make the bytes depend on it
    buffer = io.BytesIO()
    meta = {**meta, 'arch': arch, 'sha256': weights_hash}  # the caller cannot override these
    torch.save({'state_dict': state_dict, 'meta': meta}, buffer)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    if publish:
        stem = out_path[:-len('.pth')] if out_path.endswith('.pth') else out_path
        final_path = f'{stem}-{sha256[:8]}.pth'
    else:
        final_path = out_path
    status = 'written'
    if os.path.isdir(final_path):
        raise OutputExistsError(final_path, 'is a directory', fix='give a file path (NAME.pth)')
    if os.path.exists(final_path):
        if file_sha256(final_path) == sha256:
            os.utime(final_path)
            return SavedCheckpoint(final_path, sha256, weights_hash, meta, 'unchanged')
        if not force:
            raise OutputExistsError(final_path)
        status = 'overwritten'
    atomic_write(final_path, data)
    return SavedCheckpoint(final_path, sha256, weights_hash, meta, status)


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


def export_classifier(checkpoint_path: str, out_path: str, *, publish: bool = False,
                      force: bool = False) -> SavedCheckpoint:
    """Export the backbone of a classification checkpoint (``backbone.*`` + ``head.fc.*``).

    Only the backbone's tensors are kept, without head, optimizer or scheduler state, with
    ``meta`` = the epoch, best top-1 (None when not recorded) and the source path. Saved by
    :func:`save_backbone_checkpoint` (same ``publish`` and ``force``), whose result it returns.
    """
    checkpoint = read_checkpoint(checkpoint_path)
    state_dict = convert('mmpretrain', checkpoint)
    epoch = (checkpoint.get('meta') or {}).get('epoch')
    meta = dict(epoch=None if epoch is None else int(epoch), top1=_best_top1(checkpoint),
                source=checkpoint_path)
    return save_backbone_checkpoint(state_dict, out_path, meta, publish=publish, force=force)
