"""The CUDA tests' logic on the CPU (slow tier): ``pytest -m cuda`` with
``RESNEXT_DET_CUDA_TESTS_ON=cpu`` in a fresh process, every test run and passed. A GPU lease is
short: a wrong builder, tolerance or fixture in tests/cuda should show up here, not there. It
proves nothing about CUDA itself (tests/conftest.py, ``cuda_device``)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_cuda_tests_pass_on_the_cpu_dry_run():
    env = dict(os.environ, RESNEXT_DET_CUDA_TESTS_ON='cpu')
    run = subprocess.run(
        [sys.executable, '-m', 'pytest', 'tests/cuda', '-m', 'cuda', '-q', '-p',
         'no:cacheprovider', '-W', 'ignore::FutureWarning', '-W', 'ignore::UserWarning'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    summary = run.stdout.strip().splitlines()[-1]
    # every test ran: none skipped (the dry run must not fall back to skipping)
    assert re.fullmatch(r'=* ?\d+ passed(, \d+ warnings?)? in .*', summary), summary
    assert int(re.search(r"(\d+) passed", summary).group(1)) >= 24, summary
