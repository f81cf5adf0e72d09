"""A run that cannot start leaves the work dir as it found it, and says why in one line.

mmengine's Runner creates the work dir, a timestamped log folder and a dump of the config before
it builds the model, and builds the datasets, optimizer and schedulers only in ``train()``. A
config that is wrong in any of those (an unknown type, a negative size, a value of the wrong
type) therefore fails after files were written, with a traceback from deep inside mmengine.
:func:`rollback_unless_started` runs that start-up as one step: if anything fails before the
first training iteration has completed, what the run added to the work dir is removed (a work
dir it created is removed whole), files it overwrote are restored, and a config error becomes a
:class:`~resnext_det.errors.UserInputError` naming it; a bug in a user's own module keeps its
traceback. Failures after the first iteration (a NaN loss, a full disk) propagate unchanged: by
then the run has produced work to keep.
"""
import contextlib
import os
import os.path as osp
import shutil
import sysconfig
import traceback
from pathlib import Path
from typing import Dict, Iterator, Optional

from mmengine.hooks import Hook

from ..errors import UserInputError

TRACEBACK_ENV = 'RESNEXT_DET_TRACEBACK'
TOOLS_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')


class TrainingStartedHook(Hook):
    """Notes that one training iteration has completed (forward, backward, step)."""
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.started = False

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.started = True


def _snapshot(work_dir: str) -> Optional[Dict[str, Optional[bytes]]]:
    """The work dir's entries, with the bytes of the files the runner may overwrite (its config
    dumps, ``*.py``); None when it does not exist."""
    if not osp.isdir(work_dir):
        return None
    return {name: (Path(work_dir, name).read_bytes()
                   if name.endswith('.py') and osp.isfile(osp.join(work_dir, name)) else None)
            for name in os.listdir(work_dir)}


def _restore(work_dir: str, before: Optional[Dict[str, Optional[bytes]]]) -> None:
    if before is None:
        shutil.rmtree(work_dir, ignore_errors=True)
        return
    for name in set(os.listdir(work_dir)) - set(before):
        path = osp.join(work_dir, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    for name, content in before.items():
        if content is not None:  # a config dump the runner may have overwritten
            Path(work_dir, name).write_bytes(content)


def _raised_in_user_code(exc: BaseException) -> bool:
    """Whether a frame of ``exc`` (or of the exceptions it was raised from, as mmengine's
    registry re-raises) is in a file of neither this project nor an installed library nor Python
    itself: a user's own module (``custom_imports``)."""
    known = tuple(osp.join(k, '') for k in (
        osp.dirname(osp.dirname(osp.abspath(__file__))), TOOLS_DIR,
        *(sysconfig.get_paths()[k] for k in ('stdlib', 'platstdlib', 'purelib', 'platlib'))))
    # the exception's own traceback starts in this module (where it is caught), then the body
    # of the `with` that runs the start-up (tools/train.py, or whoever calls it): skip those
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    tb = tb.tb_next if tb is not None else None
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        files = (frame.f_code.co_filename for frame, _ in traceback.walk_tb(tb))
        # '<frozen importlib._bootstrap>', '<string>': Python's own or generated code
        if any(not (f.startswith('<') or osp.abspath(f).startswith(known)) for f in files):
            return True
        exc = exc.__cause__ or exc.__context__
        tb = exc.__traceback__ if exc is not None else None
    return False


@contextlib.contextmanager
def rollback_unless_started(work_dir: str) -> Iterator[TrainingStartedHook]:
    """Run a training start-up; yields the hook to register on the runner.

    A failure before the first iteration is rolled back (only rank 0 touches the work dir),
    then: a :class:`UserInputError` propagates as it is; a failure raised in a user's own module
    (a bug to debug) keeps its traceback; anything else, a config that mmengine or mmdet cannot
    build, becomes a ``UserInputError`` naming it. RESNEXT_DET_TRACEBACK=1 keeps every
    traceback.
    """
    work_dir = osp.abspath(work_dir)
    rank_zero = int(os.environ.get('RANK', '0')) == 0
    before: Optional[Dict[str, Optional[bytes]]] = _snapshot(work_dir) if rank_zero else None
    hook = TrainingStartedHook()
    try:
        yield hook
    except Exception as e:
        if hook.started:
            raise
        if rank_zero:
            _restore(work_dir, before)
        if isinstance(e, UserInputError) or os.environ.get(TRACEBACK_ENV) == '1':
            raise
        if _raised_in_user_code(e):
            raise
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise UserInputError(
            f'the run could not start: {type(e).__name__}: {detail} (nothing was kept in '
            f'{work_dir}; check the config and --cfg-options; {TRACEBACK_ENV}=1 shows the '
            'traceback)') from None
