"""The one atomic writer: all or nothing, no temporary file left behind, usual permissions."""
import errno
import os
import stat

import pytest

from resnext_det.utils.atomic import atomic_open, atomic_write


def test_writes_bytes_and_text_and_creates_the_folder(tmp_path):
    target = tmp_path / 'new' / 'results.json'
    atomic_write(target, '{"AP": 1}')
    assert target.read_text() == '{"AP": 1}'
    atomic_write(target, b'\x00\x01')
    assert target.read_bytes() == b'\x00\x01'
    assert os.listdir(target.parent) == ['results.json']
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_an_error_while_writing_keeps_the_old_file(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_open(target, 'wb') as f:
            f.write(b'new, cut short')
            raise RuntimeError('disk full')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_refuses_modes_that_are_not_a_full_write(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(tmp_path / 'log.txt', 'a'):
            pass


def test_a_full_disk_names_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_2.pth'
    target.write_bytes(b'old')

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', no_space)
    with pytest.raises(OSError) as err:
        atomic_write(target, b'new')
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['epoch_2.pth']
