"""Running the weights CLIs (tools/convert_weights.py, tools/export_backbone.py) in this process:
the same ``main()`` with the same argument vector, without the seconds each new interpreter
spends importing torch and mmdet. A few tests still start them as real processes."""
import runpy
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``run_cli('convert_weights.py', *args)``: run ``tools/<name>`` as ``__main__`` with
    ``sys.argv = [path, *args]``; returns (returncode, stdout, stderr)."""

    def run(name, *args) -> CliResult:
        path = str(ROOT / 'tools' / name)
        monkeypatch.setattr(sys, 'argv', [path, *map(str, args)])
        capsys.readouterr()  # start from empty
        try:
            runpy.run_path(path, run_name='__main__')
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
