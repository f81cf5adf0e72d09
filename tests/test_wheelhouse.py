"""`make wheelhouse` collects the whole stack; `make install WHEELHOUSE=DIR` installs it with no
index at all, into a fresh venv, taking mmcv from the wheelhouse's built wheel."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import wheelhouse  # noqa: E402

sys.path.pop(0)

HERE = f'{sys.version_info.major}.{sys.version_info.minor}'


def offline_env(tmp_path, **extra):
    """No pip configuration, no extra find-links, an index that cannot answer: only what the
    command names may be used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('PIP_')}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL='http://127.0.0.1:9/simple',
               RESNEXT_DET_CACHE=str(tmp_path / 'empty-cache'), **extra)
    return env


def make_install(env, timeout, **variables):
    args = [f'{k}={v}' for k, v in variables.items()]
    return subprocess.run(['make', '-C', str(ROOT), 'install', *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def fake_wheelhouse(folder, python_version=HERE, kept=None):
    folder.mkdir()
    (folder / 'wheelhouse.json').write_text(json.dumps(
        dict(python_version=python_version, kept=kept or {}, files={})))
    return folder


def base_python():
    """The interpreter behind this venv (a fresh venv is made from it, as `make install` does)."""
    return getattr(sys, '_base_executable', None) or shutil.which('python3')


@pytest.fixture(scope='module')
def cpu_wheelhouse(tmp_path_factory):
    """The wheelhouse for this machine's Python, as `make wheelhouse` makes it (about 3 GB:
    torch's CUDA build and its libraries); removed after the module."""
    dest = tmp_path_factory.mktemp('wheelhouse') / 'wh'
    proc = subprocess.run([base_python(), str(ROOT / 'tools' / 'wheelhouse.py'), '--dest',
                           str(dest)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


@pytest.mark.network
@pytest.mark.slow
def test_the_wheelhouse_holds_the_stack_the_mmcv_source_and_a_manifest(cpu_wheelhouse):
    manifest = json.loads((cpu_wheelhouse / 'wheelhouse.json').read_text())
    pins = wheelhouse.read_pins()
    names = {wheelhouse.canonical(p.name.split('-')[0]) for p in cpu_wheelhouse.glob('*.whl')}
    assert {'torch', 'torchvision', 'mmengine', 'mmdet', 'pycocotools', 'faster-coco-eval',
            'opencv-python', 'numpy', 'setuptools', 'pytest', 'hypothesis', 'timm', 'ruff',
            'addict', 'yapf'} <= names
    assert (cpu_wheelhouse / f'mmcv-{pins["mmcv"]}.tar.gz').is_file()
    assert manifest['python_version'] == HERE and manifest['kept'] == {}
    # every file is listed with its hash, and nothing stands in for a kept package
    listed = {p.relative_to(cpu_wheelhouse).as_posix() for p in cpu_wheelhouse.rglob('*')
              if p.is_file() and p.name not in ('wheelhouse.json', 'wheelhouse.log')}
    assert set(manifest['files']) == listed
    assert not list(cpu_wheelhouse.glob('*+kept-*'))
    # one version of each distribution, the pinned one where there is a pin
    versions = {}
    for whl in cpu_wheelhouse.glob('*.whl'):
        name, version = whl.name.split('-')[:2]
        assert wheelhouse.canonical(name) not in versions, whl.name
        versions[wheelhouse.canonical(name)] = version
    for name in ('torch', 'mmengine', 'mmdet', 'numpy', 'setuptools'):
        assert versions[name] == pins[name]


@pytest.mark.network
@pytest.mark.slow
def test_install_from_the_wheelhouse_alone_into_a_fresh_venv(cpu_wheelhouse, tmp_path):
    built = list(cpu_wheelhouse.glob('mmcv-built/*/mmcv-*.whl'))
    if not built:
        pytest.fail('no mmcv wheel built for this Python in ~/.cache/resnext_det: '
                    '`make install` builds and caches it')
    venv = tmp_path / 'venv'
    try:
        proc = make_install(offline_env(tmp_path, BASE_PYTHON=base_python()), 1200, VENV=venv,
                            WHEELHOUSE=cpu_wheelhouse)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert 'installing offline from the wheelhouse' in out
        # the empty cache forces mmcv from the wheelhouse's built wheel, not a 13-minute build
        assert f'using the cached wheel {cpu_wheelhouse}/mmcv-built/' in out
        env = subprocess.run([str(venv / 'bin' / 'python'), str(ROOT / 'tools' / 'collect_env.py')],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert env.returncode == 0, env.stderr
        assert 'MMCV ops: yes' in env.stdout
        assert f'MMDetection: {wheelhouse.read_pins()["mmdet"]}' in env.stdout
        imports = subprocess.run([str(venv / 'bin' / 'python'), '-c',
                                  'import resnext_det, mmdet, timm, pytest, hypothesis; '
                                  'from mmcv.ops import RoIAlign, nms'],
                                 capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert imports.returncode == 0, imports.stderr
    finally:
        shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.network
@pytest.mark.slow
def test_a_wheelhouse_for_another_python_keeping_the_targets_torch(tmp_path):
    dest = tmp_path / 'wh312'
    code = wheelhouse.main(['--dest', str(dest), '--python-version', '3.12', '--keep',
                            'torch==2.11.0', '--keep', 'torchvision==0.26.0'])
    assert code == 0
    manifest = json.loads((dest / 'wheelhouse.json').read_text())
    assert manifest['kept'] == {'torch': '2.11.0', 'torchvision': '0.26.0'}
    files = [p.name for p in dest.glob('*.whl')]
    assert not [f for f in files if f.startswith(('torch-', 'torchvision-', 'nvidia', 'triton'))]
    assert [f for f in files if f.startswith('timm-')]  # timm needs torch: satisfied by the keep
    compiled = [f for f in files if not f.endswith(('-none-any.whl', 'py2.py3-none-any.whl'))]
    assert compiled and all('cp312' in f or 'abi3' in f or 'py3-none' in f for f in compiled)
    # the same folder again for another target is refused, not mixed
    assert wheelhouse.main(['--dest', str(dest), '--python-version', '3.13']) == 2


def test_placeholder_wheel_is_a_valid_wheel(tmp_path):
    path = wheelhouse.placeholder_wheel(tmp_path, 'opencv-python', '4.10.0+kept')
    assert path.name == 'opencv_python-4.10.0+kept-py3-none-any.whl'
    with zipfile.ZipFile(path) as zf:
        meta = zf.read('opencv_python-4.10.0+kept.dist-info/METADATA').decode()
    assert 'Name: opencv-python' in meta and 'Version: 4.10.0+kept' in meta


@pytest.mark.parametrize('args, message', [
    (['--keep', 'torch'], "--keep 'torch': give NAME==VERSION"),
    (['--python-version', '3'], "--python-version '3': give MAJOR.MINOR"),
])
def test_bad_wheelhouse_arguments_are_named(tmp_path, capsys, args, message):
    assert wheelhouse.main(['--dest', str(tmp_path / 'wh'), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'wh').exists()


def test_a_folder_that_is_not_a_wheelhouse_is_not_filled(tmp_path, capsys):
    (tmp_path / 'mine.txt').write_text('user data')
    assert wheelhouse.main(['--dest', str(tmp_path)]) == 2
    assert 'is not a wheelhouse' in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ['mine.txt']


def test_install_refuses_a_folder_that_is_not_a_wheelhouse(tmp_path):
    (tmp_path / 'empty').mkdir()
    venv = tmp_path / 'venv'
    proc = make_install(offline_env(tmp_path), 60, VENV=venv, WHEELHOUSE=tmp_path / 'empty')
    assert proc.returncode != 0
    assert 'is not a wheelhouse (no wheelhouse.json)' in proc.stderr
    assert 'make wheelhouse' in proc.stderr
    assert not venv.exists()


def test_install_refuses_a_wheelhouse_for_another_python(tmp_path):
    wh = fake_wheelhouse(tmp_path / 'wh', python_version='3.99')
    venv = tmp_path / 'venv'
    proc = make_install(offline_env(tmp_path, BASE_PYTHON=base_python()), 120, VENV=venv,
                        WHEELHOUSE=wh)
    assert proc.returncode != 0
    assert f'is for Python 3.99, this interpreter is {HERE}' in proc.stderr
    assert 'removed the partial environment' in proc.stderr and not venv.exists()


def test_install_refuses_a_wheelhouse_without_torch_for_a_new_venv(tmp_path):
    wh = fake_wheelhouse(tmp_path / 'wh', kept={'torch': '2.11.0', 'torchvision': '0.26.0'})
    venv = tmp_path / 'venv'
    proc = make_install(offline_env(tmp_path, BASE_PYTHON=base_python()), 120, VENV=venv,
                        WHEELHOUSE=wh)
    assert proc.returncode != 0
    assert 'leaves torch out' in proc.stderr and 'PYTHON=/path/to/python' in proc.stderr
    assert not venv.exists()
