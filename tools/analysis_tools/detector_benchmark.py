"""Train-step and inference timing of stock MMDetection against this package (tools/benchmark.py).

Every variant of an architecture is built from a config file: stock = mmdet's own config (mmdet's
``ResNeXt``/``ResNet``, fp32, or fp16 as ``tools/train.py --amp`` gives), ``ours`` = this package's
plain config, ``fast`` = its ``*_fast`` config. The backbone case times ``model.backbone`` of that
config alone; the detector case times what the runner does per iteration, ``model.train_step``
(data preprocessing, losses, backward, optimizer step through the config's optim wrapper, so
the same autocast and loss scaling), and ``model.test_step`` for inference. All variants run in
one process on the same random images and boxes, interleaved step by step; each time is the
median of ``iters`` steps after ``warmup`` steps, with the device synchronised around every step.
"""
import copy
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

# architecture -> (mmdet's config, ours, ours on the fast path). mmdet's is named the way
# mmengine finds it in the installed mmdet (``mmdet::``); ours are file names in the
# repository's configs/, which the caller locates (tools/benchmark.py) and passes in as paths
ARCHS = {
    'x101_32x4d': ('mmdet::faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py',
                   'faster_rcnn_x101_32x4d_fpn.py', 'faster_rcnn_x101_32x4d_fpn_fast.py'),
    'r101': ('mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py', 'faster_rcnn_r101_fpn.py',
             'faster_rcnn_r101_fpn_fast.py'),
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

    def median(self, case: str) -> Optional[float]:
        times = self.times_ms.get(case)
        return statistics.median(times) if times else None


def variants(configs: Tuple[str, str, str], device: str,
             compile_backbone: bool = False) -> List[Variant]:
    """stock fp32, (stock fp16 on GPU), ours fp32, ours fast (bf16, and fp16 on GPU), and
    with ``compile_backbone`` the fast path with a ``torch.compile``-d backbone.

    ``configs`` is (stock, ours, fast): config file paths, or ``package::`` names such as
    ``ARCHS``' ``mmdet::`` ones.
    """
    stock, ours, fast = configs
    out = [Variant('stock', stock)]
    if device == 'cuda':
        out.append(Variant('stock --amp', stock, 'float16', "mmdet's --amp"))
    out.append(Variant('ours', ours))
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


def synthetic_batch(batch: int, height: int, width: int, boxes_per_image: int = 8,
                    num_classes: int = 80, seed: int = 0) -> dict:
    """What a COCO dataloader gives ``train_step``: uint8 images and packed samples."""
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
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.randint(0, num_classes, (boxes_per_image,), generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def autocast(device: str, amp: Optional[str]):
    return torch.autocast(device, dtype=DTYPES.get(amp, torch.float32), enabled=amp is not None)


def resident_mb(model: torch.nn.Module) -> float:
    """Parameters, buffers and SGD momentum: what a training model holds between steps."""
    tensors = list(model.parameters()) + list(model.buffers())
    momentum = [p for p in model.parameters() if p.requires_grad]
    return sum(t.numel() * t.element_size() for t in tensors + momentum) / 2**20


@dataclass
class Case:
    """One variant's step for one case, and how to put its model in the right mode first."""
    result: Result
    step: Callable[[], None]
    prepare: Callable[[], None]
    resident_mb: float
    cudnn_benchmark: bool


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

    return dict(backbone_train=(train_step, backbone.train, resident_mb(backbone)),
                backbone_infer=(infer_step, backbone.eval, resident_mb(backbone)))


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

    return dict(detector_train=(train_step, model.train, resident_mb(model)),
                detector_infer=(infer_step, model.eval, resident_mb(model)))


class Timer:
    """Interleaved timing: step i of every variant runs before step i + 1 of any, so that a
    drift of the machine (clocks, other jobs) shifts all variants alike and leaves the ratios.
    Device-synchronised around every step; on GPU also the memory each step adds."""

    def __init__(self, device: str, warmup: int, iters: int):
        self.device, self.warmup, self.iters = device, warmup, iters

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
        for _ in range(self.warmup):
            for case in cases:
                self.run_step(case)
        added = {id(case): [] for case in cases}
        for _ in range(self.iters):
            for case in cases:
                elapsed, extra = self.run_step(case)
                case.result.times_ms.setdefault(name, []).append(elapsed)
                added[id(case)].append(extra)
        for case in cases:
            if self.device == 'cuda':
                # the variant's own state plus the most its step added on top
                case.result.peak_mem_mb[name] = case.resident_mb + max(added[id(case)])


def run(configs: Mapping[str, Tuple[str, str, str]], parts=('backbone', 'detector'),
        device='cpu', batch_size=2, height=800, width=1216, depth=None, warmup=3, iters=10,
        only=None, compile_backbone=False, log=print) -> List[Result]:
    """Time every variant of every architecture; returns one Result per (arch, variant).

    ``configs`` maps each architecture's name (an ``ARCHS`` key) to its (stock, ours, fast)
    configs, as ``variants`` takes them.
    """
    from mmdet.utils import register_all_modules

    import resnext_det  # noqa: F401  (registers the resnext_det scope)
    register_all_modules()
    # the current logger; at WARNING it keeps init_weights' per-parameter report out of the way
    MMLogger.get_instance('resnext_det_benchmark', log_level='WARNING')
    timer = Timer(device, warmup, iters)
    batch = synthetic_batch(batch_size, height, width)
    # the backbone sees what the data preprocessor gives it: normalised float images
    g = torch.Generator().manual_seed(1)
    images = torch.randn(batch_size, 3, height, width, generator=g).to(device)
    results, cases = [], {}
    for arch, arch_configs in configs.items():
        for variant in variants(arch_configs, device, compile_backbone):
            if only and variant.name not in only:
                continue
            cfg = load_variant_config(variant, depth)
            # with --depth 50 the x101_32x4d configs build X-50-32x4d: name what was timed
            label = arch if depth is None else arch.replace('101', str(depth))
            precision = variant.amp or 'fp32'
            if inference_amp(cfg) not in (None, variant.amp):
                precision += f', {inference_amp(cfg)} inference'
            result = Result(label, variant.name, precision, variant.note)
            log(f'[benchmark] building {label} {variant.name} ({result.precision})')
            built = {}
            if 'backbone' in parts:
                built.update(backbone_cases(cfg, variant, images, device))
            if 'detector' in parts:
                built.update(detector_cases(cfg, variant, batch, device))
            cudnn = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark'))
            for name, (step, prepare, resident) in built.items():
                cases.setdefault(name, []).append(Case(result, step, prepare, resident, cudnn))
            results.append(result)
    for name, _ in CASES:
        if name in cases:
            log(f'[benchmark] timing {name}: {len(cases[name])} variants interleaved')
            timer(name, cases[name])
    return results


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
        rows.append(row)
    # ResNeXt over ResNet of the same depth (the paper's 1.36 for ), per variant
    resnets = {r.variant: r for r in results if r.arch.startswith('r')}
    ratios = []
    for r in results:
        other = resnets.get(r.variant) if r.arch.startswith('x') else None
        if other is None:
            continue
        ratios.append(dict(variant=r.variant, pair=f'{r.arch} / {other.arch}', **{
            case: r.median(case) / other.median(case) for case, _ in CASES
            if case.endswith('train') and r.median(case) and other.median(case)}))
    return dict(rows=rows, x_over_r=ratios)


def markdown(summary: dict) -> str:
    def fmt(value, digits=1):
        return '-' if value is None else f'{value:.{digits}f}'

    cases = [(case, title) for case, title in CASES
             if any(case in row for row in summary['rows'])]
    lines = ['| arch | variant | precision | ' + ' | '.join(
        f'{title} | vs stock' for _, title in cases) + ' | peak train mem (MB) |',
        '|---|---|---|' + '---:|---:|' * len(cases) + '---:|']
    for row in summary['rows']:
        cells = []
        for case, _ in cases:
            cells += [fmt(row.get(case)), fmt(row.get(case + '_speedup'), 2) + 'x'
                      if row.get(case + '_speedup') else '-']
        peak = row.get('detector_train_peak_mb') or row.get('backbone_train_peak_mb')
        precision = row['precision'] + (f" ({row['note']})" if row['note'] else '')
        lines.append(f"| {row['arch']} | {row['variant']} | {precision} | "
                     + ' | '.join(cells) + f' | {fmt(peak, 0)} |')
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
