"""The GPU checks of a lent GPU machine, in one call: every step a project CLI under a time limit,
in priority order, within one time budget, the results gathered in one folder.

    # here, on a machine that reaches PyPI: what the bare GPU machine lacks, into .devicebundle/
    EXTRA_WHEELS="$(python tools/gpu_checks.py --bundle-wheels)" bash ../shared/gpu/prep.sh
    # there (device tool, carry .devicebundle): build mmcv's CUDA ops, then the checks
    source .devicebundle/setup.sh && python3 tools/gpu_checks.py [--steps ...] [--budget 540]

    python tools/gpu_checks.py --dry-run             # the commands, nothing run
    python tools/gpu_checks.py --device cpu --steps dist trainer   # a rehearsal on the CPU

Steps (default: all, in this order; a step that no longer fits the budget is skipped):
  env         tools/collect_env.py and nvidia-smi
  cuda_tests  pytest -m cuda (tests/cuda; junit XML). On --device cpu the dry run of their logic
  benchmark   tools/benchmark.py --profile: stock mmdet against ours, fp32, AMP and the fast
              path, batch 2 of 800x1216, with the profile breakdown (--ci size on the CPU)
  dist        tools/dist_train.sh with one process on NCCL: the demo classifier with SyncBN for 2
              epochs, then --resume to a third; the two runs' logs (on the CPU: gloo and plain
              BN, as DDP takes SyncBN on GPU modules only)
  trainer     the companion trainer's img/s at 224x224 (generated ImageNet-format crops of the
              demo's shapes), from its per-iteration times: JPEGs decoded by the CPU workers,
              then on the device (DeviceDecodePreprocessor: nvjpeg on a GPU)
  fast_seeds  tools/demo.py --seeds 0,1,2 --fast: the demo detector on the fast path against
              the plain path, paired over 3 seeds

Results go to --out (default: $OUT, the device tool's folder that comes back, else
work_dirs/gpu_checks): summary.md and summary.json (rewritten after every step, so a run cut off
still reports what it finished), each step's log and its small outputs; trainings write their
checkpoints under work_dirs/gpu_checks/ (large files stay on the machine).

What one GPU cannot check: a rank dying on NCCL needs two ranks, and NCCL refuses two ranks on
one GPU ("Duplicate GPU detected"); the CPU tests cover the rank-death line on gloo.
"""
import argparse
import contextlib
import glob
import json
import os
import os.path as osp
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STEPS = ('env', 'cuda_tests', 'benchmark', 'dist', 'trainer', 'fast_seeds')
# seconds each step may take at most on the GPU, and the least it needs to be worth starting
LIMITS = dict(env=60, cuda_tests=300, benchmark=360, dist=180, trainer=240, fast_seeds=900)
NEEDS = dict(env=10, cuda_tests=60, benchmark=120, dist=60, trainer=60, fast_seeds=300)
# what a bare GPU machine (Python and torch only) lacks beyond mmdet's stack
# (../shared/gpu/prep.sh): the package's own requirements, and pytest with its requirements
# on Python 3.12 (prep.sh downloads without dependencies)
BUNDLE_WHEELS = ('simplejpeg', 'scipy', 'faster-coco-eval', 'pytest', 'pluggy', 'iniconfig',
                 'packaging', 'pygments')
CLS_CONFIG = 'configs/demo/resnext50_8x4d_slim_cls_demo.py'
TRAINER_CONFIG = 'configs/imagenet/resnext50_32x4d_8xb32_in1k.py'
DRY_RUN = False


class Step:
    """One step's commands run in order, stopping at the first failure; its log and result."""

    def __init__(self, name, out, work, device, deadline):
        self.name, self.out, self.work, self.device = name, out, work, device
        self.deadline = deadline
        self.log = osp.join(out, f'{name}.log')
        self.results = {}

    def run(self, *cmd, env=None):
        limit = min(LIMITS[self.name], self.deadline - time.time())
        line = ' '.join(cmd)
        print(f'==> {self.name}: {line}', flush=True)
        if DRY_RUN:
            return
        with open(self.log, 'a') as log:
            log.write(f'$ {line}\n')
            log.flush()
            # a session of its own: on a time-out the whole tree goes (torchrun's ranks, data
            # loader workers), not only the child, so nothing holds the GPU for the next step
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, **(env or {})), start_new_session=True)
            try:
                returncode = proc.wait(timeout=max(limit, 1))
            except subprocess.TimeoutExpired:
                end_process_group(proc)
                raise StepError(f'timed out after {limit:.0f} s: {line}') from None
        if returncode:
            raise StepError(f'exit {returncode}: {line} (log: {self.log})')

    def keep(self, path):
        """Copy a small output file into the results folder."""
        name = osp.basename(path)
        if not name.startswith(self.name):
            name = f'{self.name}_{name}'
        if not DRY_RUN and osp.isfile(path):
            shutil.copy(path, osp.join(self.out, name))


class StepError(Exception):
    pass


def end_process_group(proc, grace_s=10):
    """SIGTERM to ``proc``'s process group, then SIGKILL to whatever of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):  # the rest of the group, leader gone or not
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def python(*args):
    return (sys.executable, *args)


def step_env(step):
    step.run(*python('tools/collect_env.py'))
    if shutil.which('nvidia-smi'):
        step.run('nvidia-smi')


def junit_counts(path):
    """The tests, failures, errors and skipped of pytest's JUnit XML report."""
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    suite = root if root.tag == 'testsuite' else root.find('testsuite')
    return {key: int(suite.get(key, 0)) for key in ('tests', 'failures', 'errors', 'skipped')}


def step_cuda_tests(step):
    env = {} if step.device == 'cuda' else {'RESNEXT_DET_CUDA_TESTS_ON': 'cpu'}
    report = osp.join(step.out, 'cuda_tests.xml')
    try:
        step.run(*python('-m', 'pytest', 'tests/cuda', '-m', 'cuda', '-q', '-rA',
                         '-p', 'no:cacheprovider', f'--junitxml={report}'), env=env)
    finally:  # the counts of a run with failures too
        if not DRY_RUN and osp.isfile(report):
            step.results.update(junit_counts(report))


# the GPU issue's targets for the fast path against stock mmdet fp32 (one GPU, batch 2,
# 800x1216): the least speed-ups, and the most for the step-time ratio and for the
# peak training memory over stock's
AT_LEAST = dict(backbone_train_speedup=3.0, detector_train_speedup=2.0,
                detector_infer_speedup=1.5)
AT_MOST = dict(x_over_r_detector_train=1.0, peak_memory_over_stock=1.0)


def fast_path_targets(summary):
    """The fast variant's figures for the targets from tools/benchmark.py's JSON summary, each
    as [value, met] (None where the run has no such figure, e.g. memory on a CPU):
    {arch: {target: [value, met]}, 'X / R': {'x_over_r_detector_train': [value, met]}}."""
    def judged(values):
        return {key: [value, None if value is None else
                      value >= AT_LEAST[key] if key in AT_LEAST else value <= AT_MOST[key]]
                for key, value in values.items()}

    rows = {(r['arch'], r['variant']): r for r in summary['rows']}
    out = {}
    for (arch, variant), row in rows.items():
        if variant != 'fast':
            continue
        peak, stock_peak = (r.get('detector_train_peak_mb')
                            for r in (row, rows.get((arch, 'stock'), {})))
        out[arch] = judged(dict({key: row.get(key) for key in AT_LEAST},
                                peak_memory_over_stock=peak / stock_peak
                                if peak and stock_peak else None))
    for ratio in summary.get('x_over_r', []):
        if ratio['variant'] == 'fast':
            out[ratio['pair']] = judged(dict(x_over_r_detector_train=ratio['detector_train']))
    return out


def step_benchmark(step):
    size = ['--ci'] if step.device == 'cpu' else []
    report = osp.join(step.out, 'benchmark.json')
    step.run(*python('tools/benchmark.py', '--device', step.device, *size, '--profile',
                     '--out', report, '--md', osp.join(step.out, 'benchmark.md')))
    if not DRY_RUN:
        with open(report) as f:
            step.results.update(fast_path_targets(json.load(f)['summary']))


def step_dist(step):
    """A run and a resume on the device's own backend (one process): SyncBN, checkpoints."""
    work_dir = osp.join(step.work, 'dist_cls')
    if not DRY_RUN:
        shutil.rmtree(work_dir, ignore_errors=True)
    if step.device == 'cuda':  # the demo's data (fast_seeds trains on it too)
        data = osp.join('data', 'demo')
        step.run(*python('tools/make_demo_data.py', '--out', data))
    else:  # a few crops: the rehearsal checks the steps, not the training
        data = osp.join('data', 'demo_rehearsal')
        step.run(*python('tools/make_demo_data.py', '--out', data, '--cls-per-class', '4',
                         '--num-train', '20', '--num-val', '10', '--overwrite'))
    options = [f'train_dataloader.dataset.data_root={data}/imagenet/train',
               f'val_dataloader.dataset.data_root={data}/imagenet/val',
               'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
               'default_hooks.checkpoint.max_keep_ckpts=-1']
    if step.device == 'cuda':  # DDP takes SyncBatchNorm layers on GPU modules only
        options.insert(0, 'model.backbone.norm_cfg.type=SyncBN')
    train = ('bash', 'tools/dist_train.sh', CLS_CONFIG, '1', '--work-dir', work_dir)
    env = dict(PYTHON=sys.executable)
    step.run(*train, '--cfg-options', 'train_cfg.max_epochs=2', *options, env=env)
    step.run(*train, '--resume', '--cfg-options', 'train_cfg.max_epochs=3', *options, env=env)
    if DRY_RUN:
        return
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    for log in logs:
        step.keep(log)
    text = ''.join(open(log).read() for log in logs)
    step.results.update(
        checkpoints=sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, 'epoch_*.pth'))),
        resumed='resumed epoch: 2' in text, syncbn="type='SyncBN'" in text,
        # mmengine's environment log of each run; on the CPU our own gloo group is in use
        distributed_runs=text.count('Distributed training: True'),
        backend='nccl' if step.device == 'cuda' else 'gloo')
    if 'epoch_3.pth' not in step.results['checkpoints'] or not step.results['resumed']:
        raise StepError(f"--resume did not go on from epoch_2.pth to epoch_3.pth: "
                        f"{step.results} (log: {step.log})")


def images_per_second(scalars_path, batch_size, skip=2):
    """The trainer's images/s from mmengine's scalars.json: the batch over the median of the
    logged per-iteration times, the first ``skip`` logged values (warm-up) left out. Also the
    median data time's share of it (the loader's wait)."""
    times, data_times = [], []
    with open(scalars_path) as f:
        for line in f:
            record = json.loads(line)
            if 'time' in record and 'data_time' in record and 'loss' in record:
                times.append(record['time'])
                data_times.append(record['data_time'])
    times, data_times = times[skip:], data_times[skip:]
    if not times:
        raise StepError(f'{scalars_path}: fewer than {skip + 1} logged training iterations')
    median, data = statistics.median_high(times), statistics.median_high(data_times)
    return dict(img_per_s=batch_size / median, s_per_iter=median, data_s_per_iter=data,
                logged_iters=len(times))


# the companion trainer's switch to decoding the training JPEGs on the model's device
# (resnext_det/models/data_preprocessor.py): the dataset's flag and the model's preprocessor
DEVICE_DECODE = ['train_dataloader.dataset.decode_on_device=True',
                 'model.data_preprocessor.type=resnext_det.DeviceDecodePreprocessor',
                 'model.data_preprocessor.mean=[123.675,116.28,103.53]',
                 'model.data_preprocessor.std=[58.395,57.12,57.375]']


def step_trainer(step):
    """The companion trainer on 224x224 crops, the ImageNet recipe's pipeline and model: its
    images/s with the JPEGs decoded by the CPU workers, then decoded on the device (nvjpeg)."""
    data = osp.join('data', 'demo224')
    gpu = step.device == 'cuda'
    # the GPU: 2,000 crops, ~60 iterations an epoch, for a steady rate (about 40 s to make);
    # the CPU rehearsal: a few iterations
    per_class, batch, workers, epochs, interval = (
        (500, 32, min(8, os.cpu_count() or 1), 3, 5) if gpu else (2, 2, 1, 2, 1))
    step.run(*python('tools/make_demo_data.py', '--out', data, '--cls-size', '224',
                     '--cls-per-class', str(per_class), '--num-train', '20', '--num-val', '10',
                     '--overwrite'))
    for decode, options in (('cpu_workers', []), ('device', DEVICE_DECODE)):
        work_dir = osp.join(step.work, f'trainer_{decode}')
        if not DRY_RUN:
            shutil.rmtree(work_dir, ignore_errors=True)
        step.run(*python('tools/train.py', TRAINER_CONFIG, '--work-dir', work_dir,
                         '--cfg-options',
                         f'train_dataloader.dataset.data_root={data}/imagenet/train',
                         f'val_dataloader.dataset.data_root={data}/imagenet/val',
                         f'test_dataloader.dataset.data_root={data}/imagenet/val',
                         f'train_dataloader.batch_size={batch}',
                         f'train_dataloader.num_workers={workers}',
                         f'train_dataloader.pin_memory={gpu}',
                         f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=100',
                         f'default_hooks.logger.interval={interval}',
                         'default_hooks.checkpoint.interval=100', *options))
        if DRY_RUN:
            continue
        scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
        shutil.copy(scalars, osp.join(step.out, f'trainer_{decode}_scalars.json'))
        step.results[f'decode_on_{decode}'] = dict(images_per_second(scalars, batch),
                                                   batch=batch, workers=workers)


def step_fast_seeds(step):
    work_dir = osp.join(step.work, 'fast_seeds')
    if step.device == 'cpu' and not DRY_RUN:  # three demo trainings per seed: hours on a CPU
        raise StepError('not rehearsed on the CPU (hours): --dry-run shows its commands')
    step.run(*python('tools/demo.py', '--seeds', '0,1,2', '--fast', '--work-dir', work_dir))
    step.keep(osp.join(work_dir, 'fast_seeds.json'))


RUNNERS = dict(env=step_env, cuda_tests=step_cuda_tests, benchmark=step_benchmark,
               dist=step_dist, trainer=step_trainer, fast_seeds=step_fast_seeds)


def write_summary(out, rows, settings):
    lines = ['| step | status | wall s | result |', '|---|---|---|---|']
    for row in rows:
        result = row.get('error') or (json.dumps(row['results']) if row['results'] else '')
        lines.append(f"| {row['step']} | {row['status']} | {row['wall_s']:.0f} | {result} |")
    table = '\n'.join(lines)
    if not DRY_RUN:
        with open(osp.join(out, 'summary.json'), 'w') as f:
            json.dump(dict(settings, steps=rows), f, indent=2)
        with open(osp.join(out, 'summary.md'), 'w') as f:
            f.write(table + '\n')
    return table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', nargs='+', choices=STEPS, default=list(STEPS),
                        help='steps to run, always in the order above (all)')
    parser.add_argument('--budget', type=float, default=540,
                        help='seconds for all steps together (540: below the device tool\'s '
                        '600 s per call)')
    parser.add_argument('--device', choices=['cuda', 'cpu'],
                        help='(cuda where torch sees one, else cpu: a rehearsal)')
    parser.add_argument('--out', help='results folder ($OUT, else work_dirs/gpu_checks)')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    parser.add_argument('--bundle-wheels', action='store_true',
                        help='print the extra wheels for ../shared/gpu/prep.sh (EXTRA_WHEELS)')
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f'--budget must be > 0 seconds, got {args.budget}')
    return args


def run_steps(args, device):
    """Run the chosen steps in order within the budget: the exit status (1: a step failed)."""
    import torch
    out = osp.abspath(args.out or os.environ.get('OUT') or osp.join('work_dirs', 'gpu_checks'))
    work = osp.join(ROOT, 'work_dirs', 'gpu_checks')
    if not DRY_RUN:
        os.makedirs(out, exist_ok=True)
        os.makedirs(work, exist_ok=True)
    start = time.time()
    deadline = start + args.budget
    settings = dict(device=device, torch=torch.__version__, budget_s=args.budget,
                    device_name=torch.cuda.get_device_name() if device == 'cuda' else 'cpu')
    rows = []
    for name in (s for s in STEPS if s in args.steps):
        step = Step(name, out, work, device, deadline)
        row = dict(step=name, status='dry run' if DRY_RUN else 'ok', wall_s=0.0,
                   results=step.results)
        left = deadline - time.time()
        if left < NEEDS[name] and not DRY_RUN:
            row.update(status='skipped', error=f'{left:.0f} s of the budget left, needs '
                       f'{NEEDS[name]} s')
        else:
            t0 = time.time()
            try:
                RUNNERS[name](step)
            except StepError as e:
                row.update(status='failed', error=str(e))
            row['wall_s'] = time.time() - t0
        rows.append(row)
        table = write_summary(out, rows, settings)
    print(f'\n{table}\n\nwall time {time.time() - start:.0f} s; results in {out}')
    return int(any(r['status'] == 'failed' for r in rows))


def main(argv=None):
    global DRY_RUN
    args = parse_args(argv)
    if args.bundle_wheels:  # at the versions requirements/constraints.txt pins, where it does
        from wheelhouse import canonical, read_pins
        pins = read_pins()
        print(' '.join(f'{name}=={pins[canonical(name)]}' if canonical(name) in pins else name
                       for name in BUNDLE_WHEELS))
        return 0
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        sys.exit('error: --device cuda: no CUDA device is visible to torch; --device cpu '
                 'rehearses the steps on the CPU')
    DRY_RUN = args.dry_run
    try:
        return run_steps(args, device)
    finally:
        DRY_RUN = False  # main() called again in the same process (tests) starts afresh


if __name__ == '__main__':
    sys.exit(main())
