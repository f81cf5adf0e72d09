"""A rank that dies, hangs or is stopped in a 2-process CPU torchrun (gloo) run of
tools/dist_train.sh: the job stops quickly (within the collective timeout for a hang), ends with
one `error:` line naming the rank and the checkpoint to resume from, leaves no process behind,
and `--resume` with 2 processes ends with exactly the weights of an uninterrupted run (every
rank's random states are in the checkpoint)."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from tiny_dist_configs import TASKS  # tests/engine/, on sys.path under pytest
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from resnext_det.engine import collective, latest_complete_checkpoint
from resnext_det.engine.cli import dist_timeout
from resnext_det.engine.collective import collective_failure
from resnext_det.errors import UserInputError
from resnext_det.utils.safe_load import load_checkpoint_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))  # the launcher of tools/dist_*.sh
import dist_launch  # noqa: E402
from dist_launch import Failure, blame  # noqa: E402

sys.path.pop(0)
FAULT_HOOK = '''
import os, os.path as osp, signal, time
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FaultHook(Hook):
    """FAULT=SIGKILL|SIGSTOP|hang: rank 1 fails after the first iteration of the second epoch.
    Its gradients were all-reduced with rank 0's in that iteration, so rank 0 has written
    epoch_1.pth by then: the fault always comes after the same, complete checkpoint."""
    priority = 'LOWEST'

    def before_train(self, runner):
        os.makedirs(osp.join(runner.work_dir, 'pids'), exist_ok=True)
        with open(osp.join(runner.work_dir, 'pids', f'rank{get_rank()}'), 'w') as f:
            f.write(str(os.getpid()))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        fault = os.environ.get('FAULT')
        if fault and get_rank() == 1 and runner.epoch == 1 and batch_idx == 0:
            with open(osp.join(runner.work_dir, 'fault_time'), 'w') as f:
                f.write(repr(time.time()))
            if fault == 'hang':  # a stuck data loader, a deadlock: alive, never answering
                while True:
                    time.sleep(1)
            os.kill(os.getpid(), getattr(signal, fault))
'''
COMMON = """
custom_imports = dict(imports=['resnext_det', 'resnext_det.runtime', 'fault_hook'])
custom_hooks = [dict(type='resnext_det.RandomStateHook'), dict(type='FaultHook')]
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=-1, save_best=None))
randomness = dict(seed=0, deterministic=True)
"""
# the collective timeout of the fault runs (our configs: 1800 s); above the few seconds rank 1
# may wait for rank 0 writing a checkpoint on a busy machine
TIMEOUT_S = 8
LINE = re.compile(r'^error: (?P<what>.*); resume from the last complete checkpoint: '
                  r'(?P<ckpt>\S+) with: (?P<cmd>bash tools/dist_train\.sh .* --resume)$')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Setup:
    def __init__(self, tmp: Path, data_root: Path, task: str):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / 'fault_hook.py').write_text(FAULT_HOOK)
        self.config = tmp / f'faults_{task}.py'
        self.config.write_text(TASKS[task].format(root=ROOT, data=data_root) + COMMON)

    def env(self, **extra):
        return dict(os.environ, PYTHON=sys.executable, PYTHONPATH=f'{self.tmp}:{ROOT}',
                    OMP_NUM_THREADS='1', PORT=str(free_port()), **extra)

    def run(self, args, **env):
        start = time.time()
        proc = subprocess.run(args, env=self.env(**env), capture_output=True, text=True,
                              timeout=540, cwd=ROOT)
        proc.ended = time.time()
        proc.elapsed = proc.ended - start
        return proc

    def train(self, work_dir, *extra, **env):
        return self.run(['bash', 'tools/dist_train.sh', str(self.config), '2',
                         '--work-dir', str(work_dir), *extra], **env)


_STRAIGHT = {}


@pytest.fixture
def straight(tmp_path_factory, small_demo_data):
    """The uninterrupted 2-process run of a task (once per session): its epoch_2 weights."""

    def get(task):
        if task not in _STRAIGHT:
            data_root = small_demo_data(num_train=16, num_val=4, num_cls_per_class=4)
            setup = Setup(tmp_path_factory.mktemp(f'straight_{task}'), data_root, task)
            work_dir = setup.tmp / 'work'
            proc = setup.train(work_dir)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
            _STRAIGHT[task] = weights(work_dir / 'epoch_2.pth')
        return _STRAIGHT[task]

    return get


def weights(path):
    return load_checkpoint_file(str(path))['state_dict']


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=0, msg=key)


def last_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else ''


def running(pid):
    try:
        stat = Path(f'/proc/{pid}/stat').read_bytes()
    except OSError:
        return False
    return stat.rsplit(b')', 1)[1].split()[0] != b'Z'


def assert_nothing_left(work_dir, config):
    """Every rank is gone, and no process of the job (ranks, their data loader workers) runs:
    at once, not when orphaned loader workers would notice on their own (5 s)."""
    pids = [int(p.read_text()) for p in (work_dir / 'pids').iterdir()]
    assert len(pids) == 2
    deadline = time.time() + 1
    while True:
        alive = [pid for pid in pids if running(pid)]
        left = []
        for proc_dir in Path('/proc').iterdir():
            try:
                if (str(config).encode() in (proc_dir / 'cmdline').read_bytes()
                        and running(proc_dir.name)):
                    left.append(proc_dir.name)
            except OSError:
                continue
        if not alive and not left:
            return
        if time.time() > deadline:
            raise AssertionError(f'left behind: ranks {alive}, processes {left}')
        time.sleep(0.1)


def faulted_run(setup, work_dir, *args, FAULT):
    """A training run with a fault in rank 1: (process, last line, its LINE match, rank 1's pid,
    seconds from the fault to the end of the job). The job failed and ended with the line."""
    proc = setup.train(work_dir, *args, FAULT=FAULT)
    assert proc.returncode != 0
    line = last_line(proc)
    match = LINE.match(line)
    assert match, proc.stderr[-4000:]
    rank1 = int((work_dir / 'pids' / 'rank1').read_text())
    return proc, line, match, rank1, proc.ended - float((work_dir / 'fault_time').read_text())


def resume_as_told(setup, line):
    """Run the command the summary line gives (it resumes from the latest checkpoint)."""
    cmd = shlex.split(LINE.match(line)['cmd'])
    assert cmd[:4] == ['bash', 'tools/dist_train.sh', str(setup.config), '2'], cmd
    return setup.run(cmd)


@pytest.mark.slow
@pytest.mark.parametrize('task', ['detection', 'classification'])
def test_a_killed_rank_ends_the_job_with_one_line_and_resume_matches(
        tmp_path, small_demo_data, straight, task):
    setup = Setup(tmp_path, small_demo_data(num_train=16, num_val=4, num_cls_per_class=4), task)
    work_dir = tmp_path / 'work'
    proc, line, match, rank1, stop_s = faulted_run(setup, work_dir, FAULT='SIGKILL')
    assert match['what'] == f'rank 1 (pid {rank1}) was killed by SIGKILL', line
    assert match['ckpt'] == str(work_dir / 'epoch_1.pth')
    assert match['ckpt'] == latest_complete_checkpoint(str(work_dir))
    assert not (work_dir / 'epoch_2.pth').exists()
    assert sum(ln.startswith('error:') for ln in proc.stderr.splitlines()) == 1
    assert 'ChildFailedError' not in proc.stderr  # torchrun's report, without its traceback
    assert stop_s < 10, f'{stop_s:.1f} s from the kill to the end of the job'
    assert_nothing_left(work_dir, setup.config)
    print(f'{task}: SIGKILL of rank 1 -> job ended {stop_s:.2f} s later; {line}')

    resumed = resume_as_told(setup, line)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_identical(straight(task), weights(work_dir / 'epoch_2.pth'))


@pytest.mark.slow
@pytest.mark.parametrize('fault,what', [
    ('SIGSTOP', rf'was stopped \(SIGSTOP/SIGTSTP\) and did not answer within the {TIMEOUT_S} s '
                r'collective timeout \(env_cfg.dist_cfg.timeout\); it was killed'),
    ('hang', rf'hung and did not answer within the {TIMEOUT_S} s collective timeout '
             r'\(env_cfg.dist_cfg.timeout\); it was terminated'),
])
def test_a_stopped_or_hung_rank_ends_the_job_after_the_collective_timeout(
        tmp_path, small_demo_data, straight, fault, what):
    setup = Setup(tmp_path, small_demo_data(num_train=16, num_val=4, num_cls_per_class=4),
                  'detection')
    work_dir = tmp_path / 'work'
    options = [f'env_cfg.dist_cfg.timeout={TIMEOUT_S}']
    if fault == 'hang':  # with a data loader worker per rank: none may outlive the job
        options.append('train_dataloader.num_workers=1')
    proc, line, match, rank1, stop_s = faulted_run(setup, work_dir, '--cfg-options', *options,
                                                   FAULT=fault)
    assert re.fullmatch(rf'rank 1 \(pid {rank1}\) {what} \(rank 0 gave up: Timed out '
                        rf'waiting {TIMEOUT_S}000ms for recv operation to complete\)',
                        match['what']), line
    assert match['ckpt'] == str(work_dir / 'epoch_1.pth')
    # rank 0's own line (it gave up), then the summary: no traceback
    assert 'Traceback' not in proc.stderr, proc.stderr[-4000:]
    # not torchrun's 30 s wait for a stopped process, nor the default 30 min timeout
    assert TIMEOUT_S - 1 < stop_s < TIMEOUT_S + 10, f'{stop_s:.1f} s'
    assert_nothing_left(work_dir, setup.config)
    print(f'{fault}: rank 1 -> job ended {stop_s:.2f} s later; {line}')

    if fault == 'SIGSTOP':
        resumed = resume_as_told(setup, line)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert_identical(straight('detection'), weights(work_dir / 'epoch_2.pth'))


def test_blame_names_the_cause_not_the_ranks_that_gave_up():
    killed = Failure(1, 11, -9)
    terminated = Failure(0, 10, -15)  # by torchrun's agent, once rank 1 had failed
    assert blame([terminated, killed]) == 'rank 1 (pid 11) was killed by SIGKILL'
    crashed = Failure(1, 11, 1)
    gave_up = Failure(0, 10, 2, 'CollectiveError: Connection closed by peer')
    assert blame([gave_up, crashed]) == 'rank 1 (pid 11) exited with code 1 (its error is above)'
    # a rank that others lost the connection to was the cause, even when SIGTERM ended it
    assert blame([gave_up, Failure(1, 11, -15)]) == 'rank 1 (pid 11) was killed by SIGTERM'
    # two ranks failing on their own: the first in torchrun's timestamps
    assert blame([Failure(0, 10, 1, timestamp=6), Failure(1, 11, -6, timestamp=5)]) == \
        'rank 1 (pid 11) was killed by SIGABRT'
    timed_out = Failure(0, 10, 2, 'CollectiveError: Timed out waiting')
    hung = Failure(1, 11, -15)
    assert blame([timed_out, hung], 30) == (
        'rank 1 (pid 11) hung and did not answer within the 30 s collective timeout '
        '(env_cfg.dist_cfg.timeout); it was terminated (rank 0 gave up: Timed out waiting)')
    # a rank that leaves no error file: one found stopped is still the one named
    stopped = Failure(1, 11, -9, stopped='T')
    assert blame([Failure(0, 10, 1), stopped]).startswith(
        'rank 1 (pid 11) was stopped (SIGSTOP/SIGTSTP) and did not answer')
    assert blame([timed_out]) == (
        'rank 0 (pid 10) exited with code 2: a collective failed (Timed out waiting); the rank '
        'it waited for did not fail here (on another node?)')


def test_resume_hint_replaces_a_given_resume():
    def without_resume(args):
        return dist_launch._without(args, '--resume', optional_value=True)
    assert without_resume(['--work-dir', 'w', '--resume', 'w/epoch_1.pth', '--amp']) == \
        ['--work-dir', 'w', '--amp']
    assert without_resume(['--resume', '--amp', '--resume=x']) == ['--amp']
    assert dist_launch._without(['a', '--launcher', 'pytorch', 'b'], '--launcher') == ['a', 'b']


def test_a_stopped_worker_is_killed_once_the_agent_tells_it_to_end():
    """What torchrun's agent does to end a worker (SIGTERM to its process group), on a stopped
    worker: the watcher kills it at once (the agent would wait 30 s), not before."""
    worker = subprocess.Popen(['sleep', '60'], start_new_session=True)
    done, stopped = threading.Event(), {}
    watcher = threading.Thread(target=dist_launch._kill_stopped, args=(done, stopped))
    watcher.start()
    try:
        os.kill(worker.pid, signal.SIGSTOP)
        time.sleep(0.6)
        assert worker.poll() is None and stopped == {}  # stopped alone: left alone
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=5) == -signal.SIGKILL
        assert stopped == {worker.pid: 'T'}
    finally:
        done.set()
        watcher.join()
        worker.kill()
        worker.wait()


def test_collective_timeout_is_read_in_seconds_and_checked(repo_root):
    from mmengine.config import Config
    for path in ('configs/faster_rcnn_x101_32x4d_fpn.py',
                 'configs/imagenet/resnext50_32x4d_8xb32_in1k.py'):
        cfg = Config.fromfile(str(repo_root / path))
        assert cfg.env_cfg.dist_cfg.timeout == 1800  # seconds, as mmengine's init_dist takes
        assert dist_timeout(cfg).total_seconds() == 1800
    for bad in (-1, 0, '5', True):
        with pytest.raises(UserInputError, match='env_cfg.dist_cfg.timeout'):
            dist_timeout(Config(dict(env_cfg=dict(dist_cfg=dict(timeout=bad)))))
    assert dist_timeout(Config(dict(env_cfg=dict()))) is None
    assert collective_failure(RuntimeError('Timed out waiting')) is None  # no process group



GIVE_UP = """
import os, sys, torch.distributed as dist
from resnext_det.engine.collective import exit_on_collective_failure
os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=sys.argv[1], RANK='0', WORLD_SIZE='1')
dist.init_process_group('gloo')
exit_on_collective_failure(ValueError('not a collective'), 'evaluation')  # returns
print('returned', flush=True)
exit_on_collective_failure(RuntimeError(
    '[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer '
    '[127.0.0.1]:4242'), 'evaluation')
print('not reached', flush=True)
"""


@pytest.mark.parametrize('under_launcher', [False, True])
def test_a_rank_that_gives_up_on_a_collective_ends_at_once(tmp_path, under_launcher):
    """What tools/train.py and tools/test.py do when a collective fails because of another
    rank: alone, one `error:` line; under tools/dist_*.sh, a record in the rank's error file for
    the launcher's line (which names the other rank) and a log line. Exit status 2 either way,
    without waiting on the broken process group."""
    error_file = tmp_path / 'error.json'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if under_launcher:
        env.update(TORCHELASTIC_ERROR_FILE=str(error_file), RESNEXT_DET_DIST_LAUNCH='1')
    proc = subprocess.run([sys.executable, '-c', GIVE_UP, str(free_port())], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout.startswith('returned\n') and 'not reached' not in proc.stdout
    gist = ('rank 0: a collective operation failed (Connection closed by peer '
            '[127.0.0.1]:4242): another rank died or stopped answering; evaluation stopped')
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith('error:')]
    if under_launcher:
        assert errors == [] and gist in proc.stdout + proc.stderr
        recorded = Failure(0, 1, 2, json.loads(error_file.read_text())['message']['message'])
        assert recorded.collective
        # torchrun reads it as its own (@record's format); the launcher knows the marker
        assert ProcessFailure(0, 1, 2, str(error_file)).message['message'] == recorded.message
        assert (dist_launch.COLLECTIVE_ERROR, dist_launch.LAUNCHER_ENV) == (
            collective.COLLECTIVE_ERROR, collective.LAUNCHER_ENV)
    else:
        assert errors == [f'error: {gist}'] and not error_file.exists()
