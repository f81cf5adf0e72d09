"""The one safe checkpoint loader: tensors and plain data only, unless the user opts in.

torch >= 2.6 unpickles with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without saying which, so a runner checkpoint, which holds a few non-tensor
objects (the message hub's ``HistoryBuffer``s with numpy arrays and scalars, the lr
schedulers' ``Counter`` milestones), no longer resumes. :func:`load_checkpoint_file` loads with
``weights_only=True`` explicitly (older torch behaves the same) and allows exactly those
classes for the duration of the call (``torch.serialization.safe_globals``, nothing added to
torch's process-wide list); anything else that would run code is refused with a message naming
the opt-in, and a truncated or corrupt file is named instead of a zipfile/pickle traceback.

Checkpoints written through ``resnext_det.TensorOnlyCheckpointHook`` (in our runtime configs)
need nothing else; mmengine's plain checkpoints refer to ``getattr`` and need the opt-in.

Nothing here changes the process when imported. ``resnext_det.runtime`` routes mmengine's
local checkpoint loads (``load_from``, ``--resume``, ``init_cfg=Pretrained``) through it.
"""
import collections
import os
import os.path as osp
import pickle
from typing import Optional

import numpy as np
import torch

from ..errors import CheckpointLoadError

ALLOW_UNSAFE_ENV = 'RESNEXT_DET_ALLOW_UNSAFE_PICKLE'


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


def unsafe_pickle_allowed() -> bool:
    """Whether the user opted in (``--allow-unsafe-pickle`` sets the variable for every rank and
    dataloader worker)."""
    return os.environ.get(ALLOW_UNSAFE_ENV) == '1'


def _first_line_of_refusal(error: Exception) -> str:
    """What torch's weights-only unpickler refused, without its boilerplate paragraphs."""
    text = str(error).split('WeightsUnpickler error:')[-1].strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_checkpoint_file(filename: str, map_location=None,
                         allow_unsafe: Optional[bool] = None):
    """``torch.load`` a local file, tensor-only unless ``allow_unsafe`` (default: the opt-in).

    Raises:
        FileNotFoundError: no such file.
        CheckpointLoadError: the file would run code to unpickle (naming the opt-in), or it is
            truncated, corrupt or not a checkpoint.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if allow_unsafe is None:
        allow_unsafe = unsafe_pickle_allowed()
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            return torch.load(filename, map_location=map_location, weights_only=not allow_unsafe)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' in str(e):
            raise CheckpointLoadError(
                filename, 'refused to load: unpickling it would run code, not just read tensors '
                f'({_first_line_of_refusal(e)}). Only if you trust where it comes from, rerun '
                f'with --allow-unsafe-pickle (or {ALLOW_UNSAFE_ENV}=1).') from None
        raise CheckpointLoadError(filename, 'truncated or corrupt checkpoint '
                                  f'(UnpicklingError: {_first_line_of_refusal(e)})') from None
    except OSError as e:  # permissions, I/O errors: the file exists (checked above)
        raise CheckpointLoadError(filename, f'cannot be read ({e.strerror or e})') from None
    except (RuntimeError, EOFError, ValueError) as e:  # torch's many ways of saying "corrupt"
        detail = str(e).splitlines()[0] if str(e) else ''
        raise CheckpointLoadError(
            filename, f'truncated or corrupt checkpoint ({type(e).__name__}: {detail})') from None
