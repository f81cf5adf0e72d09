"""Checkpoints that survive being killed: atomic writes, exact resume, skipping partial files.

* mmengine writes checkpoints with its 'local' file backend's `put`, which opens the final
  path and writes into it: a SIGKILL mid-write leaves a truncated file under the real name.
  `AtomicLocalBackend.put` writes a temporary file in the same directory, fsyncs it and
  renames it over the target, so a checkpoint is either the old one or the complete new one.
* mmengine's resume restores weights, optimizer, schedulers and counters but not the random
  generators; `RandomStateHook` stores torch/numpy/python RNG states in every checkpoint and
  restores them on resume, so a resumed run continues exactly as the uninterrupted one would.
* `latest_complete_checkpoint` is what `--resume` (auto) uses: the file `last_checkpoint`
  names if it is a complete checkpoint, else the newest complete `*.pth` in the work dir.
"""
import glob
import os
import os.path as osp
import random
import zipfile
from typing import Optional

import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.hooks import Hook

from ..registry import HOOKS


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose `put` is all-or-nothing (temp file + rename)."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        directory = osp.dirname(osp.abspath(filepath))
        os.makedirs(directory, exist_ok=True)
        tmp_path = osp.join(directory, f'.{osp.basename(filepath)}.{os.getpid()}.tmp')
        try:
            with open(tmp_path, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, filepath)
        finally:
            if osp.exists(tmp_path):
                os.remove(tmp_path)


def install_atomic_local_backend() -> None:
    """Make mmengine's default ('local') backend atomic for every later write (idempotent)."""
    from mmengine.fileio import io as mmengine_io
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # get_file_backend caches instances: drop plain LocalBackends made before this call
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mmengine_io.backend_instances[key]


def is_complete_checkpoint(path: str) -> bool:
    """torch.save files are zip archives whose central directory is written last: a file cut
    short by a kill has none, so this rejects partial files without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def latest_complete_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint an auto-resume should start from, skipping partial or missing files."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and is_complete_checkpoint(named):
            return named
    candidates = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime, reverse=True)
    return next((c for c in candidates if is_complete_checkpoint(c)), None)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the torch, numpy and python RNG states with each checkpoint and restore them on
    resume (the data pipeline's flips, the detectors' RoI samplers draw from them)."""

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = dict(
            torch=torch.get_rng_state(),
            numpy=list(np.random.get_state()),
            python=list(random.getstate()))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('random_state')
        if not state or not runner._resume:  # weights-only loads (load_from) keep the seed
            return
        torch.set_rng_state(state['torch'])
        np.random.set_state(tuple(state['numpy']))
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
