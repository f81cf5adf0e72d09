"""Per-core throughput of the input pipelines (tools/benchmark_input.py), one thread.

Part ``cls``: ImageNet-sized JPEGs cut from scikit-image's photographs, through (a) torchvision's
standard PIL ImageFolder training pipeline (pil_loader + RandomResizedCrop(224) +
RandomHorizontalFlip + ToTensor + Normalize, as torchvision's reference scripts), (b)
``ImageNetFolder``'s former path (cv2.imread + v2 on uint8), (c) its decoder now,
``RandomResizedCropDecoder`` (resnext_det/datasets/decode.py), with the reduced-scale decode and
(d) without it (``ImageNetFolder``'s default: the former pixels, bit for bit); and the
test-time counterparts (Resize(256) + CenterCrop(224)). Times are the calling thread's CPU time
(img/s per core on a machine shared with other work; wall times are kept in the JSON). Every
round times each image through every pipeline back to back, in rotating order, each call
reseeded with the same seed, so all pipelines draw the same boxes and flips and load changes
from other processes hit them alike; an image's time is its median over rounds. The crops'
per-channel mean/std (0-255 scale) and their mean absolute difference to (a)'s are reported:
they show the pipelines feed the model the same pixels.

Part ``det``: COCO-sized photo JPEGs with a few boxes and polygons each, through mmdet's COCO
train pipeline (``mmdet::_base_/datasets/coco_detection.py`` / ``coco_instance.py``) and this
repository's (configs/_base_/datasets/), without and with masks.
"""
import copy
import math
import os
import os.path as osp
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from PIL import Image

# the photographs scikit-image ships in skimage/data (read as files: no download)
PHOTOS = ('astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.jpg', 'motorcycle_left.png',
          'motorcycle_right.png', 'hubble_deep_field.jpg', 'retina.jpg', 'color.png', 'ihc.png',
          'horse.png')
# ImageNet's usual sizes (Flickr's 500-pixel long side; (w, h)) and a tail of larger images
TYPICAL_SIZES = ((500, 375), (500, 333), (375, 500), (500, 400), (500, 500), (333, 500),
                 (400, 300), (500, 281))
LARGE_LONG_SIDES = (800, 1600)
JPEG_QUALITY = 90  # ImageNet's JPEGs are mostly quality 90-96 Flickr/Google exports
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# what the GPUs eat: ResNeXt-50 training on an A100 at ~2k img/s, 8 of them
CLS_GPUS, CLS_PER_GPU = 8, 2000
# detection: 8 GPUs x 2 images per iteration of 0.2-0.7 s
DET_NEED = (8 * 2 / 0.7, 8 * 2 / 0.2)


def photo_dir() -> str:
    import skimage
    return osp.join(osp.dirname(skimage.__file__), 'data')


def load_photos() -> List[np.ndarray]:
    return [np.asarray(Image.open(osp.join(photo_dir(), name)).convert('RGB'))
            for name in PHOTOS]


def cut(photo: np.ndarray, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A ``width`` x ``height`` crop of ``photo`` at a random scale (upscaled where the photo is
    smaller), as a photo resized by its camera or website would be."""
    h0, w0 = photo.shape[:2]
    s = max(width / w0, height / h0) * rng.uniform(1.0, 1.6)
    w1, h1 = max(width, round(w0 * s)), max(height, round(h0 * s))
    im = Image.fromarray(photo).resize((w1, h1), Image.BICUBIC)
    x, y = int(rng.integers(0, w1 - width + 1)), int(rng.integers(0, h1 - height + 1))
    return im.crop((x, y, x + width, y + height))


def make_cls_images(out_dir: str, num: int, large_fraction: float, seed: int = 0,
                    classes: int = 4) -> List[dict]:
    """ImageNet-layout folder ``out_dir/<class>/*.JPEG``; [{path, size, large}], deterministic
    from ``seed``."""
    rng = np.random.default_rng(seed)
    photos = load_photos()
    num_large = round(num * large_fraction)
    items = []
    for i in range(num):
        large = i < num_large
        if large:
            long_side = int(rng.integers(*LARGE_LONG_SIDES))
            aspect = rng.choice((4 / 3, 3 / 2, 1.0))
            width, height = long_side, round(long_side / aspect)
            if rng.random() < 0.3:
                width, height = height, width
        else:
            width, height = TYPICAL_SIZES[int(rng.integers(len(TYPICAL_SIZES)))]
        im = cut(photos[int(rng.integers(len(photos)))], width, height, rng)
        path = osp.join(out_dir, f'c{i % classes}', f'{i:05d}_{width}x{height}.JPEG')
        if not osp.exists(path):  # same seed, same pixels: a previous run's file is reused
            os.makedirs(osp.dirname(path), exist_ok=True)
            im.save(path, quality=JPEG_QUALITY)
        items.append(dict(path=path, size=(width, height), large=large))
    return items


def cls_pipelines(crop: int = 224, resize: int = 256) -> Dict[str, Callable[[str], object]]:
    """name -> fn(path): the three training and three test-time pipelines."""
    from torchvision import transforms as T
    from torchvision.datasets.folder import pil_loader
    from torchvision.transforms import v2

    from resnext_det.datasets.decode import RandomResizedCropDecoder, ResizeCenterCropDecoder

    def cv2_rgb(path):  # ImageNetFolder.__getitem__'s decode
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)

    tv_train = T.Compose([T.RandomResizedCrop(crop), T.RandomHorizontalFlip(), T.ToTensor(),
                          T.Normalize(MEAN, STD)])
    tv_test = T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(),
                         T.Normalize(MEAN, STD)])
    v2_train = v2.Compose([v2.RandomResizedCrop(crop, antialias=True),
                           v2.RandomHorizontalFlip()])
    v2_test = v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(crop)])
    return {
        'train (a) torchvision PIL': lambda p: tv_train(pil_loader(p)),
        'train (b) cv2 + v2 (ImageNetFolder until now)': lambda p: v2_train(cv2_rgb(p)),
        'train (c) RandomResizedCropDecoder': RandomResizedCropDecoder(crop),
        'train (d) RandomResizedCropDecoder, full decode': RandomResizedCropDecoder(
            crop, reduce=False),
        'test (a) torchvision PIL': lambda p: tv_test(pil_loader(p)),
        'test (b) cv2 + v2 (ImageNetFolder until now)': lambda p: v2_test(cv2_rgb(p)),
        'test (c) ResizeCenterCropDecoder': ResizeCenterCropDecoder(resize, crop),
        'test (d) ResizeCenterCropDecoder, full decode': ResizeCenterCropDecoder(
            resize, crop, reduce=False),
    }


def as_pixels(out: torch.Tensor) -> torch.Tensor:
    """A pipeline's output as float 0-255 RGB (undoing (a)'s ToTensor + Normalize)."""
    if out.dtype == torch.uint8:
        return out.float()
    return (out * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]) * 255


@dataclass
class PixelStats:
    """Running per-channel sums over crops; mean abs difference to the reference's crops."""
    n: int = 0
    total: List[float] = field(default_factory=lambda: [0.0] * 3)
    squares: List[float] = field(default_factory=lambda: [0.0] * 3)
    abs_diff: float = 0.0
    diffs: int = 0

    def add(self, pixels: torch.Tensor, reference: Optional[torch.Tensor]) -> None:
        flat = pixels.double().reshape(3, -1)
        self.n += flat.shape[1]
        self.total = [a + b for a, b in zip(self.total, flat.sum(1).tolist())]
        self.squares = [a + b for a, b in zip(self.squares, (flat ** 2).sum(1).tolist())]
        if reference is not None and reference.shape == pixels.shape:
            self.abs_diff += (pixels - reference).abs().mean().item()
            self.diffs += 1

    def summary(self) -> dict:
        mean = [t / self.n for t in self.total]
        std = [math.sqrt(max(s / self.n - m * m, 0.0)) for s, m in zip(self.squares, mean)]
        return dict(mean=mean, std=std,
                    mean_abs_diff_vs_a=self.abs_diff / self.diffs if self.diffs else None)


def time_interleaved(pipelines: Dict[str, Callable], inputs: Sequence, rounds: int, seed: int,
                     stats_of: Optional[Callable] = None, log: Callable = print):
    """(cpu, wall): name -> per-input median seconds over ``rounds``, in this thread's CPU time
    (what one core spends, however many other processes share the machine) and wall time. Each
    input goes through every pipeline back to back (order rotating), each call after
    ``torch.manual_seed`` of the same value, so random crops match across pipelines.
    ``stats_of(input_index, {name: output})`` sees the outputs of round 0."""
    names = list(pipelines)
    times = {name: [[] for _ in inputs] for name in names}
    walls = {name: [[] for _ in inputs] for name in names}
    for r in range(rounds):
        t_round = time.perf_counter()
        for i, item in enumerate(inputs):
            outputs = {}
            shift = (i + r) % len(names)
            for name in names[shift:] + names[:shift]:
                torch.manual_seed(seed + 1000003 * r + i)
                arg = copy.deepcopy(item) if isinstance(item, dict) else item
                t0, c0 = time.perf_counter(), time.thread_time()
                out = pipelines[name](arg)
                times[name][i].append(time.thread_time() - c0)
                walls[name][i].append(time.perf_counter() - t0)
                outputs[name] = out
            if r == 0 and stats_of is not None:
                stats_of(i, outputs)
        log(f'round {r + 1}/{rounds}: {time.perf_counter() - t_round:.1f} s')
    median = lambda d: {name: [statistics.median(t) for t in per_input]  # noqa: E731
                        for name, per_input in d.items()}
    return median(times), median(walls)


def rate(seconds: Sequence[float]) -> Optional[float]:
    return len(seconds) / sum(seconds) if seconds else None


def run_cls(work_dir: str, num: int, large_fraction: float, rounds: int, seed: int = 0,
            log: Callable = print) -> dict:
    items = make_cls_images(osp.join(work_dir, 'cls'), num, large_fraction, seed)
    paths = [item['path'] for item in items]
    pipelines = cls_pipelines()
    stats = {name: PixelStats() for name in pipelines}

    def stats_of(i, outputs):  # round 0's crops of input i, by pipeline
        for name, out in outputs.items():
            reference = as_pixels(outputs[name.split()[0] + ' (a) torchvision PIL'])
            stats[name].add(as_pixels(out), None if ' (a) ' in name else reference)

    times, walls = time_interleaved(pipelines, paths, rounds, seed, stats_of, log=log)
    reduced = {name: p.reduced / (num * rounds) for name, p in pipelines.items()
               if hasattr(p, 'reduced')}
    rows = []
    subsets = [('all', [True] * num), ('typical', [not it['large'] for it in items]),
               ('large', [it['large'] for it in items])]
    for subset, mask in subsets:
        if not any(mask):
            continue
        for name, secs in times.items():
            split = name.split()[0]
            ref = rate([s for s, m in zip(times[f'{split} (a) torchvision PIL'], mask) if m])
            r = rate([s for s, m in zip(secs, mask) if m])
            rows.append(dict(images=subset, n=sum(mask), pipeline=name, img_per_s=r,
                             vs_a=r / ref, cores_for_8_gpus=CLS_GPUS * CLS_PER_GPU / r))
    return dict(rows=rows, pixel_stats={n: s.summary() for n, s in stats.items()},
                reduced_fraction=reduced, num_images=num, large_fraction=large_fraction,
                sizes=[it['size'] for it in items], cpu_times_s=times, wall_times_s=walls)


# ----------------------------------------------------------------------------------- detection

COCO_SIZES = ((640, 480), (640, 427), (480, 640), (640, 424), (640, 512), (500, 375),
              (427, 640), (640, 360))


def make_det_images(out_dir: str, num: int, seed: int = 0) -> List[dict]:
    """COCO-like data infos (what CocoDataset.parse_data_info gives) for photo JPEGs with 2-8
    objects, each a box around a 12-point polygon."""
    rng = np.random.default_rng(seed + 1)
    photos = load_photos()
    infos = []
    for i in range(num):
        width, height = COCO_SIZES[int(rng.integers(len(COCO_SIZES)))]
        path = osp.join(out_dir, f'{i:012d}.jpg')
        im = cut(photos[int(rng.integers(len(photos)))], width, height, rng)
        if not osp.exists(path):
            os.makedirs(out_dir, exist_ok=True)
            im.save(path, quality=JPEG_QUALITY)
        instances = []
        for _ in range(int(rng.integers(2, 9))):
            cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
            rx, ry = rng.uniform(10, width / 4), rng.uniform(10, height / 4)
            angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
            radius = rng.uniform(0.6, 1.0, 12)
            xs = np.clip(cx + rx * radius * np.cos(angles), 0, width - 1)
            ys = np.clip(cy + ry * radius * np.sin(angles), 0, height - 1)
            polygon = np.stack([xs, ys], 1).reshape(-1).tolist()
            instances.append(dict(bbox=[xs.min(), ys.min(), xs.max(), ys.max()],
                                  bbox_label=int(rng.integers(80)), ignore_flag=0,
                                  mask=[polygon]))
        infos.append(dict(img_path=path, img_id=i, seg_map_path=None, height=height, width=width,
                          instances=instances, sample_idx=i))
    return infos


def det_pipelines(configs_dir: str) -> Dict[str, Callable[[dict], dict]]:
    """name -> mmdet Compose of each config's ``train_pipeline``."""
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.hub import get_config
    register_all_modules()
    ours = osp.join(configs_dir, '_base_', 'datasets')
    configs = {
        'mmdet boxes': get_config('mmdet::_base_/datasets/coco_detection.py'),
        'mmdet boxes + masks': get_config('mmdet::_base_/datasets/coco_instance.py'),
        'ours boxes': Config.fromfile(osp.join(ours, 'coco_detection.py')),
        'ours boxes + masks': Config.fromfile(osp.join(ours, 'coco_instance.py')),
    }
    return {name: Compose(cfg.train_pipeline) for name, cfg in configs.items()}


def run_det(work_dir: str, num: int, rounds: int, configs_dir: str, seed: int = 0,
            log: Callable = print) -> dict:
    infos = make_det_images(osp.join(work_dir, 'det'), num, seed)
    pipelines = det_pipelines(configs_dir)
    complete = {}

    def check(i, outputs):  # the packed sample must carry what the detector trains on
        for name, out in outputs.items():
            sample = out['data_samples']
            complete[name] = complete.get(name, True) and tuple(out['inputs'].shape[1:]) == \
                tuple(sample.img_shape) and len(sample.gt_instances) > 0 and (
                'masks' not in name or 'masks' in sample.gt_instances)

    times, walls = time_interleaved(pipelines, infos, rounds, seed, check, log=log)
    rows = []
    for name, secs in times.items():
        r = rate(secs)
        rows.append(dict(pipeline=name, img_per_s=r, cores_for_8_gpus=(DET_NEED[0] / r,
                                                                       DET_NEED[1] / r)))
    return dict(rows=rows, outputs_complete=complete, num_images=num, cpu_times_s=times,
                wall_times_s=walls, need_img_per_s=DET_NEED)


# -------------------------------------------------------------------------------------- report

def markdown(result: dict) -> str:
    def fmt(value, digits=0):
        return '-' if value is None else f'{value:.{digits}f}'

    lines = []
    cls = result.get('cls')
    if cls:
        lines += [f'Classification: {cls["num_images"]} ImageNet-sized JPEGs '
                  f'({cls["large_fraction"]:.0%} large), one thread; cores for 8 GPUs at '
                  f'{CLS_PER_GPU} img/s each ({CLS_GPUS * CLS_PER_GPU} img/s)', '',
                  '| images | pipeline | img/s per core | vs (a) | cores for 8 GPUs |',
                  '|---|---|---:|---:|---:|']
        for row in cls['rows']:
            lines.append(f"| {row['images']} ({row['n']}) | {row['pipeline']} | "
                         f"{fmt(row['img_per_s'])} | {fmt(row['vs_a'], 2)}x | "
                         f"{fmt(row['cores_for_8_gpus'], 1)} |")
        reduced = ', '.join(f'{name.split(") ", 1)[-1]} {frac:.0%}'
                            for name, frac in cls['reduced_fraction'].items())
        lines += ['', f'Reduced-scale JPEG decodes: {reduced}', '',
                  '| pipeline | mean R | mean G | mean B | std R | std G | std B | '
                  'mean abs diff to (a) |', '|---|---:|---:|---:|---:|---:|---:|---:|']
        for name, st in cls['pixel_stats'].items():
            lines.append(f'| {name} | ' + ' | '.join(fmt(v, 2) for v in st['mean'] + st['std'])
                         + f" | {fmt(st['mean_abs_diff_vs_a'], 2)} |")
    det = result.get('det')
    if det:
        lo, hi = det['need_img_per_s']
        if lines:
            lines.append('')
        lines += [f'Detection: {det["num_images"]} COCO-sized JPEGs, train pipeline, one thread;'
                  f' 8 GPUs x 2 images per 0.7-0.2 s iteration need {lo:.0f}-{hi:.0f} img/s', '',
                  '| pipeline | img/s per core | cores for 8 GPUs (23-80 img/s) | '
                  'outputs complete |', '|---|---:|---:|---|']
        for row in det['rows']:
            c_lo, c_hi = row['cores_for_8_gpus']
            lines.append(f"| {row['pipeline']} | {fmt(row['img_per_s'])} | "
                         f"{c_lo:.2f}-{c_hi:.2f} | "
                         f"{'yes' if det['outputs_complete'].get(row['pipeline']) else 'NO'} |")
    return '\n'.join(lines)


def to_json(result: dict, settings: dict) -> dict:
    return dict(settings=settings, **result)


__all__ = ['run_cls', 'run_det', 'markdown', 'to_json', 'make_cls_images', 'make_det_images',
           'cls_pipelines', 'det_pipelines', 'PixelStats']
