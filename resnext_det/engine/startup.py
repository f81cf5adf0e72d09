"""A run that cannot start leaves the work dir as it found it, and says why in one line.

mmengine's Runner creates the work dir, a timestamped log folder and a dump of the config before
it builds the model, and builds the datasets, optimizer and schedulers only in ``train()``. A
config that is wrong in any of those (an unknown type, a negative size, a value of the wrong
type) therefore fails after files were written, with a traceback from deep inside mmengine.
:func:`rollback_unless_started` runs that start-up as one step: if anything fails before the
first training iteration has completed, what the run added to the work dir is removed (a work
dir it created is removed whole), files it overwrote are restored, and the failure becomes a
:class:`~resnext_det.engine.launch.UserInputError` naming it. Failures after the first iteration
(a NaN loss, a full disk) propagate unchanged: by then the run has produced work to keep.
"""
import contextlib
import os
import os.path as osp
import shutil
from pathlib import Path
from typing import Dict, Iterator, Optional

from mmengine.hooks import Hook

from .launch import UserInputError

TRACEBACK_ENV = 'RESNEXT_DET_TRACEBACK'


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


@contextlib.contextmanager
def rollback_unless_started(work_dir: str, known_errors=()) -> Iterator[TrainingStartedHook]:
    """Run a training start-up; yields the hook to register on the runner.

    ``known_errors``: exception types whose message already names the problem and the fix
    (a corrupt checkpoint, bad data): they are rolled back too and re-raised as
    ``UserInputError`` with their own message. Only rank 0 touches the work dir.
    Set RESNEXT_DET_TRACEBACK=1 to get the original exception instead.
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
        if os.environ.get(TRACEBACK_ENV) == '1':
            raise
        if isinstance(e, known_errors):
            raise UserInputError(str(e)) from None
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise UserInputError(
            f'the run could not start: {type(e).__name__}: {detail} (nothing was kept in '
            f'{work_dir}; check the config and --cfg-options; {TRACEBACK_ENV}=1 shows the '
            'traceback)') from None

