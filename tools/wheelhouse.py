"""Collect everything `make install` needs into one folder, for machines without network.

    make wheelhouse                                  # for this machine: ./wheelhouse
    make wheelhouse WHEELHOUSE=/mnt/wh WHEELHOUSE_ARGS="--python-version 3.12 \
        --keep torch==2.11.0 --keep torchvision==0.26.0"    # for a GPU node that keeps its torch
    make install WHEELHOUSE=/mnt/wh [PYTHON=python3]  # there: no network at all

Run on a machine that reaches the package index. The folder holds:
- binary wheels of the whole stack for one Python version and platform, resolved against
  requirements/constraints.txt: torch, torchvision (unless kept), mmengine, mmdet, pycocotools,
  faster-coco-eval, opencv-python, numpy, the package's own and its test/lint extras' needs,
  the build tools (setuptools, wheel, ninja) and all their dependencies;
- the mmcv source (`mmcv-<version>.tar.gz`; PyPI has no mmcv 2.1 wheels), which
  tools/install.sh builds for the target's torch and GPU;
- `mmcv-built/<key>/`: mmcv wheels already built and cached on this machine for that Python
  (`~/.cache/resnext_det/wheels`), so an identical target skips the build; tools/install.sh
  also puts a wheel it builds there, to be brought back and reused;
- `wheelhouse.json`: the Python version, platforms, kept packages and every file's sha256.

`--keep NAME==VERSION` leaves a package out because the target has it already (its own torch):
the resolver treats it as installed at that version, so nothing that needs it is missing and
no second copy comes along. Only this tool uses the network; the install uses none.
This script needs only the standard library and pip, so any python3 runs it.
"""
import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / 'requirements' / 'constraints.txt'
# what tools/install.sh installs besides the package's own requirements
STACK = ['setuptools', 'wheel', 'ninja', 'torch', 'torchvision', 'mmengine', 'mmdet',
         'pycocotools', 'opencv-python', 'numpy']
EXTRAS = ('tests', 'lint')
# the manylinux tags pip matches exactly when it downloads for another interpreter
MANYLINUX = ['manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_24_x86_64',
             'manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'manylinux1_x86_64']
KEPT_LOCAL_LABEL = 'kept'
MANIFEST = 'wheelhouse.json'


class WheelhouseError(Exception):
    """A problem the user can fix; printed as one line."""


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def read_pins(path=CONSTRAINTS):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if '==' in line:
            name, version = line.split('==', 1)
            pins[canonical(name)] = version.strip()
    return pins


def package_requirements(setup_py=ROOT / 'setup.py', extras=EXTRAS):
    """install_requires plus the given extras, read from setup.py's literal lists."""
    tree = ast.parse(setup_py.read_text())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, 'id', None) == 'setup')
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords
              if kw.arg in ('install_requires', 'extras_require')}
    reqs = list(kwargs.get('install_requires', []))
    for extra in extras:
        reqs += kwargs.get('extras_require', {}).get(extra, [])
    return reqs


def mmcv_requirements(sdist):
    """The runtime requirements of an mmcv sdist (requirements/runtime.txt)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.unpack_archive(str(sdist), tmp)
        [runtime] = Path(tmp).glob('mmcv-*/requirements/runtime.txt')
        return [line.strip() for line in runtime.read_text().splitlines()
                if line.strip() and not line.startswith('#')]


def parse_keep(items):
    kept = {}
    for item in items:
        name, sep, version = item.partition('==')
        if not sep or not name.strip() or not version.strip():
            raise WheelhouseError(f'--keep {item!r}: give NAME==VERSION, the version the target '
                                  f'has (`python3 -m pip show NAME` there)')
        kept[canonical(name)] = version.strip()
    return kept


def placeholder_wheel(folder, name, version):
    """An empty wheel that stands for a package the target already has."""
    dist = f'{name.replace("-", "_")}-{version}'
    path = Path(folder) / f'{dist}-py3-none-any.whl'
    files = {
        f'{dist}.dist-info/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n',
        f'{dist}.dist-info/WHEEL': ('Wheel-Version: 1.0\nGenerator: resnext_det-wheelhouse\n'
                                    'Root-Is-Purelib: true\nTag: py3-none-any\n'),
    }
    record = ''.join(f'{n},,\n' for n in files) + f'{dist}.dist-info/RECORD,,\n'
    with zipfile.ZipFile(path, 'w') as zf:
        for n, text in files.items():
            zf.writestr(n, text)
        zf.writestr(f'{dist}.dist-info/RECORD', record)
    return path


def pip(*args, log, env=None):
    """Run `python -m pip ARGS` (with ``env`` added to the environment), appending its output to
    the log; raise naming the log."""
    with open(log, 'a') as f:
        f.write(f'$ pip {" ".join(args)}\n')
        f.flush()
        proc = subprocess.run([sys.executable, '-m', 'pip', *args], stdout=f,
                              stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    if proc.returncode:
        tail = Path(log).read_text().strip().splitlines()[-3:]
        raise WheelhouseError(f'pip {args[0]} failed ({" / ".join(tail)}); full log: {log}')


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def build(dest, python_version=None, platforms=None, keep=()):
    """Fill ``dest`` (created, must be empty or a wheelhouse of the same target); returns the
    manifest."""
    dest = Path(dest)
    here = f'{sys.version_info.major}.{sys.version_info.minor}'
    python_version = python_version or here
    if not re.fullmatch(r'3\.\d+', python_version):
        raise WheelhouseError(f'--python-version {python_version!r}: give MAJOR.MINOR, e.g. 3.12')
    cross = python_version != here or bool(platforms)
    platforms = list(platforms or (MANYLINUX if cross else []))
    kept = parse_keep(keep)
    pins = read_pins()
    if dest.exists() and any(dest.iterdir()):
        old = dest / MANIFEST
        if not old.exists():
            raise WheelhouseError(f'{dest} exists and is not a wheelhouse: give an empty or new '
                                  f'folder')
        previous = json.loads(old.read_text())
        if (previous.get('python_version'), previous.get('kept')) != (python_version, kept):
            raise WheelhouseError(
                f'{dest} is a wheelhouse for Python {previous.get("python_version")} keeping '
                f'{previous.get("kept")}; this one is for {python_version} keeping {kept}: use '
                f'another folder')
    dest.mkdir(parents=True, exist_ok=True)
    log = dest / 'wheelhouse.log'
    log.write_text('')
    target = ['--python-version', python_version, '--implementation', 'cp',
              '--abi', 'cp' + python_version.replace('.', '')] if cross else []
    for tag in platforms:
        target += ['--platform', tag]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # mmcv's source: pip prepares its metadata with setup.py, which imports pkg_resources,
        # so the build tools it gets are pinned (setuptools < 81) by the same constraints
        build_constraints = tmp / 'build-constraints.txt'
        build_constraints.write_text(''.join(f'{n}=={pins[n]}\n' for n in ('setuptools', 'wheel')
                                             if n in pins))
        mmcv = f'mmcv-{pins["mmcv"]}.tar.gz'
        if not (dest / mmcv).exists():
            pip('download', '--no-deps', '--no-binary', 'mmcv', '-d', str(dest),
                f'mmcv=={pins["mmcv"]}', log=log, env=dict(PIP_CONSTRAINT=str(build_constraints)))
        # every binary wheel, one resolver run; kept packages are stood in for by empty wheels
        placeholders = tmp / 'kept'
        placeholders.mkdir()
        constraints = tmp / 'constraints.txt'
        lines = [f'{n}=={v}' for n, v in pins.items() if n not in kept and n != 'mmcv']
        for name, version in kept.items():
            local = f'{version}+{KEPT_LOCAL_LABEL}'
            placeholder_wheel(placeholders, name, local)
            lines.append(f'{name}=={local}')
        constraints.write_text('\n'.join(lines) + '\n')
        requirements = sorted({*STACK, *package_requirements(), *mmcv_requirements(dest / mmcv)})
        requirements = [r for r in requirements if canonical(re.split(r'[<>=!~;\[ ]', r)[0])
                        != 'mmcv']
        pip('download', '--only-binary', ':all:', '-c', str(constraints), '--find-links',
            str(placeholders), '-d', str(dest), *target, *requirements, log=log)
        for stale in dest.glob(f'*+{KEPT_LOCAL_LABEL}-py3-none-any.whl'):
            stale.unlink()

    # mmcv wheels this machine has built for that Python (tools/install.sh's cache)
    cache = Path(os.environ.get('RESNEXT_DET_CACHE')
                 or Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'resnext_det')
    py_tag = 'cp' + python_version.replace('.', '')
    pattern = f'mmcv-{pins["mmcv"]}-torch-*-{py_tag}-*/mmcv-*.whl'
    for built in sorted((cache / 'wheels').glob(pattern)):
        if kept.get('torch') and f'-torch-{kept["torch"]}' not in built.parent.name:
            continue
        target_dir = dest / 'mmcv-built' / built.parent.name
        target_dir.mkdir(parents=True, exist_ok=True)
        if not (target_dir / built.name).exists():
            shutil.copy2(built, target_dir / f'.{built.name}.partial')
            os.replace(target_dir / f'.{built.name}.partial', target_dir / built.name)

    files = sorted(p for p in dest.rglob('*') if p.is_file() and p.name not in (MANIFEST,
                                                                                 log.name))
    manifest = dict(python_version=python_version, platforms=platforms or 'this machine',
                    kept=kept, mmcv=pins['mmcv'],
                    files={str(p.relative_to(dest)): sha256(p) for p in files})
    tmp_manifest = dest / f'.{MANIFEST}.partial'
    tmp_manifest.write_text(json.dumps(manifest, indent=1) + '\n')
    os.replace(tmp_manifest, dest / MANIFEST)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dest', default=str(ROOT / 'wheelhouse'),
                        help='the folder to fill (default: ./wheelhouse)')
    parser.add_argument('--python-version', help='MAJOR.MINOR of the target (default: this '
                        "interpreter's); another one downloads manylinux x86_64 wheels")
    parser.add_argument('--platform', action='append', help='a wheel platform tag of the target '
                        '(repeatable; default: this machine, or manylinux x86_64)')
    parser.add_argument('--keep', action='append', default=[], metavar='NAME==VERSION',
                        help='a package the target has already and keeps (repeatable), '
                        'e.g. --keep torch==2.11.0 --keep torchvision==0.26.0')
    args = parser.parse_args(argv)
    try:
        manifest = build(args.dest, args.python_version, args.platform, args.keep)
    except WheelhouseError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in Path(args.dest).rglob('*') if p.is_file())
    kept = ', '.join(f'{n}=={v}' for n, v in manifest['kept'].items())
    print(f'{args.dest}: {len(manifest["files"])} files, {size / 2**20:.0f} MiB, for Python '
          f'{manifest["python_version"]}' + (f', keeping {kept}' if kept else ''))
    print(f'install from it, with no network: make install WHEELHOUSE={args.dest}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
