"""Fixtures shared across the suite: the repository, small demo datasets (generated once per
session and size, read-only for the tests), and running a CLI of tools/ as a user would."""
import subprocess
import sys
from pathlib import Path

import pytest

from resnext_det.datasets.demo_data import make_demo_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope='session')
def small_demo_data(tmp_path_factory):
    """``small_demo_data(num_train=6, ...)``: the root of a tiny generated demo set (``coco/``,
    ``imagenet/``), made once per session for each size asked for. Tests must not write there."""
    made = {}

    def make(num_train=6, num_val=3, num_cls_per_class=1, num_cls_val_per_class=1) -> Path:
        sizes = (num_train, num_val, num_cls_per_class, num_cls_val_per_class)
        if sizes not in made:
            out = tmp_path_factory.mktemp('demo_' + '_'.join(map(str, sizes))) / 'demo'
            made[sizes] = Path(make_demo_data(
                out, num_train=num_train, num_val=num_val, num_cls_per_class=num_cls_per_class,
                num_cls_val_per_class=num_cls_val_per_class)['out_dir'])
        return made[sizes]

    return make


@pytest.fixture(scope='session')
def run_tool():
    """``run_tool('train.py', *args, timeout=300, **popen_kwargs)``: run ``tools/<name>`` with
    this interpreter from the repository root; returns the CompletedProcess (text output)."""

    def run(name, *args, timeout=300, **kwargs):
        kwargs.setdefault('cwd', ROOT)
        return subprocess.run([sys.executable, str(ROOT / 'tools' / name), *map(str, args)],
                              capture_output=True, text=True, timeout=timeout, **kwargs)

    return run
