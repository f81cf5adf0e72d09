"""Where a detector's step time goes (``tools/benchmark.py --profile``): a few more steps of each
detector case, run after its timed ones, under ``torch.profiler``, with a named range around
each stage of the detector.

The ranges go in from outside, the model code untouched: forward hooks on the modules the
detector calls (data preprocessor, backbone, neck), and wrappers on the methods it calls
instead of ``__call__``: the RPN head's ``loss_and_predict``/``predict`` and the RoI head's
``loss``/``predict`` (each head's forward, loss or post-processing together), and the optim
wrapper's ``backward`` and ``step``/``zero_grad`` (the backward pass runs after the forward has
returned, outside every forward range). The hooks and wrappers are removed afterwards.

Every range is device-synchronised at both ends, so that on a GPU a stage's time is the device
work it queued too and not only the host's kernel launches (the price: work of one stage no
longer overlaps the next one's launches). What no range covers is ``other``: summing the
losses, the step's Python glue and the profiler's own cost. On a GPU the profile also gives
the time some kernel or copy was running (the union over streams): the rest of the step's wall
time the GPU waited for the host.
"""
import os
import os.path as osp
import re
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, record_function

# the categories of a step, in the order of the table; 'other' is what no range covers
MODULE_STAGES = ('data_preprocessor', 'backbone', 'neck')  # called as modules: forward hooks
METHOD_STAGES = (('rpn_head', ('loss_and_predict', 'predict')), ('roi_head', ('loss', 'predict')))
OPTIM_STAGES = (('backward', ('backward',)), ('optimizer step', ('step', 'zero_grad')))
CATEGORIES = (MODULE_STAGES + tuple(name for name, _ in METHOD_STAGES)
              + tuple(name for name, _ in OPTIM_STAGES) + ('other',))
RANGE_PREFIX = 'stage/'  # the ranges' names in the profiler's events and traces
STEP_RANGE = 'profiled step'
TOP_OPS = 15


class StageRanges:
    """The named ranges of one model (and its optim wrapper, for a train step), installed on
    entering the context and removed on leaving it. ``seconds`` holds each stage's wall time,
    summed over the steps since the last ``reset``; a stage re-entered from inside itself is
    counted once."""

    def __init__(self, model: torch.nn.Module, optim_wrapper=None,
                 sync: Callable[[], None] = lambda: None):
        self.model, self.optim_wrapper, self.sync = model, optim_wrapper, sync
        self.seconds: Dict[str, float] = OrderedDict()
        self._depth: Dict[str, int] = {}
        self._open: Dict[str, tuple] = {}
        self._handles = []  # forward hook handles
        self._patched = []  # (object, method name, its own attribute of that name or None)

    def reset(self) -> None:
        for name in self.seconds:
            self.seconds[name] = 0.0

    def begin(self, name: str) -> None:
        self._depth[name] += 1
        if self._depth[name] == 1:
            self.sync()  # what the previous stage queued is its own, not this one's
            rf = record_function(RANGE_PREFIX + name)
            rf.__enter__()
            self._open[name] = (rf, time.perf_counter())

    def end(self, name: str) -> None:
        self._depth[name] -= 1
        if self._depth[name] == 0:
            self.sync()
            rf, start = self._open.pop(name)
            self.seconds[name] += time.perf_counter() - start
            rf.__exit__(None, None, None)

    def _track(self, name: str) -> None:
        self.seconds[name], self._depth[name] = 0.0, 0

    def _hook_module(self, name: str, module: torch.nn.Module) -> None:
        # torch.compiler.disable: a compiled module (the 'fast compiled' backbone) runs its
        # hooks eagerly instead of tracing them (they sync the device and read the clock)
        pre = torch.compiler.disable(lambda module, args: self.begin(name))
        post = torch.compiler.disable(lambda module, args, output: self.end(name))
        self._handles += [module.register_forward_pre_hook(pre),
                          module.register_forward_hook(post)]

    def _wrap_method(self, name: str, owner, method: str) -> None:
        original = getattr(owner, method)

        def wrapped(*args, **kwargs):
            self.begin(name)
            try:
                return original(*args, **kwargs)
            finally:
                self.end(name)

        # an instance attribute shadows the class's method until it is put back
        self._patched.append((owner, method, vars(owner).get(method)))
        setattr(owner, method, wrapped)

    def __enter__(self) -> 'StageRanges':
        try:
            for name in MODULE_STAGES:
                module = getattr(self.model, name, None)
                if module is not None:
                    self._track(name)
                    self._hook_module(name, module)
            owners = [(name, getattr(self.model, name, None), methods)
                      for name, methods in METHOD_STAGES]
            if self.optim_wrapper is not None:
                owners += [(name, self.optim_wrapper, methods) for name, methods in OPTIM_STAGES]
            for name, owner, methods in owners:
                if owner is None:
                    continue
                self._track(name)
                for method in methods:
                    if hasattr(owner, method):
                        self._wrap_method(name, owner, method)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        for owner, method, own in reversed(self._patched):
            if own is None:
                delattr(owner, method)
            else:  # the instance had an attribute of that name itself
                setattr(owner, method, own)
        self._handles, self._patched = [], []


def device_busy_us(events) -> Optional[float]:
    """Microseconds during which at least one kernel, copy or memset ran on the device, the
    union of their intervals (streams overlap); None if the profile holds no device work at all
    (the profiler could not trace the GPU: CUPTI missing). ``events``: the profiler's
    ``events()``.

    The device-side copies of host ranges (kineto's GPU user annotations, named like the
    ``record_function`` range they mirror) are not work and are left out."""
    host_names = {e.name for e in events if e.device_type == DeviceType.CPU}
    spans = sorted((e.time_range.start, e.time_range.end) for e in events
                   if e.device_type == DeviceType.CUDA
                   and not getattr(e, 'is_user_annotation', False)
                   and e.name not in host_names)
    if not spans:
        return None
    busy, end = 0.0, float('-inf')
    for start, stop in spans:
        if stop <= end:
            continue
        busy += stop - max(start, end)
        end = stop
    return busy


def top_ops(averages, device: str, steps: int, n: int = TOP_OPS) -> List[dict]:
    """The ``n`` ops (and, on a GPU, kernels) with the most self time per step, by device time
    on a GPU and by CPU time otherwise, from the profiler's ``key_averages()``; the ranges put in
    here are left out (their self time is only what their ops leave uncovered)."""
    rows = []
    for avg in averages:
        if avg.key.startswith(RANGE_PREFIX) or avg.key == STEP_RANGE:
            continue
        row = dict(name=avg.key, calls=avg.count / steps,
                   self_cpu_ms=avg.self_cpu_time_total / 1000 / steps)
        if device == 'cuda':
            row['self_device_ms'] = avg.self_device_time_total / 1000 / steps
        rows.append(row)
    key = 'self_device_ms' if device == 'cuda' else 'self_cpu_ms'
    return sorted(rows, key=lambda row: row[key], reverse=True)[:n]


def profile_case(case, device: str, steps: int = 3, warmup: int = 1,
                 trace: Optional[str] = None) -> dict:
    """Profile ``steps`` steps of a detector ``Case`` (``detector_benchmark``: its ``step``,
    ``prepare``, ``model`` and, for a train step, ``optim_wrapper``) after ``warmup`` steps
    with the ranges in but the profiler off (a compiled backbone recompiles for its new hooks).

    Returns ms per step: ``wall_ms`` (device-synchronised), ``stages_ms`` (each stage's range
    and ``other``), ``device_busy_ms`` on a GPU, and ``top_ops``; with ``trace`` the profile is
    also written there as a Chrome trace (chrome://tracing, Perfetto).
    """
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    case.prepare()
    torch.backends.cudnn.benchmark = case.cudnn_benchmark
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    walls = []
    with StageRanges(case.model, case.optim_wrapper, sync) as ranges:
        for _ in range(warmup):
            case.step()
        ranges.reset()
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(steps):
                sync()
                start = time.perf_counter()
                with record_function(STEP_RANGE):
                    case.step()
                sync()
                walls.append(time.perf_counter() - start)
    if trace:
        os.makedirs(osp.dirname(osp.abspath(trace)), exist_ok=True)
        prof.export_chrome_trace(trace)
    wall_ms = 1000 * sum(walls) / steps
    stages = OrderedDict((name, 1000 * seconds / steps) for name, seconds in ranges.seconds.items())
    # the ranges nest in no other and lie inside the step: the rest is never negative but for
    # rounding
    stages['other'] = max(wall_ms - sum(stages.values()), 0.0)
    report = dict(steps=steps, wall_ms=wall_ms, stages_ms=stages)
    if device == 'cuda':
        busy_us = device_busy_us(prof.events())
        report['device_busy_ms'] = None if busy_us is None else busy_us / 1000 / steps
    report['top_ops'] = top_ops(prof.key_averages(), device, steps)
    return report


class StepProfiler:
    """``detector_benchmark.run``'s profiling pass: called after each case's timed steps as the
    ``Timer`` is, it profiles each variant's detector case in turn (``profile_case``) and keeps
    one report per (arch, variant, case) in ``reports``. Backbone cases are not profiled.
    ``trace_dir``: also a Chrome trace per case there."""

    def __init__(self, device: str, steps: int = 3, warmup: int = 1,
                 trace_dir: Optional[str] = None, log: Callable[[str], None] = print):
        self.device, self.steps, self.warmup = device, steps, warmup
        self.trace_dir, self.log = trace_dir, log
        self.reports: List[dict] = []

    def __call__(self, name: str, cases: list) -> None:
        cases = [case for case in cases if getattr(case, 'model', None) is not None]
        if not cases:
            return
        self.log(f'[benchmark] profiling {name}: {self.steps} steps of each of {len(cases)} '
                 'variants')
        for case in cases:
            result = case.result
            trace = None
            if self.trace_dir:
                stem = re.sub(r'[^\w.]+', '_', f'{result.arch}_{result.variant}_{name}')
                trace = osp.join(self.trace_dir, stem + '.json')
            report = profile_case(case, self.device, self.steps, self.warmup, trace)
            self.reports.append(dict(
                arch=result.arch, variant=result.variant, precision=result.precision, case=name,
                timed_ms=result.median(name), **report, trace=trace))


def markdown(reports: List[dict]) -> str:
    """One table per (arch, case): a row per category, a column per variant, each cell the
    ms per step and its share of the profiled step's wall time."""
    def cell(ms, wall):
        return '-' if ms is None else f'{ms:.1f} ({100 * ms / wall:.0f}%)'

    tables = []
    groups = OrderedDict()
    for report in reports:
        groups.setdefault((report['arch'], report['case']), []).append(report)
    for (arch, case), group in groups.items():
        device = all('device_busy_ms' in r for r in group)
        steps = group[0]['steps']
        lines = [f'Profile of {arch} {case}: ms per step (share of the profiled step), '
                 f'{steps} step{"s" * (steps > 1)} under torch.profiler after the timed ones, '
                 'device-synchronised at every stage border', '',
                 '| category | ' + ' | '.join(r['variant'] for r in group) + ' |',
                 '|---|' + '---:|' * len(group)]
        for category in CATEGORIES:
            if any(category in r['stages_ms'] for r in group):
                lines.append(f'| {category} | ' + ' | '.join(
                    cell(r['stages_ms'].get(category), r['wall_ms']) for r in group) + ' |')
        lines.append('| profiled step (wall) | ' + ' | '.join(
            f"{r['wall_ms']:.1f}" for r in group) + ' |')
        lines.append('| timed step (median, no profiler) | ' + ' | '.join(
            '-' if r['timed_ms'] is None else f"{r['timed_ms']:.1f}" for r in group) + ' |')
        if device:  # None: the GPU's side was not traced
            busy = [r['device_busy_ms'] for r in group]
            lines.append('| GPU busy (kernels, copies) | ' + ' | '.join(
                cell(ms, r['wall_ms']) for ms, r in zip(busy, group)) + ' |')
            lines.append('| GPU idle (waiting on the host) | ' + ' | '.join(
                cell(None if ms is None else max(r['wall_ms'] - ms, 0.0), r['wall_ms'])
                for ms, r in zip(busy, group)) + ' |')
        tables.append('\n'.join(lines))
    return '\n\n'.join(tables)
