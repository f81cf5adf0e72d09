"""tools/gpu_checks.py, the one-call run of the GPU checks: its commands name real tools,
configs and flags; steps run in priority order within the budget, a failed or skipped step does
not stop the next ones and the summary is written after every step; the trainer's img/s from
mmengine's logged times. The slow tier rehearses the dist and trainer steps on the CPU."""
import json
import re
import shlex
import sys
import time
from pathlib import Path

import gpu_checks  # tools/, on sys.path under pytest (tests/conftest.py)
import pytest

ROOT = Path(__file__).resolve().parents[1]


def commands(capsys, *args):
    assert gpu_checks.main(['--dry-run', *args]) == 0
    return re.findall(r'^==> (\w+): (.*)$', capsys.readouterr().out, re.M)


def test_dry_run_names_existing_tools_and_configs_in_priority_order(capsys, tmp_path):
    printed = commands(capsys, '--device', 'cpu', '--out', str(tmp_path))
    steps = list(dict.fromkeys(step for step, _ in printed))
    assert steps == list(gpu_checks.STEPS)
    for step, line in printed:
        words = shlex.split(line)
        for word in words:
            if re.fullmatch(r'(tools|configs|tests)/\S+', word):
                assert (ROOT / word).exists(), (step, word)
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


HELP_OF_EACH = """
import contextlib, io, json, runpy, sys
sys.path.insert(0, 'tools')  # as for `python tools/X.py`: the tools' sibling modules
helps = {}
for script in sys.argv[1:]:
    sys.argv, out = [script, '--help'], io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        runpy.run_path(script, run_name='__main__')
    helps[script] = out.getvalue()
print(json.dumps(helps))
"""


def test_every_flag_it_passes_is_one_the_tool_has(capsys, tmp_path):
    """Each --flag of the dry run's command lines is in the help of the tool it is passed to:
    an option renamed in a tool fails here, not on a GPU lease."""
    import subprocess
    flags = {}  # script -> the flags passed to it
    for step, line in commands(capsys, '--device', 'cpu', '--out', str(tmp_path)):
        words = shlex.split(line)
        script = next((w for w in words if re.fullmatch(r'tools/\w+\.(py|sh)', w)), None)
        if script is None:  # pytest's own flags
            continue
        # dist_train.sh hands its arguments after CONFIG GPUS to tools/train.py
        script = 'tools/train.py' if script.endswith('.sh') else script
        flags.setdefault(script, set()).update(w.split('=')[0] for w in words
                                               if w.startswith('--'))
    assert {'tools/benchmark.py', 'tools/train.py', 'tools/make_demo_data.py',
            'tools/demo.py'} <= {s for s, f in flags.items() if f}
    scripts = sorted(s for s, f in flags.items() if f)
    # one interpreter for all the tools' --help: torch and mmdet imported once
    helps = json.loads(subprocess.run(
        [sys.executable, '-c', HELP_OF_EACH, *scripts], cwd=ROOT, capture_output=True,
        text=True, check=True).stdout.strip().splitlines()[-1])
    for script in scripts:
        assert '--help' in helps[script], script
        missing = {f for f in flags[script] if f not in helps[script]}
        assert not missing, (script, missing)


def fake_steps(monkeypatch, seconds):
    """Steps that take ``seconds[name]`` (a StepError for 'fail') and record their order."""
    ran = []

    def make(name):
        def run(step):
            ran.append(name)
            if seconds[name] == 'fail':
                raise gpu_checks.StepError(f'{name} broke')
            time.sleep(seconds[name])
            step.results['value'] = name
        return run

    monkeypatch.setattr(gpu_checks, 'RUNNERS', {n: make(n) for n in gpu_checks.STEPS})
    monkeypatch.setattr(gpu_checks, 'NEEDS', dict.fromkeys(gpu_checks.STEPS, 0.3))
    return ran


def test_steps_run_in_order_within_the_budget_and_a_failure_does_not_stop_the_rest(
        monkeypatch, tmp_path):
    seconds = dict(env=0, cuda_tests='fail', benchmark=0.5, dist=0, trainer=0, fast_seeds=0)
    ran = fake_steps(monkeypatch, seconds)
    # asked out of order: run in priority order; after benchmark less than 0.3 s is left
    rc = gpu_checks.main(['--device', 'cpu', '--out', str(tmp_path), '--budget', '0.7',
                          '--steps', 'fast_seeds', 'benchmark', 'cuda_tests', 'env'])
    assert rc == 1  # a step failed
    assert ran == ['env', 'cuda_tests', 'benchmark']
    summary = json.loads((tmp_path / 'summary.json').read_text())
    rows = {row['step']: row for row in summary['steps']}
    assert [row['step'] for row in summary['steps']] == ['env', 'cuda_tests', 'benchmark',
                                                         'fast_seeds']
    assert rows['cuda_tests']['status'] == 'failed' and 'broke' in rows['cuda_tests']['error']
    assert rows['benchmark']['status'] == 'ok' and rows['benchmark']['results'] == {
        'value': 'benchmark'}
    assert rows['fast_seeds']['status'] == 'skipped', rows['fast_seeds']
    assert '| fast_seeds | skipped |' in (tmp_path / 'summary.md').read_text()


def test_the_summary_is_on_disk_after_each_step(monkeypatch, tmp_path):
    """A call cut off by the device tool's limit still brings back what it finished."""
    seen = []
    ran = fake_steps(monkeypatch, dict.fromkeys(gpu_checks.STEPS, 0))
    runners = dict(gpu_checks.RUNNERS)

    def trainer(step):
        seen.append(json.loads((tmp_path / 'summary.json').read_text()))
        runners['trainer'](step)

    monkeypatch.setitem(gpu_checks.RUNNERS, 'trainer', trainer)
    assert gpu_checks.main(['--device', 'cpu', '--out', str(tmp_path)]) == 0
    assert [r['step'] for r in seen[0]['steps']] == ['env', 'cuda_tests', 'benchmark', 'dist']
    assert ran == list(gpu_checks.STEPS)


def test_images_per_second_from_mmengines_logged_times(tmp_path):
    path = tmp_path / 'scalars.json'
    times = [5.0, 3.0, 0.50, 0.40, 0.42, 0.45, 0.41]  # the first two: warm-up
    records = [dict(lr=0.1, data_time=t / 10, time=t, loss=1.0, step=5 * i)
               for i, t in enumerate(times)]
    records.insert(3, {'accuracy/top1': 50.0, 'step': 15})  # a validation record
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    got = gpu_checks.images_per_second(str(path), batch_size=32)
    assert got['logged_iters'] == 5
    assert got['s_per_iter'] == pytest.approx(0.42)
    assert got['img_per_s'] == pytest.approx(32 / 0.42)
    assert got['data_s_per_iter'] == pytest.approx(0.042)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records[:2]))
    with pytest.raises(gpu_checks.StepError, match='fewer than 3 logged training iterations'):
        gpu_checks.images_per_second(str(path), batch_size=32)


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        gpu_checks.main(['--budget', '0'])
    assert '--budget must be > 0' in capsys.readouterr().err
    if not __import__('torch').cuda.is_available():
        with pytest.raises(SystemExit, match='no CUDA device'):
            gpu_checks.main(['--device', 'cuda', '--dry-run'])


@pytest.mark.slow
def test_rehearsal_of_the_dist_and_trainer_steps_on_the_cpu(tmp_path):
    """The real commands, at rehearsal size: one-process torchrun (gloo) run and --resume, the
    ImageNet recipe's trainer on 224x224 crops for a few logged iterations, its JPEGs decoded
    by the loader workers and then by the model's DeviceDecodePreprocessor."""
    import subprocess
    run = subprocess.run([sys.executable, 'tools/gpu_checks.py', '--device', 'cpu', '--steps',
                          'dist', 'trainer', '--budget', '900', '--out', str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {r['step']: r for r in json.loads((tmp_path / 'summary.json').read_text())['steps']}
    dist = rows['dist']['results']
    assert dist['checkpoints'] == ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']
    assert dist['resumed'] and dist['distributed_runs'] == 2
    trainer = rows['trainer']['results']
    for decode in ('cpu_workers', 'device'):  # the device path's decode ran on the CPU here
        assert trainer[f'decode_on_{decode}']['img_per_s'] > 0
        assert trainer[f'decode_on_{decode}']['logged_iters'] >= 4
        assert (tmp_path / f'trainer_{decode}_scalars.json').is_file()
    assert list(tmp_path.glob('dist_*.log'))


def test_bundle_wheels_are_pinned_where_the_constraints_pin_them(capsys):
    from wheelhouse import canonical, read_pins
    assert gpu_checks.main(['--bundle-wheels']) == 0
    printed = capsys.readouterr().out.split()
    pins = read_pins()
    assert [w.split('==')[0] for w in printed] == list(gpu_checks.BUNDLE_WHEELS)
    for name, word in zip(gpu_checks.BUNDLE_WHEELS, printed):
        assert word == (f'{name}=={pins[canonical(name)]}' if canonical(name) in pins
                        else name)
    assert 'simplejpeg==' + pins['simplejpeg'] in printed  # the decoder the package needs


def test_a_step_that_runs_over_its_limit_ends_with_its_whole_process_tree(monkeypatch,
                                                                          tmp_path):
    """A hung step (torchrun's ranks, loader workers) must not hold the GPU for the next."""
    import os
    monkeypatch.setitem(gpu_checks.LIMITS, 'dist', 3)  # bash starts the sleep well before
    step = gpu_checks.Step('dist', str(tmp_path), str(tmp_path), 'cpu', time.time() + 60)
    pid_file = tmp_path / 'grandchild'
    start = time.time()
    with pytest.raises(gpu_checks.StepError, match='timed out after 3 s'):
        step.run('bash', '-c', f'sleep 60 & echo $! > {pid_file}; wait')
    assert time.time() - start < 15
    grandchild = int(pid_file.read_text())
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f'the step\'s grandchild {grandchild} outlived it')
    assert '$ bash -c' in (tmp_path / 'dist.log').read_text()


def test_the_fast_paths_figures_are_judged_against_the_targets():
    def row(arch, variant, **figures):
        return dict(arch=arch, variant=variant, **figures)

    summary = dict(rows=[
        row('x101_32x4d', 'stock', detector_train_peak_mb=8000.0),
        row('x101_32x4d', 'fast', backbone_train_speedup=3.2, detector_train_speedup=1.9,
            detector_infer_speedup=1.5, detector_train_peak_mb=6000.0),
        row('r101', 'stock', detector_train_peak_mb=None),
        row('r101', 'fast', backbone_train_speedup=2.0, detector_train_speedup=2.5,
            detector_infer_speedup=None, detector_train_peak_mb=5000.0),
        row('x101_32x4d', 'ours', backbone_train_speedup=9.0)],  # not the fast path
        x_over_r=[dict(variant='stock', pair='x101_32x4d / r101', detector_train=1.3),
                  dict(variant='fast', pair='x101_32x4d / r101', detector_train=1.05)])
    assert gpu_checks.fast_path_targets(summary) == {
        'x101_32x4d': dict(backbone_train_speedup=[3.2, True],
                           detector_train_speedup=[1.9, False],
                           detector_infer_speedup=[1.5, True],  # the bound itself is met
                           peak_memory_over_stock=[0.75, True]),
        'r101': dict(backbone_train_speedup=[2.0, False], detector_train_speedup=[2.5, True],
                     detector_infer_speedup=[None, None], peak_memory_over_stock=[None, None]),
        'x101_32x4d / r101': dict(x_over_r_detector_train=[1.05, False])}


def test_cuda_test_counts_from_pytests_junit_report(tmp_path):
    import subprocess
    (tmp_path / 'test_some.py').write_text(
        'import pytest\n'
        'def test_ok(): pass\n'
        'def test_bad(): assert False\n'
        '@pytest.mark.skip\n'
        'def test_skipped(): pass\n')
    report = tmp_path / 'report.xml'
    subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                    str(tmp_path / 'test_some.py'), f'--junitxml={report}'],
                   cwd=tmp_path, capture_output=True)
    assert gpu_checks.junit_counts(str(report)) == dict(tests=3, failures=1, errors=0,
                                                        skipped=1)


def test_the_bundle_brings_what_its_wheels_require_on_the_gpu_machine():
    """../shared/gpu/prep.sh downloads without dependencies: every requirement of a bundled
    package (as installed here, at the same pins) on the GPU machine's Python 3.12 must be
    bundled too, be one of prep.sh's own wheels, or be there already (numpy, torch)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from wheelhouse import canonical
    prep = ROOT.parent / 'shared' / 'gpu' / 'prep.sh'
    if not prep.is_file():
        pytest.skip('no ../shared/gpu/prep.sh beside the checkout')
    listed = re.search(r'for p in (.*?); do', prep.read_text(), re.S).group(1)
    prep_wheels = {canonical(w.split('==')[0]) for w in listed.replace('\\', ' ').split()
                   if not w.startswith('$')}
    have = prep_wheels | {canonical(n) for n in gpu_checks.BUNDLE_WHEELS} | {'numpy', 'torch'}
    gpu_python = dict(python_version='3.12', python_full_version='3.12.0',
                      sys_platform='linux', platform_system='Linux', extra='')
    missing = {}
    for name in gpu_checks.BUNDLE_WHEELS:
        for text in requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(gpu_python):
                if canonical(req.name) not in have:
                    missing.setdefault(name, []).append(req.name)
    assert not missing, missing
