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
"""
import collections

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
