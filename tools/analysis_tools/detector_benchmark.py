"""Train-step and inference timing of stock MMDetection against this package (tools/benchmark.py).

Every variant of an architecture (Faster or Mask R-CNN) is built from a config file: stock =
mmdet's own config (mmdet's ``ResNeXt``/``ResNet``, fp32, or fp16 as ``tools/train.py --amp``
gives), ``ours`` = this package's plain config, ``fast`` = its ``*_fast`` config. The backbone case
times ``model.backbone`` of that config alone; the detector case times what the runner does per
iteration, ``model.train_step`` (data preprocessing, losses, backward, optimizer step through the
config's optim wrapper, so the same autocast and loss scaling), and ``model.test_step`` for
inference. All variants run on the same random images, boxes (and masks, for Mask R-CNN),
interleaved step by step; each time is the median of ``iters`` steps after ``warmup`` steps, with
the device synchronised around every step.

By default every variant runs in this process (timing, and GPU memory from torch's counters).
``isolate=True`` runs each variant of each part in a fresh process of its own, still interleaved
step by step from this one, so that the process's peak resident set (model build plus its train
steps) belongs to that variant alone: the CPU memory measure.

With a ``profiler`` (``step_profile.StepProfiler``, in-process runs only) each detector case is
also profiled, in extra steps after its timed ones: where the step's time goes, per stage.
"""
import copy
import multiprocessing
import re
import statistics
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from analysis_tools import proc_kib

# architecture -> (mmdet's config, ours, ours on the fast path). mmdet's is named the way
# mmengine finds it in the installed mmdet (``mmdet::``); ours are file names in the
# repository's configs/, which the caller locates (tools/benchmark.py) and passes in as paths
# (None for a fast config that is not there: that architecture then has no fast variant)
ARCHS = {
    'x101_32x4d': ('mmdet::faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py',
                   'faster_rcnn_x101_32x4d_fpn.py', 'faster_rcnn_x101_32x4d_fpn_fast.py'),
    'r101': ('mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py', 'faster_rcnn_r101_fpn.py',
             'faster_rcnn_r101_fpn_fast.py'),
    'mask_x101_32x4d': ('mmdet::mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py',
                        'mask_rcnn_x101_32x4d_fpn.py', 'mask_rcnn_x101_32x4d_fpn_fast.py'),
    'mask_r101': ('mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py', 'mask_rcnn_r101_fpn.py',
                  'mask_rcnn_r101_fpn_fast.py'),
}
DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@dataclass
class Variant:
    """One column of the comparison: which config, in which precision."""
    name: str
    config: str
    amp: Optional[str] = None  # None: fp32; else the autocast dtype
    note: str = ''
    compile_backbone: bool = False


@dataclass
class Result:
    arch: str
    variant: str
    precision: str
    note: str
    times_ms: Dict[str, List[float]] = field(default_factory=dict)
    peak_mem_mb: Dict[str, Optional[float]] = field(default_factory=dict)
    # isolate mode, train cases: the variant's own process, its peak resident set (build and
    # steps) and its resident set before the model was built (interpreter, imports, batch)
    peak_rss_mb: Dict[str, float] = field(default_factory=dict)
    start_rss_mb: Dict[str, float] = field(default_factory=dict)

    def median(self, case: str) -> Optional[float]:
        times = self.times_ms.get(case)
        return statistics.median(times) if times else None


def variants(configs: Tuple[str, str, Optional[str]], device: str,
             compile_backbone: bool = False) -> List[Variant]:
    """stock fp32, (stock fp16 on GPU), ours fp32, ours fast (bf16, and fp16 on GPU), and
    with ``compile_backbone`` the fast path with a ``torch.compile``-d backbone.

    ``configs`` is (stock, ours, fast): config file paths, or ``package::`` names such as
    ``ARCHS``' ``mmdet::`` ones; fast None leaves out the fast variants.
    """
    stock, ours, fast = configs
    out = [Variant('stock', stock)]
    if device == 'cuda':
        out.append(Variant('stock --amp', stock, 'float16', "mmdet's --amp"))
    out.append(Variant('ours', ours))
    if fast is None:
        return out
    if device == 'cuda':
        out += [Variant('fast', fast, 'bfloat16'), Variant('fast fp16', fast, 'float16')]
    else:
        # mmengine runs AMP on CUDA only, and CPUs without bf16 units emulate it slowly
        out.append(Variant('fast', fast, None, 'no AMP on CPU'))
    if compile_backbone:
        # whether compiling pays is what this variant is for: a static input shape (the
        # benchmark's fixed size) compiles once; varied image sizes would recompile
        fast_variant = next(v for v in out if v.name == 'fast')
        out.append(Variant('fast compiled', fast, fast_variant.amp,
                           'torch.compile(backbone)', compile_backbone=True))
    return out


def load_file_or_package_config(path: str) -> Config:
    """A config file, or an installed package's config by mmengine's ``package::`` name
    (``mmdet::faster_rcnn/...``), which ``Config.fromfile`` takes only inside ``_base_``."""
    return get_config(path) if '::' in path else Config.fromfile(path)


def load_variant_config(variant: Variant, depth: Optional[int]) -> Config:
    cfg = load_file_or_package_config(variant.config)
    backbone = cfg.model.backbone
    backbone.init_cfg = None  # random weights: nothing to download or load
    if depth is not None:
        backbone.depth = depth
    wrapper = cfg.optim_wrapper
    for key in ('dtype', 'loss_scale'):
        wrapper.pop(key, None)
    if variant.amp is None:
        wrapper.type = 'OptimWrapper'
        for loop in ('val_cfg', 'test_cfg'):  # fp32 variants evaluate in fp32 too
            if cfg.get(loop):
                cfg[loop].pop('fp16', None)
    else:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.dtype = variant.amp
        # bf16 needs no loss scaling (the fast configs switch it off); fp16 scales dynamically
        wrapper.loss_scale = dict(enabled=False) if variant.amp == 'bfloat16' else 'dynamic'
    return cfg


def cudnn_benchmark(cfg: Config) -> bool:
    """The config's own cuDNN autotuning switch (``env_cfg.cudnn_benchmark``)."""
    return bool(cfg.get('env_cfg', {}).get('cudnn_benchmark'))


def has_mask_head(cfg: Config) -> bool:
    return bool(cfg.model.get('roi_head', {}).get('mask_head'))


def synthetic_batch(batch: int, height: int, width: int, boxes_per_image: int = 8,
                    num_classes: int = 80, seed: int = 0, masks: bool = False) -> dict:
    """What a COCO dataloader gives ``train_step``: uint8 images and packed samples; with
    ``masks`` also instance masks as the instance-segmentation pipeline packs them (a
    ``BitmapMasks`` of the image's size per image). The boxes do not depend on ``masks``."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g))
        xy = torch.rand(boxes_per_image, 2, generator=g) * torch.tensor([width, height]) * 0.7
        wh = (torch.rand(boxes_per_image, 2, generator=g) * 0.25 + 0.05) * torch.tensor(
            [width, height])
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), scale_factor=(1.0, 1.0),
            flip=False, flip_direction=None, img_id=len(samples), img_path=''))
        bboxes = torch.cat([xy, xy + wh], dim=1)
        sample.gt_instances = InstanceData(
            bboxes=bboxes, labels=torch.randint(0, num_classes, (boxes_per_image,), generator=g))
        if masks:
            sample.gt_instances.masks = box_masks(bboxes, height, width)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def box_masks(bboxes: torch.Tensor, height: int, width: int) -> BitmapMasks:
    """Each box filled: the mask head's targets (RoI crops of the masks) cost the same whatever
    the shape inside the box, and a filled box keeps the masks consistent with the boxes."""
    out = np.zeros((len(bboxes), height, width), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(out, bboxes.floor().long().tolist()):
        mask[max(y1, 0):y2 + 1, max(x1, 0):x2 + 1] = 1
    return BitmapMasks(out, height, width)


def process_rss_mb(peak: bool = True) -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident set, MiB. From /proc where there
    is one: ``ru_maxrss`` survives exec, so a spawned child would report its parent's peak when
    that was higher (the kernel keeps the larger of the old and new address space's)."""
    key = 'VmHWM' if peak else 'VmRSS'
    return proc_kib('/proc/self/status', (key, ))[key] / 1024


def autocast(device: str, amp: Optional[str]):
    return torch.autocast(device, dtype=DTYPES.get(amp, torch.float32), enabled=amp is not None)


def resident_mb(model: torch.nn.Module) -> float:
    """Parameters, buffers and SGD momentum: what a training model holds between steps."""
    tensors = list(model.parameters()) + list(model.buffers())
    momentum = [p for p in model.parameters() if p.requires_grad]
    return sum(t.numel() * t.element_size() for t in tensors + momentum) / 2**20


@dataclass
class Case:
    """One variant's step for one case, and how to put its model in the right mode first. A
    detector case also holds its model and (train) optim wrapper, which a profile hooks."""
    result: Result
    step: Callable[[], None]
    prepare: Callable[[], None]
    resident_mb: float
    cudnn_benchmark: bool
    model: Optional[torch.nn.Module] = None
    optim_wrapper: Optional[object] = None

    def measure(self, timer: 'Timer') -> Tuple[float, Optional[float]]:
        return timer.run_step(self)


def inference_amp(cfg: Config) -> Optional[str]:
    # what tools/test.py does with the config: mmengine's TestLoop(fp16=True) autocasts to fp16
    return 'float16' if cfg.get('test_cfg', {}).get('fp16') else None


def backbone_cases(cfg: Config, variant: Variant, images: torch.Tensor, device: str) -> dict:
    backbone = MODELS.build(cfg.model.backbone).to(device)
    backbone.init_weights()
    if variant.compile_backbone:
        backbone.compile()  # in place: parameters and state dict keys stay the module's own
    optimizer = torch.optim.SGD([p for p in backbone.parameters() if p.requires_grad],
                                lr=1e-4, momentum=0.9)

    def train_step():
        with autocast(device, variant.amp):
            outs = backbone(images)
        sum(o.float().mean() for o in outs).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer_step():
        with torch.no_grad(), autocast(device, inference_amp(cfg)):
            backbone(images)

    return dict(backbone_train=(train_step, backbone.train, resident_mb(backbone), {}),
                backbone_infer=(infer_step, backbone.eval, resident_mb(backbone), {}))


def detector_cases(cfg: Config, variant: Variant, batch: dict, device: str) -> dict:
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if variant.compile_backbone:
        # compiles the backbone's call in place: parameters and state dict keys stay its own
        model.backbone.compile()

    def train_step():
        # the runner's iteration; the data preprocessor moves and normalises the batch
        model.train_step(copy.copy(batch), optim_wrapper)

    def infer_step():
        with torch.no_grad(), autocast(device, inference_amp(cfg)):
            model.test_step(copy.copy(batch))

    return dict(detector_train=(train_step, model.train, resident_mb(model),
                                dict(model=model, optim_wrapper=optim_wrapper)),
                detector_infer=(infer_step, model.eval, resident_mb(model), dict(model=model)))


class Timer:
    """Interleaved timing: step i of every variant runs before step i + 1 of any, so that a
    drift of the machine (clocks, other jobs) shifts all variants alike and leaves the ratios.
    Device-synchronised around every step; on GPU also the memory each step adds."""

    def __init__(self, device: str, warmup: int, iters: int, log=None):
        self.device, self.warmup, self.iters, self.log = device, warmup, iters, log

    def progress(self, name: str, case, step: str, elapsed: float) -> None:
        # steps of tens of seconds (real sizes on CPU): a long run shows that it is moving
        if self.log and elapsed >= 5000:
            self.log(f'[benchmark] {name} {case.result.arch} {case.result.variant} {step}: '
                     f'{elapsed / 1000:.1f} s')

    def sync(self):
        if self.device == 'cuda':
            torch.cuda.synchronize()

    def run_step(self, case: Case) -> Tuple[float, Optional[float]]:
        torch.backends.cudnn.benchmark = case.cudnn_benchmark
        self.sync()
        if self.device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        case.step()
        self.sync()
        elapsed = (time.perf_counter() - start) * 1000
        added = ((torch.cuda.max_memory_allocated() - before) / 2**20
                 if self.device == 'cuda' else None)
        return elapsed, added

    def __call__(self, name: str, cases: List[Case]) -> None:
        for case in cases:
            case.prepare()
        for i in range(self.warmup):
            for case in cases:
                self.progress(name, case, f'warm-up {i + 1}/{self.warmup}', case.measure(self)[0])
        added = {id(case): [] for case in cases}
        for i in range(self.iters):
            for case in cases:
                elapsed, extra = case.measure(self)
                self.progress(name, case, f'step {i + 1}/{self.iters}', elapsed)
                case.result.times_ms.setdefault(name, []).append(elapsed)
                added[id(case)].append(extra)
        for case in cases:
            if self.device == 'cuda':
                # the variant's own state plus the most its step added on top
                case.result.peak_mem_mb[name] = case.resident_mb + max(added[id(case)])


def setup(threads: Optional[int] = None) -> None:
    """Registries and logging as a benchmark process needs them (this one or a worker)."""
    from mmdet.utils import register_all_modules

    import resnext_det  # noqa: F401  (registers the resnext_det scope)
    register_all_modules()
    # the current logger; at WARNING it keeps init_weights' per-parameter report out of the way
    # (created once: mmengine warns when an existing instance is asked for with arguments)
    name = 'resnext_det_benchmark'
    if MMLogger.check_instance_created(name):
        MMLogger.get_instance(name)
    else:
        MMLogger.get_instance(name, log_level='WARNING')
    if threads:
        torch.set_num_threads(threads)


def build_cases(cfg: Config, variant: Variant, part: str, batch: dict, images: torch.Tensor,
                device: str, modes: Sequence[str]) -> Dict[str, tuple]:
    """``{case: (step, prepare, resident_mb, profiled)}`` of one part, only the cases of
    ``modes``; ``profiled``: the ``Case`` fields a profile needs (the detector's model and
    optim wrapper), empty for the backbone."""
    make = backbone_cases if part == 'backbone' else detector_cases
    built = make(cfg, variant, images if part == 'backbone' else batch, device)
    return {name: value for name, value in built.items() if name.rsplit('_', 1)[1] in modes}


def inputs_for(part: str, cfg: Config, batch_size: int, height: int, width: int,
               device: str):
    """The batch (detector) or the normalised images (backbone) a part's steps take."""
    if part == 'detector':
        return synthetic_batch(batch_size, height, width, masks=has_mask_head(cfg)), None
    # the backbone sees what the data preprocessor gives it: normalised float images
    g = torch.Generator().manual_seed(1)
    return None, torch.randn(batch_size, 3, height, width, generator=g).to(device)


def _worker_main(conn, spec: dict) -> None:
    """A fresh process holding one variant's part: builds it, then runs what the parent asks
    (prepare a case, one timed step, report the peak resident set) until told to close."""
    try:
        setup(spec['threads'])
        variant, part, device = spec['variant'], spec['part'], spec['device']
        cfg = load_variant_config(variant, spec['depth'])
        batch, images = inputs_for(part, cfg, spec['batch_size'], spec['height'], spec['width'],
                                   device)
        start_rss = process_rss_mb(peak=False)
        cases = {name: Case(None, step, prepare, resident, cudnn_benchmark(cfg))
                 for name, (step, prepare, resident, _) in build_cases(
                     cfg, variant, part, batch, images, device, spec['modes']).items()}
        conn.send(('ok', dict(start_rss_mb=start_rss,
                              resident_mb={n: c.resident_mb for n, c in cases.items()})))
        timer = Timer(device, 0, 0)
        while True:
            command, *args = conn.recv()
            if command == 'close':
                return
            if command == 'prepare':
                cases[args[0]].prepare()  # returns the module: not to be sent back
                reply = None
            elif command == 'step':
                reply = timer.run_step(cases[args[0]])
            else:  # 'peak_rss'
                reply = process_rss_mb()
            conn.send(('ok', reply))
    except Exception:
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


class Worker:
    """The parent's end of a ``_worker_main`` process (multiprocessing spawn: a fresh
    interpreter, not a fork of this one's memory)."""

    def __init__(self, spec: dict):
        ctx = multiprocessing.get_context('spawn')
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()  # the child's end lives in the child only: a crash then reads as EOF
        self.what = f"{spec['variant'].name} {spec['part']}"

    def receive(self):
        try:
            status, value = self.conn.recv()
        except EOFError:
            self.process.join(10)
            raise RuntimeError(f'benchmark worker ({self.what}) died, exit code '
                               f'{self.process.exitcode} (-9: killed, out of memory?)') from None
        if status == 'error':
            raise RuntimeError(f'benchmark worker ({self.what}) failed:\n{value}')
        return value

    def call(self, *message):
        self.conn.send(message)
        return self.receive()

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(('close',))
            except OSError:  # already gone
                pass
            self.process.join(60)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        self.conn.close()


@dataclass
class RemoteCase:
    """A ``Case`` living in a worker: the same interface for ``Timer``, the step timed (and its
    GPU memory counted) there, so the pipe's round trip is not in the time."""
    result: Result
    worker: Worker
    name: str
    resident_mb: float

    def prepare(self) -> None:
        self.worker.call('prepare', self.name)

    def measure(self, timer: 'Timer') -> Tuple[float, Optional[float]]:
        return tuple(self.worker.call('step', self.name))


def run(configs: Mapping[str, Tuple[str, str, Optional[str]]], parts=('backbone', 'detector'),
        device='cpu', batch_size=2, height=800, width=1216, depth=None, warmup=3, iters=10,
        only=None, compile_backbone=False, log=print, isolate=False,
        modes=('train', 'infer'), profiler=None) -> List[Result]:
    """Time every variant of every architecture; returns one Result per (arch, variant).

    ``configs`` maps each architecture's name (an ``ARCHS`` key) to its (stock, ours, fast)
    configs, as ``variants`` takes them. ``modes``: 'train', 'infer' or both. ``isolate``: every
    (arch, variant, part) in a fresh process, the variants of one (arch, part) alive together
    and stepped interleaved; each train case also gets its process's peak resident set.
    ``profiler``: called as ``profiler(case name, cases)`` after each case's timed steps
    (``step_profile.StepProfiler``); in-process only, the models it hooks must live here.
    """
    if isolate and profiler is not None:
        raise ValueError('profiling runs in this process only: isolate=True runs the models in '
                         'worker processes')
    setup()
    timer = Timer(device, warmup, iters, log)
    planned = []  # (arch, Result, Variant, config)
    for arch, arch_configs in configs.items():
        arch_variants = variants(arch_configs, device, compile_backbone)
        if only:
            missing = [n for n in only if n not in [v.name for v in arch_variants]]
            if missing:
                log(f'[benchmark] {arch}: no variant {", ".join(missing)} (no such config, or '
                    'not on this device)')
        for variant in arch_variants:
            if only and variant.name not in only:
                continue
            cfg = load_variant_config(variant, depth)
            # with --depth 50 the x101_32x4d configs build X-50-32x4d: name what was timed
            label = arch if depth is None else arch.replace('101', str(depth))
            precision = variant.amp or 'fp32'
            if inference_amp(cfg) not in (None, variant.amp):
                precision += f', {inference_amp(cfg)} inference'
            planned.append((arch, Result(label, variant.name, precision, variant.note),
                            variant, cfg))
    results = [result for _, result, _, _ in planned]
    if isolate:
        for arch in configs:
            group = [p for p in planned if p[0] == arch]
            for part in parts:
                if group:
                    _run_isolated(group, part, timer, dict(
                        device=device, batch_size=batch_size, height=height, width=width,
                        depth=depth, modes=tuple(modes), threads=torch.get_num_threads()), log)
        return results
    # the profile's steps come after a case's timed ones: the timings are untouched
    profile = profiler or (lambda name, cases: None)
    batches, cases = {}, {}
    for _, result, variant, cfg in planned:
        log(f'[benchmark] building {result.arch} {result.variant} ({result.precision})')
        cudnn = cudnn_benchmark(cfg)
        for part in parts:
            key = (part, part == 'detector' and has_mask_head(cfg))  # Mask R-CNN's: masks too
            if key not in batches:
                batches[key] = inputs_for(part, cfg, batch_size, height, width, device)
            built = build_cases(cfg, variant, part, *batches[key], device, modes)
            for name, (step, prepare, resident, profiled) in built.items():
                cases.setdefault(name, []).append(
                    Case(result, step, prepare, resident, cudnn, **profiled))
    for name, _ in CASES:
        if name in cases:
            log(f'[benchmark] timing {name}: {len(cases[name])} variants interleaved')
            timer(name, cases[name])
            profile(name, cases[name])
    return results


def _run_isolated(group: list, part: str, timer: Timer, common: dict, log) -> None:
    """One worker per variant of ``group`` for ``part``, all started together (their imports
    overlap), timed interleaved, their peaks read after each train case, then closed."""
    workers = []
    try:
        for _, result, variant, _ in group:
            log(f'[benchmark] starting a process for {result.arch} {result.variant} '
                f'({result.precision}) {part}')
            workers.append((result, Worker(dict(common, variant=variant, part=part))))
        cases = {}
        for result, worker in workers:
            info = worker.receive()
            for name, resident in info['resident_mb'].items():
                cases.setdefault(name, []).append(RemoteCase(result, worker, name, resident))
                result.start_rss_mb[name] = info['start_rss_mb']
        for name, _ in CASES:
            if name not in cases:
                continue
            log(f'[benchmark] timing {name}: {len(cases[name])} variants interleaved, '
                'one process each')
            timer(name, cases[name])
            if name.endswith('train'):
                # the peak so far: the model's build and its train steps, nothing else's
                for case in cases[name]:
                    case.result.peak_rss_mb[name] = case.worker.call('peak_rss')
    finally:
        for _, worker in workers:
            worker.close()


CASES = (('backbone_train', 'backbone train step (ms)'),
         ('backbone_infer', 'backbone inference (img/s)'),
         ('detector_train', 'detector train step (ms)'),
         ('detector_infer', 'detector inference (img/s)'))


def summarize(results: List[Result], batch_size: int) -> dict:
    """Medians, speed-ups against stock fp32 of the same architecture, X/R ratios."""
    rows = []
    stock = {r.arch: r for r in results if r.variant == 'stock'}
    for r in results:
        row = dict(arch=r.arch, variant=r.variant, precision=r.precision, note=r.note)
        for case, _ in CASES:
            ms = r.median(case)
            if ms is None:
                continue
            base = stock.get(r.arch)
            base_ms = base.median(case) if base else None
            value = ms if case.endswith('train') else batch_size * 1000 / ms
            row[case] = value
            row[case + '_speedup'] = base_ms / ms if base_ms else None
            row[case + '_peak_mb'] = r.peak_mem_mb.get(case)
            if case in r.peak_rss_mb:
                row[case + '_peak_rss_mb'] = r.peak_rss_mb[case]
                row[case + '_start_rss_mb'] = r.start_rss_mb.get(case)
        rows.append(row)
    # ResNeXt over ResNet of the same depth and detector (the paper's 1.36 for ),
    # per variant: x101_32x4d / r101, mask_x101_32x4d / mask_r101, x50_32x4d / r50 (--depth 50)
    by_name = {(r.arch, r.variant): r for r in results}
    ratios = []
    for r in results:
        resnet = re.sub(r'(^|_)x(\d+)_\d+x\d+d$', r'\1r\2', r.arch)
        other = by_name.get((resnet, r.variant)) if resnet != r.arch else None
        if other is None:
            continue
        ratios.append(dict(variant=r.variant, pair=f'{r.arch} / {other.arch}', **{
            case: r.median(case) / other.median(case) for case, _ in CASES
            if case.endswith('train') and r.median(case) and other.median(case)}))
    return dict(rows=rows, x_over_r=ratios)


def markdown(summary: dict) -> str:
    def fmt(value, digits=1):
        return '-' if value is None else f'{value:.{digits}f}'

    def first(row, suffix):  # the detector's figure where there is one, else the backbone's
        return row.get('detector_train' + suffix) or row.get('backbone_train' + suffix)

    cases = [(case, title) for case, title in CASES
             if any(case in row for row in summary['rows'])]
    rss = any(first(row, '_peak_rss_mb') for row in summary['rows'])
    rss_titles = ' peak RSS, train (MiB) | RSS before build (MiB) |' if rss else ''
    lines = ['| arch | variant | precision | ' + ' | '.join(
        f'{title} | vs stock' for _, title in cases) + ' | peak train mem (MB) |' + rss_titles,
        '|---|---|---|' + '---:|---:|' * len(cases) + '---:|' + '---:|---:|' * rss]
    for row in summary['rows']:
        cells = []
        for case, _ in cases:
            cells += [fmt(row.get(case)), fmt(row.get(case + '_speedup'), 2) + 'x'
                      if row.get(case + '_speedup') else '-']
        cells.append(fmt(first(row, '_peak_mb'), 0))
        if rss:
            cells += [fmt(first(row, '_peak_rss_mb'), 0), fmt(first(row, '_start_rss_mb'), 0)]
        precision = row['precision'] + (f" ({row['note']})" if row['note'] else '')
        lines.append(f"| {row['arch']} | {row['variant']} | {precision} | "
                     + ' | '.join(cells) + ' |')
    if summary['x_over_r']:
        lines += ['', '| variant | step time ratio | backbone train step | detector train step |',
                  '|---|---|---:|---:|']
        for ratio in summary['x_over_r']:
            lines.append(f"| {ratio['variant']} | {ratio['pair']} | "
                         f"{fmt(ratio.get('backbone_train'), 2)} | "
                         f"{fmt(ratio.get('detector_train'), 2)} |")
    return '\n'.join(lines)


def to_json(results: List[Result], summary: dict, settings: dict) -> dict:
    return dict(settings=settings, summary=summary, results=[asdict(r) for r in results])
