"""torchrun for tools/dist_train.sh and tools/dist_test.sh, ending a failed job with one line.

    python resnext_det/engine/dist_launch.py [torchrun options] SCRIPT [SCRIPT args]

(run as a file, not with -m, so that the launcher does not import mmdet before the workers
start; ``python -m resnext_det.engine.dist_launch`` works too) takes torchrun's own options
(``torch.distributed.run``, which it runs in this process) and adds what torchrun leaves to
the user:

* the job ends with one ``error:`` line naming the rank that failed first, its signal or exit
  code, and for ``tools/train.py`` the last complete checkpoint and the command that resumes
  from it; torchrun's report stays above it;
* a rank that hangs or is stopped: the others give up after the collective timeout
  (``env_cfg.dist_cfg.timeout``) and ``tools/train.py`` records that its collective failed in
  the rank's error file (``TORCHELASTIC_ERROR_FILE``, :func:`record_collective_failure`), so
  the rank that did not answer is named, not the one that gave up;
* a stopped rank (SIGSTOP, SIGTSTP, a debugger) does not act on the SIGTERM torchrun's agent
  sends when another rank fails, and the agent would wait 30 s before its SIGKILL: a watcher
  thread kills stopped workers (with their process group) as soon as one worker fails, and
  after a failure whatever is left of the workers' process groups (data loader workers).

The watcher follows the workers (children of this process, found in ``/proc``) through
``pidfd``s: it knows which one ended first to the millisecond (torchrun's failures carry
seconds) and its exit status (read without reaping it, torchrun's agent does that).
"""
import os
import os.path as osp
import select
import shlex
import signal
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

if __name__ == '__main__':  # run as a file: its folder must not shadow top-level modules
    sys.path[:] = [p for p in sys.path if osp.abspath(p or '.') != osp.dirname(
        osp.abspath(__file__))]

COLLECTIVE_ERROR = 'CollectiveError'
LAUNCHER_ENV = 'RESNEXT_DET_DIST_LAUNCH'  # set for the workers: this launcher reports failures
# how a collective failing because of another rank reads, per backend (gloo's own messages;
# nccl and the c10d store raise torch.distributed.DistError subclasses)
_COLLECTIVE_PATTERNS = ('Timed out waiting', 'Connection closed by peer',
                        'Connection reset by peer', 'Broken pipe', 'gloo/transport')


def collective_failure(exc: BaseException) -> Optional[str]:
    """The gist of ``exc`` if it is a collective operation failing (another rank died, hung or
    stopped, so this one timed out or lost the connection) in an initialized process group;
    None for any other error."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return None
    text = str(exc).strip()
    dist_error = getattr(dist, 'DistError', ())
    if not (isinstance(exc, dist_error) or (isinstance(exc, RuntimeError) and any(
            p in text for p in _COLLECTIVE_PATTERNS))):
        return None
    line = text.splitlines()[0] if text else type(exc).__name__
    if line.startswith('[') and '] ' in line:  # gloo's "[/path/to/file.cc:78] " prefix
        line = line.split('] ', 1)[1]
    return line.split('. This is typically')[0].strip()


def record_collective_failure(message: str) -> bool:
    """Tell the launcher that this rank stopped because a collective failed (so it is not the
    rank to blame): the error file torchrun gives each worker, in torchelastic's format.

    True when this launcher runs the job and will print the job's line (the rank need not
    print one of its own), False otherwise."""
    import json
    path = os.environ.get('TORCHELASTIC_ERROR_FILE')
    if not path:
        return False
    text = f'{COLLECTIVE_ERROR}: {message}'  # py_callstack: what torchrun's report shows
    data = dict(message=dict(message=text,
                             extraInfo=dict(py_callstack=text, timestamp=str(int(time.time())))))
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(data, f)
    except OSError:
        return False  # the launcher then names this rank's exit code instead
    return os.environ.get(LAUNCHER_ENV) == '1'


def exit_on_collective_failure(exc: BaseException, what: str) -> None:
    """End this rank at once if ``exc`` is a collective failing because another rank died, hung
    or was stopped (it gave up after ``env_cfg.dist_cfg.timeout``); return for any other error,
    which the caller re-raises. ``what`` names the work that stopped ('training', 'evaluation').

    Under tools/dist_*.sh the launcher's last line names the rank to blame: this rank records
    that it only gave up (its error file) and logs it; otherwise it prints an ``error:`` line.
    Either way it ends with ``os._exit(2)``: the process group is broken, and its teardown
    would wait on the dead or stopped rank."""
    gist = collective_failure(exc)
    if gist is None:
        return
    import logging

    from mmengine.dist import get_rank
    from mmengine.logging import print_log
    message = (f'rank {get_rank()}: a collective operation failed ({gist}): another rank died '
               f'or stopped answering; {what} stopped')
    try:
        if record_collective_failure(gist):
            print_log(message, logger='current', level=logging.WARNING)
        else:
            print(f'error: {message}', file=sys.stderr)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)


def _proc_stat(pid: int) -> Optional[Tuple[str, int]]:
    """(state, ppid) from /proc/PID/stat; None if the process is gone."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        return fields[0].decode(), int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


class WorkerWatch(threading.Thread):
    """Follows this process's children (torchrun's workers): when each ended, with which
    status, and kills stopped ones once a worker has failed."""

    def __init__(self, expected: Optional[int] = None, poll_s: float = 0.2) -> None:
        super().__init__(name='resnext_det-worker-watch', daemon=True)
        self.expected = expected  # workers per attempt: /proc is scanned rarely once all are in
        self.poll_s = poll_s
        self.ended: Dict[int, float] = {}  # pid -> time.monotonic() when seen ended
        self.status: Dict[int, Optional[int]] = {}  # pid -> exit code, -signal; None: unknown
        self.killed_stopped: Dict[int, str] = {}  # pid -> state it was in ('T': stopped)
        self.failed_at: Optional[float] = None
        self._fds: Dict[int, int] = {}
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.usable = hasattr(os, 'pidfd_open') and osp.isdir('/proc/self')

    def _children(self) -> List[int]:
        me = os.getpid()
        pids = []
        for name in os.listdir('/proc'):
            if name.isdigit() and int(name) not in self._fds and int(name) not in self.ended:
                stat = _proc_stat(int(name))
                if stat and stat[1] == me:
                    pids.append(int(name))
        return pids

    def _exit_status(self, fd: int) -> Optional[int]:
        try:  # WNOWAIT: leave the zombie for torchrun's agent to reap
            info = os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except (OSError, AttributeError):
            return None  # already reaped by the agent
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def _on_end(self, pid: int, fd: int, now: float) -> None:
        status = self._exit_status(fd)
        with self._lock:
            self.ended[pid] = now
            self.status[pid] = status
        if status != 0 and self.failed_at is None:
            self.failed_at = now

    def kill_stopped(self, everyone: bool = False) -> None:
        """SIGKILL the stopped workers (all remaining ones if ``everyone``), with their
        process groups (torchrun starts each worker in its own session)."""
        for pid in list(self._fds):
            if pid in self.ended or pid in self.killed_stopped:
                continue
            stat = _proc_stat(pid)
            if stat is None or stat[0] in 'ZX' or stat[1] != os.getpid():
                continue
            if everyone or stat[0] in 'Tt':
                self.killed_stopped[pid] = stat[0]
                try:
                    if os.getpgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def kill_groups(self) -> None:
        """SIGKILL what is left of the workers' process groups (each worker leads its own):
        their data loader workers, orphaned when a worker was killed or ended with os._exit,
        would otherwise linger until they notice. Only for a job that has failed, and only
        for workers that ended just now (a long-gone one's pid may lead another group)."""
        now = time.monotonic()
        for pid in self._fds:
            if now - self.ended.get(pid, now) > 60:
                continue
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass  # the group is empty

    def run(self) -> None:
        poller = select.poll()
        by_fd: Dict[int, int] = {}
        scanned = 0.0
        while not self._done.is_set():
            complete = self.expected is not None and len(by_fd) >= self.expected
            if complete and time.monotonic() - scanned < 5:
                children = []  # all workers followed: a pidfd wakes the poll when one ends
            else:
                children, scanned = self._children(), time.monotonic()
            for pid in children:
                try:
                    fd = os.pidfd_open(pid)
                except OSError:
                    continue
                if (_proc_stat(pid) or ('', 0))[1] != os.getpid():  # the pid was reused
                    os.close(fd)
                    continue
                self._fds[pid] = fd
                by_fd[fd] = pid
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(self.poll_s * 1000):
                pid = by_fd.pop(fd)
                self._on_end(pid, fd, time.monotonic())
                poller.unregister(fd)
            if self.failed_at is not None:
                self.kill_stopped()
        for pid, fd in self._fds.items():
            try:
                os.close(fd)
            except OSError:
                pass

    def stop(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join(timeout=5)


class Failure:
    """One failed rank, as torchrun reports it, plus what the watcher saw."""

    def __init__(self, rank: int, pid: int, exitcode: int, message: str = '',
                 ended: Optional[float] = None, stopped: Optional[str] = None) -> None:
        self.rank, self.pid, self.exitcode, self.message = rank, pid, exitcode, message or ''
        self.ended, self.stopped = ended, stopped

    @property
    def collective(self) -> bool:  # it gave up because of another rank
        return self.message.startswith(COLLECTIVE_ERROR)

    def describe(self) -> str:
        if self.exitcode < 0:
            try:
                name = signal.Signals(-self.exitcode).name
            except ValueError:
                name = f'signal {-self.exitcode}'
            return f'was killed by {name}'
        return f'exited with code {self.exitcode}'


def _timeout_text(timeout_s) -> str:
    if timeout_s is None:
        return 'the collective timeout (env_cfg.dist_cfg.timeout)'
    return f'the {timeout_s:g} s collective timeout (env_cfg.dist_cfg.timeout)'


def _stopped_text(state: Optional[str]) -> Optional[str]:
    return {'T': 'was stopped (SIGSTOP/SIGTSTP)', 't': 'was stopped by a debugger'}.get(state)


def blame(failures: List[Failure], timeout_s=None) -> str:
    """Which rank(s) to name and why, from torchrun's failures and what the watcher saw.

    The rank that ended first is the cause, unless it only gave up on a collective (its error
    file says so) or another rank was found stopped: then the cause is the ranks that were
    stopped, else those still running then, which did not answer in time.
    """
    if not failures:
        return 'the job failed'
    by_rank = sorted(failures, key=lambda f: f.rank)
    if all(f.ended is not None for f in failures):
        first = min(failures, key=lambda f: (f.ended, f.collective, f.rank))
    else:  # no timing: a rank that failed on its own (not SIGTERM'd by torchrun's agent)
        first = min(by_rank, key=lambda f: (f.collective, f.stopped is not None,
                                            f.exitcode == -signal.SIGTERM, f.rank))
    stopped = [f for f in by_rank if _stopped_text(f.stopped) and f is not first]
    if not (first.collective or (stopped and first.exitcode > 0)):
        text = f'rank {first.rank} (pid {first.pid}) {first.describe()}'
        return text + (' (its error is above)' if first.exitcode > 0 else '')
    # the first rank to end gave up waiting: name the ones it waited for
    culprits = stopped or [f for f in by_rank if not f.collective and f is not first and (
        first.ended is None or f.ended is None or f.ended > first.ended)]
    gave_up = [f for f in by_rank if f.collective] or [first]
    reason = (first.message[len(COLLECTIVE_ERROR) + 2:] if first.collective
              else first.describe())
    waited = f'{", ".join(f"rank {f.rank}" for f in gave_up)} gave up: {reason}'
    if not culprits:
        return (f'rank {first.rank} (pid {first.pid}) {first.describe()}: a collective failed '
                f'({reason}); the rank it waited for did not fail here (on another node?)')
    parts = []
    for f in culprits:
        what = _stopped_text(f.stopped) or 'hung'
        if _stopped_text(f.stopped):
            stop = 'it was killed'
        elif f.exitcode in (-signal.SIGTERM, -signal.SIGKILL):  # torchrun's agent ended it
            stop = 'it was terminated'
        else:
            stop = f'then it {f.describe()}'
        parts.append(f'rank {f.rank} (pid {f.pid}) {what} and did not answer within '
                     f'{_timeout_text(timeout_s)}; {stop}')
    return '; '.join(parts) + f' ({waited})'


def _script_args(script_args: List[str]):
    """config, --work-dir, --cfg-options of a tools/train.py command line."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args, _ = parser.parse_known_args(script_args)
    return args


def _without_resume(args: List[str]) -> List[str]:
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a == '--resume':
            skip = i + 1 < len(args) and not args[i + 1].startswith('-')
            continue
        if a.startswith('--resume='):
            continue
        out.append(a)
    return out


def _without_launcher(args: List[str]) -> List[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == '--launcher':
            skip = True
        elif not a.startswith('--launcher='):
            out.append(a)
    return out


def _display(path: str) -> str:
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


class JobContext(threading.Thread):
    """What the summary line takes from the job's config: the work dir (mmdet's rule, through
    ``load_config``) and the collective timeout. Reading it imports mmdet (seconds), so it is
    read in the background while the job runs, at a lower priority than the workers, and a
    failure is reported at once."""

    def __init__(self, script: str, script_args: List[str], nproc) -> None:
        super().__init__(name='resnext_det-job-context', daemon=True)
        self.script, self.script_args, self.nproc = script, list(script_args), nproc
        self.kind = {'train.py': 'train', 'test.py': 'test'}.get(osp.basename(script))
        self.timeout: Optional[float] = None
        self.work_dir: Optional[str] = None
        self.problem = ''

    def run(self) -> None:
        try:  # this thread only (Linux threads have their own nice value)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        try:
            self._read()
        except SystemExit as e:  # load_config's user errors are the workers' to report
            self.problem = f'the config cannot be read: {e}'
        except Exception as e:  # the summary line must come out whatever the config does
            self.problem = f'the config cannot be read: {type(e).__name__}: {e}'

    def _read(self) -> None:
        if self.kind is None or not self.script_args:
            return
        from resnext_det.engine import UserInputError, load_config
        from resnext_det.engine.launch import dist_timeout
        try:
            if self.kind == 'train':
                args = _script_args(self.script_args)
                cfg = load_config(args.config, args.cfg_options, 'pytorch', args.work_dir)
                self.work_dir = cfg.work_dir
            else:
                cfg = load_config(self.script_args[0], None, 'pytorch')
        except UserInputError as e:
            self.problem = str(e)
            return
        try:
            timeout = dist_timeout(cfg)
        except UserInputError:
            return  # the workers report a bad timeout themselves
        self.timeout = None if timeout is None else timeout.total_seconds()

    def _rerun(self, resume: bool = True) -> str:
        """The tools/dist_*.sh command of this job; for training with ``--resume`` (from the
        latest complete checkpoint, the one the line names) in place of any given."""
        tools = osp.dirname(self.script)
        if self.kind == 'train':
            args = _without_launcher(self.script_args[1:])
            return shlex.join(['bash', _display(osp.join(tools, 'dist_train.sh')),
                               self.script_args[0], str(self.nproc),
                               *(_without_resume(args) + ['--resume'] if resume else args)])
        return shlex.join(['bash', _display(osp.join(tools, 'dist_test.sh')),
                           *self.script_args[:2], str(self.nproc),
                           *_without_launcher(self.script_args[2:])])

    def next_step(self) -> str:
        """What the user does now: for training, the checkpoint to resume from and how."""
        if self.kind is None or not self.script_args:
            return ''
        if self.ident is None:  # never started
            self.run()
        else:
            self.join(timeout=300)
        if self.kind == 'test':
            return f'evaluation stopped; rerun: {self._rerun()}'
        if self.work_dir is None:
            return f'{self.problem}; then rerun: {self._rerun(resume=False)}'
        from resnext_det.engine import latest_complete_checkpoint
        last = latest_complete_checkpoint(self.work_dir)
        if last is None:
            return (f'no complete checkpoint in {self.work_dir} yet; rerun: '
                    f'{self._rerun(resume=False)}')
        return f'resume from the last complete checkpoint: {last} with: {self._rerun()}'


def summary_line(failures: List[Failure], context: JobContext) -> str:
    next_step = context.next_step()
    line = f'error: {blame(failures, context.timeout)}'
    return f'{line}; {next_step}' if next_step else line


def _message(message) -> str:
    """A failure's message: torchelastic's error file holds {'message': ..., 'extraInfo': ...}."""
    if isinstance(message, dict):
        message = message.get('message', '')
    return message if isinstance(message, str) else ''


def main(argv=None) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run
    try:
        from torch.distributed.elastic.multiprocessing.api import SignalException
    except ImportError:  # pragma: no cover (older torch)
        SignalException = KeyboardInterrupt
    import warnings

    # setuptools deprecates pkg_resources, which mmengine imports (for the summary line)
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)
    args = get_args_parser().parse_args(argv)
    os.environ[LAUNCHER_ENV] = '1'  # the workers inherit it
    nproc = str(args.nproc_per_node)
    watch = WorkerWatch(int(nproc) if nproc.isdigit() else None)
    if watch.usable:
        watch.start()
    context = JobContext(args.training_script, args.training_script_args, args.nproc_per_node)
    context.start()
    try:
        run(args)
    except ChildFailedError as e:
        watch.stop()
        watch.kill_stopped(everyone=True)  # nothing of a failed job may linger
        watch.kill_groups()
        failures = [
            Failure(rank, f.pid, f.exitcode, _message(f.message), ended=watch.ended.get(f.pid),
                    stopped=watch.killed_stopped.get(f.pid))
            for rank, f in e.failures.items()]
        print(str(e).strip('\n'), file=sys.stderr)  # torchrun's own report
        print(summary_line(failures, context), file=sys.stderr, flush=True)
        return 1
    except SignalException as e:
        watch.stop()
        watch.kill_stopped(everyone=True)
        watch.kill_groups()
        sigval = getattr(e, 'sigval', signal.SIGINT)
        next_step = context.next_step()
        print(f'error: the launcher received {signal.Signals(sigval).name}; the workers were '
              f'stopped{"; " + next_step if next_step else ""}', file=sys.stderr, flush=True)
        return 128 + int(sigval)
    finally:
        watch.stop()
    return 0


def _exit(code: int) -> None:
    """End now: a failed job is over once its line is printed; the interpreter's teardown of
    torch and mmdet would add seconds before the shell sees the status."""
    import logging
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        os._exit(code)
    sys.exit(code)


if __name__ == '__main__':
    _exit(main())
