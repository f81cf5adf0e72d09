"""All-or-nothing file writes: the one writer behind checkpoints, exported weights and reports.

A file is written under a unique hidden name in its target's directory, flushed, fsynced and
then renamed over the target (``os.replace`` is atomic on POSIX and Windows), and the
directory is fsynced so that the rename survives a power cut. A process killed at any point
leaves either the previous file or the complete new one under the real name, never a
truncated one; the temporary file is removed on any error, and an ``OSError`` (ENOSPC, EROFS,
EACCES, ...) names the target path.
"""
import contextlib
import os
import os.path as osp
import secrets
from typing import IO, Iterator, Union


def fsync_dir(path: str) -> None:
    """Make a rename inside ``path`` durable (POSIX only: Windows cannot open directories)."""
    if os.name == 'posix':
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Union[str, os.PathLike], mode: str = 'wb') -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block exits without an error.

    The temporary file is created with ``open(..., 'x')``, so it gets the usual permissions
    (``mkstemp`` would make it 0600) and never clobbers a file of the same name.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = osp.join(directory, f'.{osp.basename(path)}.{secrets.token_hex(4)}.tmp')
    try:
        with open(tmp_path, mode.replace('w', 'x')) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        fsync_dir(directory)
    except OSError as e:  # a full disk, a read-only or unwritable folder, ...
        if e.filename == path:
            raise
        # name the file the caller asked for, not our temporary one
        raise OSError(e.errno, e.strerror, path) from e
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)


def atomic_write(path: Union[str, os.PathLike], data: Union[bytes, str]) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` all-or-nothing."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    with atomic_open(path, 'wb') as f:
        f.write(data)
