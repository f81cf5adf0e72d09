"""tools/benchmark.py --profile (analysis_tools/step_profile.py): the stage ranges account for a
detector step's time and leave the model as they found it; the report and its tables. No speed
is asserted. The GPU-only parts (device busy time, device-time ranking) are checked on
hand-made events."""
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from analysis_tools import detector_benchmark
from analysis_tools.detector_benchmark import (
    Case,
    Result,
    Variant,
    build_cases,
    inputs_for,
    load_variant_config,
)
from analysis_tools.step_profile import (
    CATEGORIES,
    METHOD_STAGES,
    MODULE_STAGES,
    OPTIM_STAGES,
    RANGE_PREFIX,
    StepProfiler,
    device_busy_us,
    markdown,
    profile_case,
    top_ops,
)
from model_testing import SMALL_ROI_SAMPLE  # tests/, on sys.path under pytest
from torch.autograd import DeviceType
from torch.profiler import record_function

ROOT = Path(__file__).resolve().parents[2]
FORWARD = ('data_preprocessor', 'backbone', 'neck', 'rpn_head', 'roi_head')


@pytest.fixture(scope='module')
def small_faster(tmp_path_factory):
    path = tmp_path_factory.mktemp('configs') / 'faster_small.py'
    path.write_text(f"_base_ = '{ROOT / 'configs' / 'faster_rcnn_r101_fpn.py'}'"
                    + SMALL_ROI_SAMPLE)
    return str(path)


def assert_no_ranges_left(model, optim_wrapper=None):
    for name in MODULE_STAGES:
        module = getattr(model, name)
        assert not module._forward_hooks and not module._forward_pre_hooks, name
    owners = [(getattr(model, name), methods) for name, methods in METHOD_STAGES]
    owners += [(optim_wrapper, methods) for _, methods in OPTIM_STAGES] if optim_wrapper else []
    for owner, methods in owners:
        assert not set(methods) & set(vars(owner)), owner  # the class's methods again


def assert_accounted(report):
    stages = report['stages_ms']
    assert all(ms >= 0 for ms in stages.values())
    # the ranges nest in none other and lie inside the step (a stage counted twice, or a
    # warm-up step's time kept, would break this)
    assert sum(ms for name, ms in stages.items() if name != 'other') <= report['wall_ms'] * 1.01
    assert stages['other'] == pytest.approx(
        report['wall_ms'] - sum(ms for name, ms in stages.items() if name != 'other'), abs=1e-6)


def test_a_detectors_train_and_inference_steps_by_stage(small_faster):
    detector_benchmark.setup()
    variant = Variant('ours', small_faster)
    cfg = load_variant_config(variant, depth=50)
    batch, _ = inputs_for('detector', cfg, 1, 96, 128, 'cpu')
    result = Result('r50', 'ours', 'fp32', '')
    cases = {name: Case(result, step, prepare, resident, False, **profiled)
             for name, (step, prepare, resident, profiled) in build_cases(
                 cfg, variant, 'detector', batch, None, 'cpu', ('train', 'infer')).items()}
    train = profile_case(cases['detector_train'], 'cpu', steps=1, warmup=0)
    infer = profile_case(cases['detector_infer'], 'cpu', steps=1, warmup=0)
    assert list(train['stages_ms']) == list(CATEGORIES)
    assert list(infer['stages_ms']) == [c for c in CATEGORIES
                                        if c not in ('backward', 'optimizer step')]
    for report in train, infer:
        assert report['steps'] == 1 and 'device_busy_ms' not in report  # CPU: no device rows
        assert_accounted(report)
        assert min(report['stages_ms'][name] for name in FORWARD) > 0  # every range was hit
        ops = report['top_ops']
        assert 0 < len(ops) <= 15 and ops[0]['calls'] >= 1
        assert [op['self_cpu_ms'] for op in ops] == sorted(
            (op['self_cpu_ms'] for op in ops), reverse=True)
        assert not any(op['name'].startswith(RANGE_PREFIX) for op in ops)
    assert train['stages_ms']['backward'] > 0 and train['stages_ms']['optimizer step'] > 0
    assert_no_ranges_left(cases['detector_train'].model, cases['detector_train'].optim_wrapper)


class Sleep(torch.nn.Module):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x


class Head:
    """A head as mmdet calls it: through its methods, not ``__call__``."""

    def loss(self, x):
        time.sleep(0.05)
        return x

    def predict(self, x):
        return self.loss(x)  # a stage re-entered from inside itself: counted once


class ToyDetector(torch.nn.Module):
    def __init__(self, fail=False):
        super().__init__()
        self.data_preprocessor, self.backbone, self.neck = Sleep(0), Sleep(0.02), Sleep(0.01)
        self.roi_head, self.fail = Head(), fail  # no rpn_head: its category is left out

    def step(self):
        x = self.neck(self.backbone(self.data_preprocessor(torch.zeros(1))))
        if self.fail:
            raise RuntimeError('step failed')
        self.roi_head.predict(x)


def test_ranges_time_their_stage_once_and_are_removed_after_a_failure():
    model = ToyDetector()
    case = SimpleNamespace(model=model, optim_wrapper=None, step=model.step,
                           prepare=model.eval, cudnn_benchmark=False)
    report = profile_case(case, 'cpu', steps=2, warmup=1)
    stages = report['stages_ms']
    assert list(stages) == ['data_preprocessor', 'backbone', 'neck', 'roi_head', 'other']
    assert stages['backbone'] >= 20 and stages['neck'] >= 10
    assert 50 <= stages['roi_head'] < 90  # once per step, not twice
    assert_accounted(report)
    assert not model.backbone._forward_hooks and 'predict' not in vars(model.roi_head)
    failing = ToyDetector(fail=True)
    case = SimpleNamespace(model=failing, optim_wrapper=None, step=failing.step,
                           prepare=failing.eval, cudnn_benchmark=False)
    with pytest.raises(RuntimeError, match='step failed'):
        profile_case(case, 'cpu', steps=1, warmup=0)
    for module in (failing.data_preprocessor, failing.backbone, failing.neck):
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert not {'loss', 'predict'} & set(vars(failing.roi_head))


def event(name, device, start, end, annotation=False):
    return SimpleNamespace(name=name, device_type=device, is_user_annotation=annotation,
                           time_range=SimpleNamespace(start=start, end=end))


def test_device_busy_time_is_the_union_of_kernels_and_copies():
    cpu, cuda = DeviceType.CPU, DeviceType.CUDA
    events = [
        event('aten::conv2d', cpu, 0, 30), event('stage/backbone', cpu, 0, 100),
        event('kernel a', cuda, 10, 40), event('kernel b', cuda, 30, 50),  # two streams overlap
        event('kernel c', cuda, 35, 45),  # inside a and b
        event('Memcpy HtoD', cuda, 60, 70),
        # the device's copy of a host range (named like it, or flagged): no work
        event('stage/backbone', cuda, 5, 95), event('ProfilerStep', cuda, 0, 99, annotation=True)]
    assert device_busy_us(events) == 40 + 10
    assert device_busy_us([e for e in events if e.device_type == cpu]) is None  # not traced


def test_top_ops_by_device_time_leave_out_the_ranges():
    a = torch.randn(64, 64)
    with torch.profiler.profile() as prof:
        with record_function(RANGE_PREFIX + 'backbone'):
            for _ in range(4):
                a.mm(a)
    ops = top_ops(prof.key_averages(), 'cuda', steps=2)
    mm = next(op for op in ops if op['name'] == 'aten::mm')
    assert mm['calls'] == 2 and mm['self_cpu_ms'] > 0 and mm['self_device_ms'] == 0  # CPU run
    assert not any(op['name'].startswith(RANGE_PREFIX) for op in ops)
    assert device_busy_us(prof.events()) is None  # the real events' fields; no device here


def test_markdown_has_device_rows_on_a_gpu_only():
    def report(variant, device_busy=None, optimizer=True):
        stages = dict(backbone=30.0, roi_head=20.0, backward=40.0)
        if optimizer:
            stages['optimizer step'] = 5.0
        stages['other'] = 5.0
        out = dict(arch='x50_32x4d', variant=variant, case='detector_train', steps=3,
                   wall_ms=100.0, timed_ms=90.0, stages_ms=stages)
        if device_busy is not None:
            out['device_busy_ms'] = device_busy
        return out

    gpu = markdown([report('stock', 60.0), report('fast', 25.0, optimizer=False)])
    assert gpu.startswith('Profile of x50_32x4d detector_train: ms per step')
    assert '| category | stock | fast |' in gpu and '| backbone | 30.0 (30%) | 30.0 (30%) |' in gpu
    assert '| optimizer step | 5.0 (5%) | - |' in gpu and '| neck |' not in gpu
    assert '| GPU busy (kernels, copies) | 60.0 (60%) | 25.0 (25%) |' in gpu
    assert '| GPU idle (waiting on the host) | 40.0 (40%) | 75.0 (75%) |' in gpu
    assert '| timed step (median, no profiler) | 90.0 | 90.0 |' in gpu
    untraced = markdown([dict(report('stock'), device_busy_ms=None)])  # CUPTI missing
    assert '| GPU busy (kernels, copies) | - |' in untraced
    assert '| GPU idle (waiting on the host) | - |' in untraced
    cpu = markdown([report('stock'), dict(report('stock'), case='detector_infer')])
    assert 'GPU' not in cpu and cpu.count('Profile of x50_32x4d') == 2


def test_cli_profile_tables_json_and_traces(small_faster, tmp_path, capsys, monkeypatch,
                                            benchmark_cli):
    cli = benchmark_cli
    monkeypatch.setattr(cli, 'config_paths', lambda arch: (small_faster, small_faster, None))
    out, md, traces = tmp_path / 'bench.json', tmp_path / 'bench.md', tmp_path / 'traces'
    cli.main(['--ci', '--device', 'cpu', '--archs', 'r101', '--parts', 'detector',
              '--variants', 'ours', '--size', '96', '128', '--iters', '1', '--warmup', '0',
              '--profile', '--profile-steps', '1', '--profile-trace', str(traces),
              '--out', str(out), '--md', str(md)])
    report = json.loads(out.read_text())
    assert set(report) == {'settings', 'summary', 'results', 'profile'}
    assert report['settings']['profile'] is True
    profiles = {p['case']: p for p in report['profile']}
    assert list(profiles) == ['detector_train', 'detector_infer']
    raw, = report['results']
    for case, profile in profiles.items():
        assert (profile['arch'], profile['variant'], profile['steps']) == ('r50', 'ours', 1)
        assert profile['timed_ms'] == raw['times_ms'][case][0]  # the timed step, not a profiled
        assert_accounted(profile)  # after a warm-up step with the ranges in: not counted
        trace = Path(profile['trace'])
        assert trace.parent == traces and trace.name == f'r50_ours_{case}.json'
        assert '"stage/backbone"' in trace.read_text()
    assert profiles['detector_train']['stages_ms']['backward'] > 0
    assert 'backward' not in profiles['detector_infer']['stages_ms']
    printed, written = capsys.readouterr().out, md.read_text()
    for text in printed, written:
        assert 'detector train step (ms)' in text  # the main table first
        assert '| category | ours |' in text and '| backward |' in text
        assert 'Profile of r50 detector_infer' in text


def test_profile_runs_in_process_only(capsys, benchmark_cli):
    cli = benchmark_cli
    with pytest.raises(SystemExit):
        cli.parse_args(['--profile', '--isolate'])
    assert 'drop --isolate' in capsys.readouterr().err
    assert cli.parse_args(['--cpu-full', '--profile']).isolate is False  # the preset's only
    with pytest.raises(SystemExit):
        cli.parse_args(['--profile-trace', 'traces'])
    with pytest.raises(ValueError, match='in this process only'):
        detector_benchmark.run({'r101': cli.config_paths('r101')}, isolate=True,
                               profiler=StepProfiler('cpu'), log=lambda msg: None)
