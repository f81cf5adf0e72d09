"""``python tools/dist_launch.py [torchrun options] SCRIPT [args]``: torchrun, in this process,
for tools/dist_*.sh; its failure report ends with an ``error:`` line naming the rank that caused
the failure (not one that then gave up on a collective, resnext_det/engine/collective.py, or was
terminated) and, for tools/train.py, the last complete checkpoint and the command resuming from
it. A stopped worker is killed as soon as the agent asks it to end (the agent would wait 30 s)."""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import os
import os.path as osp
import shlex
import signal
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import List, NamedTuple, Optional

# resnext_det.engine.collective's, not imported: `import resnext_det` would import mmdet (seconds)
# before the workers start
COLLECTIVE_ERROR, LAUNCHER_ENV = 'CollectiveError', 'RESNEXT_DET_DIST_LAUNCH'
STOPPED = {'T': 'was stopped (SIGSTOP/SIGTSTP)', 't': 'was stopped by a debugger'}
SIGNALS = {s.value: s.name for s in signal.Signals}
# the signals torchrun's agent ends its workers with (SIGTERM, or the one it received)
_DEATH = sum(1 << (s - 1) for s in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM))


def _kill_stopped(done: threading.Event, stopped: dict) -> None:
    """Kill a stopped worker and its process group once the agent's death signal is pending."""
    me = os.getpid()
    while not done.wait(0.2):
        with suppress(OSError):  # a thread or a worker just ended
            for pid in [int(p) for t in Path(f'/proc/{me}/task').iterdir()
                        for p in (t / 'children').read_text().split()]:
                status = dict(ln.split(':\t', 1) for ln in
                              Path(f'/proc/{pid}/status').read_text().splitlines() if ':\t' in ln)
                if status['State'][0] in STOPPED and _DEATH & (
                        int(status['SigPnd'], 16) | int(status['ShdPnd'], 16)):
                    stopped[pid] = status['State'][0]
                    os.killpg(pid, signal.SIGKILL)


class Failure(NamedTuple):
    """A failed rank (torchrun's ProcessFailure) and the state it was killed in, if stopped."""
    rank: int
    pid: int
    exitcode: int
    message: str = ''
    stopped: Optional[str] = None
    timestamp: int = 0

    @property
    def collective(self) -> bool:  # it gave up because of another rank
        return self.message.startswith(COLLECTIVE_ERROR)

    def describe(self) -> str:
        code = self.exitcode
        return f'exited with code {code}' if code >= 0 else \
            f'was killed by {SIGNALS.get(-code, f"signal {-code}")}'


def blame(failures: List[Failure], timeout_s=None) -> str:
    """The rank(s) that caused the failure, and how."""
    by_rank = sorted(failures, key=lambda f: f.rank)
    gave_up = [f for f in by_rank if f.collective]
    stopped = [f for f in by_rank if f.stopped]
    rest = [f for f in by_rank if not (f.collective or f.stopped)]
    reason = gave_up[0].message[len(COLLECTIVE_ERROR) + 2:] if gave_up else ''
    if not (stopped or rest and any(w in reason.lower() for w in ('timed out', 'timeout'))):
        # the rank that failed on its own, not one the agent then terminated
        f = min(rest or gave_up, key=lambda f: (f.exitcode == -signal.SIGTERM, f.timestamp, f.rank))
        if f.collective:
            return (f'rank {f.rank} (pid {f.pid}) {f.describe()}: a collective failed ({reason}); '
                    'the rank it waited for did not fail here (on another node?)')
        return f'rank {f.rank} (pid {f.pid}) {f.describe()}' + (
            ' (its error is above)' if f.exitcode > 0 else '')
    # the others gave up waiting: name the ranks they waited for
    waiters = gave_up or rest
    waited = f'{", ".join(f"rank {f.rank}" for f in waiters)} gave up: ' + (
        reason or waiters[0].describe())
    timeout = f'the {timeout_s:g} s collective timeout' if timeout_s else 'the collective timeout'
    return '; '.join(
        f'rank {f.rank} (pid {f.pid}) {STOPPED.get(f.stopped, "hung")} and did not answer within '
        f'{timeout} (env_cfg.dist_cfg.timeout); ' + (
            'it was killed' if f.stopped else 'it was terminated' if f.exitcode in (
                -signal.SIGTERM, -signal.SIGKILL) else f'then it {f.describe()}')
        for f in stopped or rest) + f' ({waited})'


def _without(args: List[str], option: str, optional_value: bool = False) -> List[str]:
    """``args`` without ``option`` and its value (an optional one: unless it is an option)."""
    values = {i + 1 for i, a in enumerate(args[:-1])
              if a == option and not (optional_value and args[i + 1].startswith('-'))}
    return [a for i, a in enumerate(args)
            if i not in values and a != option and not a.startswith(option + '=')]


def _read_config(args: List[str], config: dict) -> None:
    """The work dir (mmdet's rule, ``load_config``) and collective timeout of a tools/train.py or
    test.py command line, read in the background at a low priority (mmdet's import takes s)."""
    UserInputError = ()  # reported as it is once resnext_det has imported; nothing before
    try:  # this thread only (Linux threads have their own nice value)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        from argparse import ArgumentParser

        from mmengine.config import DictAction

        from resnext_det.engine.cli import dist_timeout, load_config
        from resnext_det.errors import UserInputError
        parser = ArgumentParser(add_help=False)
        for name, options in (('config', {}), ('--work-dir', {}),
                              ('--cfg-options', dict(nargs='+', action=DictAction))):
            parser.add_argument(name, **options)
        args = parser.parse_known_args(args)[0]
        cfg = load_config(args.config, args.cfg_options, 'pytorch', args.work_dir)
        config['work_dir'] = cfg.work_dir
        timeout = dist_timeout(cfg)  # a bad one: the workers report it
        config['timeout'] = timeout and timeout.total_seconds()
    except (Exception, SystemExit) as e:  # the line must come out whatever the config does
        config['problem'] = str(e) if isinstance(e, UserInputError) else \
            f'the config cannot be read: {type(e).__name__}: {e}'


def _next_step(kind: str, script: str, args: List[str], nproc, config: dict) -> str:
    """What the user does now: the command to run, for training with ``--resume`` (from the
    last complete checkpoint, which it names) in place of any given."""
    sh = osp.relpath(osp.join(osp.dirname(script), f'dist_{kind}.sh'))
    head = 1 if kind == 'train' else 2  # CONFIG [CHECKPOINT] GPUS, as tools/dist_*.sh take them
    rerun = ['bash', osp.abspath(sh) if sh.startswith('..') else sh, *args[:head], str(nproc),
             *_without(args[head:], '--launcher')]
    if kind == 'test':
        return f'evaluation stopped; rerun: {shlex.join(rerun)}'
    from resnext_det.engine import latest_complete_checkpoint
    work_dir = config.get('work_dir')
    last = work_dir and latest_complete_checkpoint(work_dir)
    if not last:
        why = config.get('problem') or f'no complete checkpoint in {work_dir} yet'
        return f'{why}; rerun: {shlex.join(rerun)}'
    return (f'resume from the last complete checkpoint: {last} with: '
            f'{shlex.join(_without(rerun, "--resume", optional_value=True) + ["--resume"])}')


def main(argv=None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(argv)
    script, script_args = args.training_script, args.training_script_args
    kind = script_args and {'train.py': 'train', 'test.py': 'test'}.get(osp.basename(script))
    os.environ[LAUNCHER_ENV] = '1'  # the workers inherit it
    done, stopped, config = threading.Event(), {}, {}
    threading.Thread(target=_kill_stopped, args=(done, stopped), daemon=True).start()
    reader = threading.Thread(target=_read_config, args=(script_args, config), daemon=True)
    if kind:
        reader.start()
    try:
        run(args)
        return 0
    except (ChildFailedError, SignalException) as e:
        done.set()
        failures = [Failure(rank, f.pid, f.exitcode, str(  # message: the error file's, if any
            f.message.get('message', '') if isinstance(f.message, dict) else f.message),
            stopped.get(f.pid), f.timestamp) for rank, f in getattr(e, 'failures', {}).items()]
        for f in failures:  # what is left of the workers' groups: their data loader workers
            with suppress(OSError):
                os.killpg(f.pid, signal.SIGKILL)
        if kind:
            reader.join(timeout=300)
        if failures:
            print(str(e).strip('\n'), file=sys.stderr)  # torchrun's own report
            line, code = f'error: {blame(failures, config.get("timeout"))}', 1
        else:  # the agent has stopped the workers with the signal it received
            line, code = f'error: the launcher received {SIGNALS[e.sigval]}', 128 + e.sigval
        if kind:
            line += '; ' + _next_step(kind, script, script_args, args.nproc_per_node, config)
        print(line, file=sys.stderr, flush=True)
        return code
    finally:
        done.set()


if __name__ == '__main__':
    code = main()
    if code:  # the job is over once its line is out: skip the teardown of torch and mmdet
        sys.stdout.flush()
        os._exit(code)
