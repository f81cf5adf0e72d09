"""Checkpoints that survive being killed and load tensor-only: atomic writes, exact resume,
skipping partial files.

* mmengine writes checkpoints with its 'local' file backend's ``put``, which opens the final
  path and writes into it: a SIGKILL mid-write leaves a truncated file under the real name.
  ``AtomicLocalBackend`` writes through :mod:`resnext_det.utils.atomic` (temporary file, fsync,
  rename), so a checkpoint is either the old one or the complete new one. It is registered
  under its own name, ``ATOMIC_BACKEND``, by ``resnext_det.runtime``, and our
  ``_base_/default_runtime.py`` selects it with ``default_hooks.checkpoint.backend_args``;
  mmengine's own 'local' backend is left as it is.
* mmengine pickles each message-hub ``HistoryBuffer`` with its built-in statistics methods,
  as ``getattr(HistoryBuffer, 'mean')``: such a checkpoint only loads with
  ``weights_only=False``. ``TensorOnlyCheckpointHook`` leaves those out of the checkpoint
  (``HistoryBuffer.__setstate__`` restores them on load), so our loader reads it tensor-only.
* mmengine's resume restores weights, optimizer, schedulers and counters but not the random
  generators; ``RandomStateHook`` stores torch/numpy/python RNG states in every checkpoint and
  restores them on resume, so a resumed run continues exactly as the uninterrupted one would.
* ``latest_complete_checkpoint`` is what ``--resume`` (auto) uses: the file ``last_checkpoint``
  names if it is a complete checkpoint, else the newest complete ``*.pth`` in the work dir.
"""
import glob
import os.path as osp
import random
import zipfile
from typing import Optional

import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook

from ..registry import HOOKS
from ..utils.atomic import atomic_write

ATOMIC_BACKEND = 'resnext_det.atomic_local'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put``/``put_text`` are all-or-nothing."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(filepath, obj.encode(encoding))


def register_atomic_backend() -> None:
    """Make ``backend_args=dict(backend=ATOMIC_BACKEND)`` available (idempotent; it adds a name
    to mmengine's backends and changes none of the existing ones)."""
    from mmengine.fileio.backends import backends, register_backend
    if backends.get(ATOMIC_BACKEND) is not AtomicLocalBackend:
        register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


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


BUILTIN_STATISTICS = ('mean', 'min', 'max', 'current')


class _HistoryBufferState:
    """Pickles as the ``HistoryBuffer`` it copies, minus the built-in statistics methods.

    The pickle calls ``HistoryBuffer()`` and hands the state to its ``__setstate__``, which
    restores the built-in methods, so the checkpoint loads as mmengine's own class everywhere,
    with or without this package.
    """

    def __init__(self, buffer) -> None:
        self.state = {k: v for k, v in vars(buffer).items() if k != 'statistics_methods'}
        custom = {k: v for k, v in type(buffer)._statistics_methods.items()
                  if k not in BUILTIN_STATISTICS}
        if custom:  # methods the user registered: they are pickled as mmengine would
            self.state['statistics_methods'] = custom
        self.cls = type(buffer)

    def __reduce__(self):
        return self.cls, (), self.state


@HOOKS.register_module()
class TensorOnlyCheckpointHook(Hook):
    """Keep every checkpoint loadable with ``torch.load(weights_only=True)``.

    It rewrites the saved copy of the message hub only (mmengine deep-copies it for the
    checkpoint); the live buffers and ``HistoryBuffer`` itself are untouched.
    """
    priority = 'VERY_LOW'  # after the hooks that add their own state

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmengine.logging import HistoryBuffer
        scalars = (checkpoint.get('message_hub') or {}).get('log_scalars') or {}
        for key, value in scalars.items():
            if isinstance(value, HistoryBuffer):
                scalars[key] = _HistoryBufferState(value)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the torch, numpy and python RNG states with each checkpoint and restore them on
    resume (the data pipeline's flips, the detectors' RoI samplers draw from them).

    Validation is kept out of the training's random streams: the states are put back after
    it (its data loader draws a seed from torch's generator), so the epoch after a checkpoint
    starts from the states in that checkpoint whether or not the run validated in between.

    In a distributed run every rank draws its own numbers (other images, other RoI samples),
    but only rank 0 writes the checkpoint (mmengine calls ``before_save_checkpoint`` there
    alone). So at each point where ``CheckpointHook`` may save (end of a train epoch, of a
    validation, or an iteration it saves at), before it (this hook's priority is higher), every
    rank's states are gathered (one ``all_gather_object``) and rank 0 writes them all, its own
    taken at the save, under ``random_state['ranks']``; on resume each rank restores its own.
    The top-level entries stay rank 0's, as in a single-process checkpoint.
    """

    def __init__(self) -> None:
        self._gathered = None  # every rank's states, gathered for the next save
        self._training = None  # the training's states while a validation runs

    @staticmethod
    def _current_state() -> dict:
        return dict(
            torch=torch.get_rng_state(),
            numpy=list(np.random.get_state()),
            python=list(random.getstate()))

    @staticmethod
    def _restore(state: dict) -> None:
        torch.set_rng_state(state['torch'])
        np.random.set_state(tuple(state['numpy']))
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))

    def _state(self) -> dict:
        """The states training continues with (during a validation: those from before it)."""
        return self._training if self._training is not None else self._current_state()

    def _gather(self) -> None:
        from mmengine.dist import all_gather_object, get_world_size
        if get_world_size() > 1:
            self._gathered = all_gather_object(self._state())

    @staticmethod
    def _saves_after_this_iter(runner) -> bool:
        from mmengine.hooks import CheckpointHook
        return any(
            isinstance(h, CheckpointHook) and not h.by_epoch and (
                h.every_n_train_iters(runner, h.interval, getattr(h, 'save_begin', 0))
                or (h.save_last and h.is_last_train_iter(runner)))
            for h in runner.hooks)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        from mmengine.dist import get_world_size
        if get_world_size() > 1 and self._saves_after_this_iter(runner):
            self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    def before_val(self, runner) -> None:
        self._training = self._current_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._gather()  # for a best checkpoint (save_best)

    def after_val(self, runner) -> None:
        if self._training is not None:
            self._restore(self._training)
            self._training = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmengine.dist import get_rank
        own = self._state()
        checkpoint['random_state'] = dict(own)
        if self._gathered is not None:
            ranks = list(self._gathered)
            ranks[get_rank()] = own
            checkpoint['random_state']['ranks'] = ranks
            self._gathered = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('random_state')
        if not state or not runner._resume:  # weights-only loads (load_from) keep the seed
            return
        from mmengine.dist import get_dist_info
        rank, world_size = get_dist_info()
        ranks = state.get('ranks') or [state]
        if len(ranks) == world_size:
            state = ranks[rank]
        else:
            runner.logger.warning(
                f'the checkpoint holds the random states of {len(ranks)} process(es), this run '
                f'has {world_size}: each rank continues from the first one\'s, so the resumed '
                'run will not repeat the uninterrupted one exactly (resume with as many '
                'processes as were saved for that)')
            state = ranks[0]
        self._restore(state)
