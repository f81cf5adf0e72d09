"""tools/install.sh fails early with one line naming the cause, and leaves nothing behind."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_install(tmp_path, **env):
    return subprocess.run(['bash', str(ROOT / 'tools' / 'install.sh')], capture_output=True,
                          text=True, timeout=60,
                          env=dict(os.environ, RESNEXT_DET_CACHE=str(tmp_path / 'cache'), **env))


def test_missing_interpreter_is_named(tmp_path):
    proc = run_install(tmp_path, PYTHON=str(tmp_path / 'no-python'))
    assert proc.returncode == 1
    assert 'ERROR: PYTHON=' in proc.stderr and 'no-python' in proc.stderr
    assert 'full log:' in proc.stderr


def test_failed_environment_is_removed(tmp_path):
    # a python3 whose venv creation half-works, as on a Debian without python3-venv
    fake = tmp_path / 'python3'
    fake.write_text('#!/bin/sh\nmkdir -p "$3/bin" && touch "$3/bin/half"\nexit 1\n')
    fake.chmod(0o755)
    venv = tmp_path / 'venv'
    proc = run_install(tmp_path, BASE_PYTHON=str(fake), VENV=str(venv), PYTHON='')
    assert proc.returncode == 1
    assert 'venv failed' in proc.stderr
    assert 'removed the partial environment' in proc.stderr
    assert not venv.exists()
