"""Fixtures shared across the suite: the repository, small demo datasets (generated once per
session and size, read-only for the tests), running a CLI of tools/ as a user would, and the
device of the tests marked ``cuda`` (tests/cuda/)."""
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnext_det.demo import make_demo_data

ROOT = Path(__file__).resolve().parents[1]
CUDA_TESTS_ON = 'RESNEXT_DET_CUDA_TESTS_ON'
# A tool run as a script finds its sibling modules (tools/quiet_third_party.py) on sys.path[0];
# the tests that load a tool in this process (runpy, importlib) need the folder on the path too.
sys.path.append(str(ROOT / 'tools'))


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return ROOT


def load_tool(name):
    """tools/<name>.py loaded as a module of its own name (``<name>_cli``: tools/test.py and
    tools/demo.py would shadow or be shadowed by other modules of their plain names)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'{name}_cli', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def demo_cli():
    """tools/demo.py loaded as a module (its step lists, configs and dry run)."""
    return load_tool('demo')


@pytest.fixture(scope='session')
def benchmark_cli():
    """tools/benchmark.py loaded as a module (its presets, parser and main)."""
    return load_tool('benchmark')


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


def pytest_collection_modifyitems(config, items):
    """The tests marked ``cuda`` and the tests in tests/cuda/ are the same set, and each gets its
    device from ``cuda_device``: so ``-m cuda`` selects them all, and without a GPU each is
    skipped rather than failed."""
    cuda_dir = ROOT / 'tests' / 'cuda'
    wrong = []
    for item in items:
        marked = item.get_closest_marker('cuda') is not None
        guarded = 'cuda_device' in getattr(item, 'fixturenames', ())
        if marked != (cuda_dir in item.path.parents) or (marked and not guarded):
            wrong.append(item.nodeid)
    if wrong:
        raise pytest.UsageError('a CUDA test must be in tests/cuda/, be marked @pytest.mark.cuda '
                                'and use the cuda_device fixture: ' + ', '.join(wrong))


@pytest.fixture(scope='session')
def cuda_device():
    """The device of the tests marked ``cuda``: ``torch.device('cuda')`` where a CUDA GPU is
    available; otherwise the test is skipped.

    ``RESNEXT_DET_CUDA_TESTS_ON=cpu`` runs them on the CPU instead (even where a GPU is
    available): a dry run of the tests' own logic (builders, comparisons, fixtures) on a machine
    without one. It is a logic check only and proves nothing about CUDA: neither its kernels,
    nor cuDNN's algorithms, nor CUDA autocast's casting policy are exercised."""
    import torch
    on = os.environ.get(CUDA_TESTS_ON, '')
    if on == 'cpu':
        return torch.device('cpu')
    if on:
        pytest.fail(f'{CUDA_TESTS_ON}={on!r}: only "cpu" (a dry run on the CPU) is understood; '
                    'unset it to run on CUDA', pytrace=False)
    if not torch.cuda.is_available():
        pytest.skip(f'needs a CUDA GPU (torch {torch.__version__}: torch.cuda.is_available() '
                    f'is False); {CUDA_TESTS_ON}=cpu dry-runs the logic on the CPU')
    return torch.device('cuda')


@pytest.fixture(scope='session')
def cuda_autocast(cuda_device):
    """``with cuda_autocast(dtype):`` autocast to ``dtype`` on ``cuda_device``'s device type:
    'cuda', or 'cpu' on the dry run (torch's CPU autocast policy). ``None`` or ``torch.float32``:
    no autocast."""
    import torch

    def autocast(dtype):
        if dtype in (None, torch.float32):
            return contextlib.nullcontext()
        return torch.autocast(cuda_device.type, dtype=dtype)

    return autocast
