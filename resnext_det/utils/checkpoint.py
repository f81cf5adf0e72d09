"""Checkpoints under torch >= 2.6's `torch.load(weights_only=True)` default.

mmengine 0.10.7 calls `torch.load` without `weights_only`, so on current torch every checkpoint
is unpickled tensor-only, and its runner's checkpoints hold a few non-tensor objects: the
message hub's `HistoryBuffer`s with numpy arrays and scalars, and the lr schedulers' `Counter`
milestones. On `import resnext_det` we

* allowlist exactly those classes with `torch.serialization.add_safe_globals`, and
* stop `HistoryBuffer` from pickling its built-in statistics methods (mean/min/max/current):
  mmengine pickles them as `getattr(HistoryBuffer, 'mean')`, and allowing `getattr` would let a
  checkpoint reach any attribute of any allowed object. `HistoryBuffer.__setstate__` restores
  the built-ins anyway; only custom statistics registered by the user are still pickled.

So the project's checkpoints resume while the safe default stays on for everything else.
mmengine's loader for local files is replaced by `load_local_checkpoint`, which passes
`weights_only=True` explicitly (so older torch behaves the same), refuses code-bearing pickles
with a message naming the opt-in (`--allow-unsafe-pickle`), and names corrupt files.
"""
import collections
import os
import os.path as osp
import pickle

import numpy as np
import torch

BUILTIN_STATISTICS = ('mean', 'min', 'max', 'current')


def mmengine_checkpoint_globals() -> list:
    """The non-tensor classes and functions an mmengine runner checkpoint refers to."""
    from mmengine.logging import HistoryBuffer

    # numpy arrays in the message hub and the numpy RNG state (uint32) of RandomStateHook
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64,
                                                 np.int32, np.int16, np.int8, np.uint64,
                                                 np.uint32, np.uint16, np.uint8, np.bool_)]
    return [
        HistoryBuffer,
        collections.Counter,
        np.ndarray,
        np.dtype,
        np._core.multiarray._reconstruct,
        np._core.multiarray.scalar,
        *dtype_classes,
    ]


def _history_buffer_getstate(self) -> dict:
    state = dict(self.__dict__)
    custom = {k: v for k, v in self._statistics_methods.items() if k not in BUILTIN_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def install_safe_globals() -> None:
    """Make mmengine runner checkpoints load under `weights_only=True` (idempotent)."""
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


ALLOW_UNSAFE_ENV = 'RESNEXT_DET_ALLOW_UNSAFE_PICKLE'


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that cannot be loaded safely; the message names the file and why."""


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local checkpoint loader, tensor-only unless the user opts in.

    `weights_only=True` unless the environment sets RESNEXT_DET_ALLOW_UNSAFE_PICKLE=1 (what
    tools/train.py/test.py `--allow-unsafe-pickle` does): a checkpoint that needs arbitrary
    code to unpickle is refused with a message saying so, and a truncated or corrupt file is
    reported by name instead of with a zipfile/pickle traceback.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    unsafe = os.environ.get(ALLOW_UNSAFE_ENV) == '1'
    try:
        return torch.load(filename, map_location=map_location, weights_only=not unsafe)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' not in str(e):
            raise CheckpointLoadError(f'{filename}: corrupt checkpoint ({e})') from None
        detail = str(e).split('WeightsUnpickler error:')[-1].strip().splitlines()[0]
        raise CheckpointLoadError(
            f'{filename}: refused to load: unpickling it would run code, not just read tensors '
            f'({detail}). Only if you trust where it comes from, rerun with '
            f'--allow-unsafe-pickle (or {ALLOW_UNSAFE_ENV}=1).') from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise CheckpointLoadError(f'{filename}: truncated or corrupt checkpoint '
                                  f'({type(e).__name__}: {str(e).splitlines()[0]})') from None


def install_safe_checkpoint_loader() -> None:
    """Route mmengine's loads of local files (load_from, resume, init_cfg Pretrained) through
    `load_local_checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
