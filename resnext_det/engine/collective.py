"""The worker side of tools/dist_launch.py: a rank whose collective failed because another rank
died, hung or was stopped ends at once, saying in its torchelastic error file that it only gave
up, so that the launcher names the rank it waited for."""
import json
import logging
import os
import sys
import time
from typing import Optional

COLLECTIVE_ERROR = 'CollectiveError'
LAUNCHER_ENV = 'RESNEXT_DET_DIST_LAUNCH'  # set for the workers by tools/dist_launch.py
# a collective failing because of another rank, per backend (gloo's own messages; nccl and the
# c10d store raise torch.distributed.DistError subclasses)
_COLLECTIVE_PATTERNS = ('Timed out waiting', 'Connection closed by peer',
                        'Connection reset by peer', 'Broken pipe', 'gloo/transport')


def collective_failure(exc: BaseException) -> Optional[str]:
    """The gist of ``exc`` if it is a collective failing in an initialized process group."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return None
    text = str(exc).strip()
    if not (isinstance(exc, getattr(dist, 'DistError', ())) or (isinstance(
            exc, RuntimeError) and any(p in text for p in _COLLECTIVE_PATTERNS))):
        return None
    line = text.splitlines()[0] if text else type(exc).__name__
    if line.startswith('[') and '] ' in line:  # gloo's "[/path/to/file.cc:78] " prefix
        line = line.split('] ', 1)[1]
    return line.split('. This is typically')[0].strip()


def record_collective_failure(message: str) -> bool:
    """Write the rank's error file (``TORCHELASTIC_ERROR_FILE``, ``@record``'s format without the
    traceback torchrun's report would show); True under tools/dist_launch.py."""
    text = f'{COLLECTIVE_ERROR}: {message}'
    info = dict(py_callstack=text, timestamp=str(int(time.time())))
    try:  # torchrun made its folder; without one, the launcher names this rank's exit code
        with open(os.environ['TORCHELASTIC_ERROR_FILE'], 'w') as f:
            json.dump(dict(message=dict(message=text, extraInfo=info)), f)
    except (KeyError, OSError):
        return False
    return os.environ.get(LAUNCHER_ENV) == '1'


def exit_on_collective_failure(exc: BaseException, what: str) -> None:
    """``os._exit(2)`` after a log line (under tools/dist_launch.py, whose line names the rank to
    blame) or an ``error:`` line if ``exc`` is a collective failure: the broken process group's
    teardown would wait on the other rank. Returns for other errors. ``what``: 'training'..."""
    gist = collective_failure(exc)
    if gist is None:
        return
    from mmengine.dist import get_rank
    from mmengine.logging import print_log
    message = (f'rank {get_rank()}: a collective operation failed ({gist}): another rank died '
               f'or stopped answering; {what} stopped')
    try:
        if record_collective_failure(gist):
            print_log(message, logger='current', level=logging.WARNING)
        else:
            print(f'error: {message}', file=sys.stderr)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)
