"""What full-size datasets cost to build and to hold: ImageNet-1K train (1,281,167 samples) and
COCO train2017 (118,287 images), generated from a seed in a temporary folder.

``imagenet``: an mmpretrain annotation list of 1,281,167 lines (1,000 classes, names such as
``n01440764/n01440764_10026.JPEG``) read (a) by ``ImageNetFolder(ann_file=...)`` into its
numpy :class:`SampleIndex`, (b) into a plain Python list of ``(path, label)`` tuples (what
torchvision's ``DatasetFolder.samples`` holds), and (c) by ``ImageNetFolder``'s folder scan of
empty files. (c) scans only the first ``scan_classes`` classes' files and scales time and
memory by the sample count (both grow with the files: one directory listing per class, one
sample each): creating, scanning and deleting 1.28M files takes minutes and ~5 GiB of inodes
on a shared disk, and the scan runs on a warm dentry cache either way, so it is a lower bound
for a cold or network file system. For (a) and (b) a process is then forked, as DataLoader
forks its workers, and reads the (path, label) of ``reads`` samples in a shuffled order
(nothing decoded); the child's Private_Dirty (smaps_rollup) before and after counts the pages
it copied from the parent just by reading (reference counts written: copy-on-read), then again
after a ``gc.collect()``, which writes to every tracked container the parent left.

``coco``: a train2017-shaped instances json (sizes and box statistics as val2017's generator of
coco_eval_benchmark, ~6.9 boxes per image, polygon masks, 1% crowd RLE regions, 80 categories)
built by ``resnext_det.CocoDataset`` and mmdet's ``CocoDataset`` (full_init, serialize_data on,
the train filter), each in a fresh process so that their peaks do not mix.

Every measurement runs in its own fresh ``python`` process (this file run as a script) and
reports VmRSS before and after the build, VmHWM (peak) and seconds. ``tools/benchmark_datasets.py``
is the command line.
"""
import gc
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from analysis_tools import proc_kib

IMAGENET_TRAIN_IMAGES, IMAGENET_CLASSES = 1_281_167, 1000
COCO_TRAIN_IMAGES = 118_287
# train2017 has 860,001 annotations; the ~815k boxes asked for are ~6.9 per image
COCO_BOXES_PER_IMAGE = 6.9
MIB = 2**20
# The parts of smaps_rollup compared before and after the reads.
SMAPS_KEYS = ('Rss', 'Pss', 'Private_Clean', 'Private_Dirty', 'Shared_Clean', 'Shared_Dirty')


# ----------------------------------------------------------------------------- generation

def imagenet_class_counts(num_samples: int, num_classes: int, seed: int = 0) -> np.ndarray:
    """Images per class summing to ``num_samples``: as ImageNet-1K's train set, most classes
    hold the maximum (1,300 there) and about one in ten fewer (down to ~56%)."""
    rng = np.random.default_rng(seed)
    weights = np.where(rng.random(num_classes) < 0.1, rng.uniform(0.56, 1.0, num_classes), 1.0)
    counts = np.maximum(np.floor(num_samples * weights / weights.sum()).astype(np.int64), 1)
    while counts.sum() != num_samples:  # rounding: spread the difference over big classes
        excess = int(counts.sum() - num_samples)
        big = np.flatnonzero(counts > 1) if excess > 0 else np.arange(num_classes)
        np.add.at(counts, rng.choice(big, size=min(abs(excess), len(big))), -np.sign(excess))
    return counts


def make_imagenet_list(path: str, num_samples: int = IMAGENET_TRAIN_IMAGES,
                       num_classes: int = IMAGENET_CLASSES, seed: int = 0) -> List[str]:
    """Write mmpretrain's ``meta/train.txt`` for a synthetic ImageNet train set and return the
    class folder names (wnids such as n01440764, sorted: the labels number them). Lines are
    sorted as ImageNet's list is; file names ``<wnid>_<number>.JPEG``."""
    rng = np.random.default_rng(seed)
    wnids = [f'n{n:08d}' for n in np.sort(rng.choice(np.arange(1_000_000, 15_000_000),
                                                     num_classes, replace=False))]
    counts = imagenet_class_counts(num_samples, num_classes, seed)
    with open(path, 'w') as f:
        for label, (wnid, count) in enumerate(zip(wnids, counts)):
            numbers = rng.choice(max(60_000, 2 * count), size=count, replace=False)
            names = sorted(f'{wnid}_{n}.JPEG' for n in numbers.tolist())
            f.write(''.join(f'{wnid}/{name} {label}\n' for name in names))
    return wnids


def make_empty_files(root: str, ann_file: str, classes: int) -> int:
    """Create the listed files of the list's first ``classes`` class folders, empty; their
    count."""
    made, folders = 0, set()
    with open(ann_file) as f:
        for line in f:
            rel = line.rsplit(None, 1)[0]
            folder = rel.split('/', 1)[0]
            if folder not in folders:
                if len(folders) == classes:
                    break
                folders.add(folder)
                os.makedirs(osp.join(root, folder), exist_ok=True)
            open(osp.join(root, rel), 'wb').close()
            made += 1
    return made


def _polygon(rng: np.random.Generator, box: np.ndarray, vertices: int) -> List[float]:
    """A star-shaped polygon inside ``box`` (x, y, w, h), flat [x1, y1, x2, y2, ...]."""
    angle = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radius = rng.uniform(0.6, 1.0, vertices) / 2
    x = box[0] + box[2] * (0.5 + radius * np.cos(angle))
    y = box[1] + box[3] * (0.5 + radius * np.sin(angle))
    return np.stack([x, y], axis=1).round(2).reshape(-1).tolist()


def _crowd_rle(box: np.ndarray, width: int, height: int) -> dict:
    """An uncompressed RLE (column-major, as COCO's crowd regions) filling ``box``."""
    x0, y0 = int(box[0]), int(box[1])
    cols = max(1, min(int(box[2]), width - x0))
    rows = max(1, min(int(box[3]), height - y0))
    counts = [x0 * height + y0] + [rows, height - rows] * cols
    counts[-1] = width * height - sum(counts[:-1])
    return dict(counts=counts, size=[height, width])


def make_coco_train(path: str, num_images: int = COCO_TRAIN_IMAGES, seed: int = 0,
                    image_dir: Optional[str] = None) -> dict:
    """Write a train2017-shaped instances json, streamed (the file of the full size is ~0.5 GB,
    its dict several GB), and its images as empty files in ``image_dir`` if given; returns its
    counts. Same seed, same file."""
    from mmdet.datasets import CocoDataset

    from analysis_tools.coco_eval_benchmark import (
        COCO_CATEGORY_IDS,
        _box_sizes,
        _category_weights,
        _place_boxes,
        box_counts,
        coco_images,
    )
    rng = np.random.default_rng(seed)
    image_ids, widths, heights = coco_images(rng, num_images)
    counts = box_counts(rng, num_images, COCO_BOXES_PER_IMAGE)
    category_weights = _category_weights(rng)
    images = [dict(id=int(i), file_name=f'{i:012d}.jpg', width=int(w), height=int(h))
              for i, w, h in zip(image_ids, widths, heights)]
    for image in images if image_dir else ():
        open(osp.join(image_dir, image['file_name']), 'wb').close()
    categories = [dict(id=cid, name=name, supercategory=name)
                  for cid, name in zip(COCO_CATEGORY_IDS, CocoDataset.METAINFO['classes'])]
    num_anns = num_points = num_crowd = 0
    with open(path, 'w') as f:
        f.write('{"info": {"description": "synthetic train2017-sized set, seed %d"}, '
                '"licenses": [], "categories": %s, "images": %s, "annotations": ['
                % (seed, json.dumps(categories), json.dumps(images)))
        del images
        chunk: List[dict] = []
        for image_id, width, height, count in zip(image_ids, widths, heights, counts):
            if count:
                boxes = _place_boxes(rng, *_box_sizes(rng, count), width, height).round(2)
                categories_of = rng.choice(COCO_CATEGORY_IDS, size=count, p=category_weights)
                crowd = rng.random(count) < 0.01
                fill = rng.uniform(0.45, 0.95, count)
                vertices = rng.integers(6, 43, count)  # COCO's polygons: ~24 points on average
                for box, cat, is_crowd, frac, nv in zip(boxes, categories_of, crowd, fill,
                                                        vertices):
                    num_anns += 1
                    if is_crowd:
                        segmentation = _crowd_rle(box, int(width), int(height))
                        num_crowd += 1
                    else:
                        segmentation = [_polygon(rng, box, int(nv))]
                        num_points += int(nv)
                    chunk.append(dict(
                        id=num_anns, image_id=int(image_id), category_id=int(cat),
                        segmentation=segmentation, area=round(float(box[2] * box[3] * frac), 2),
                        bbox=box.tolist(), iscrowd=int(is_crowd)))
            if len(chunk) >= 20_000:
                f.write(('' if num_anns == len(chunk) else ', ') + json.dumps(chunk)[1:-1])
                chunk = []
        if chunk:
            f.write(('' if num_anns == len(chunk) else ', ') + json.dumps(chunk)[1:-1])
        f.write(']}')
    return dict(images=num_images, annotations=num_anns, crowd=num_crowd,
                polygon_points=num_points, images_without_boxes=int((counts == 0).sum()),
                file_mib=osp.getsize(path) / MIB)


# ----------------------------------------------------------------------------- measurement
# (run in a fresh process: ``python dataset_scale_benchmark.py '<json task>'``)

def memory() -> Dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, KiB."""
    return proc_kib('/proc/self/status', ('VmRSS', 'VmHWM'))


def smaps() -> Dict[str, int]:
    return proc_kib('/proc/self/smaps_rollup', SMAPS_KEYS)


def forked_reads(get: Callable[[int], tuple], size: int, reads: int) -> dict:
    """Fork (as DataLoader starts its workers) and, in the child, read ``reads`` samples with
    ``get`` in a shuffled order; the child's smaps before, after the reads and after a
    gc.collect(). The order is a stride, not an index list, which would itself be copied on
    read."""
    # a stride coprime with size near size / golden ratio: distinct samples all over the
    # index, as a shuffle reads them
    stride = max(1, int(size * 0.618))
    while math.gcd(stride, size) != 1:
        stride += 1
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            os.close(read_end)
            before = smaps()
            index, checksum, path_chars = 0, 0, 0
            for _ in range(reads):
                index = (index + stride) % size
                path, label = get(index)
                checksum += label
                path_chars += len(path)
            after = smaps()
            gc.collect()
            after_gc = smaps()
            report = json.dumps(dict(before=before, after=after, after_gc=after_gc,
                                     label_sum=checksum, path_chars=path_chars))
            os.write(write_end, report.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)
    kib = dict(reads=reads, label_sum=report['label_sum'], path_chars=report['path_chars'],
               before_kib=report['before'], after_kib=report['after'],
               after_gc_kib=report['after_gc'])
    for name, key in (('private_dirty', 'Private_Dirty'), ('uss', None)):
        def value(snapshot, key=key):
            return (snapshot[key] if key else
                    snapshot['Private_Clean'] + snapshot['Private_Dirty'])
        kib[f'{name}_growth_mib'] = (value(report['after']) - value(report['before'])) / 1024
        kib[f'{name}_growth_after_gc_mib'] = (
            value(report['after_gc']) - value(report['before'])) / 1024
    return kib


def plain_list(ann_file: str, root: str) -> List[tuple]:
    """The list of (path, label) tuples as torchvision's DatasetFolder holds it (full paths)."""
    with open(ann_file) as f:
        return [(osp.join(root, path), int(label))
                for path, label in (line.rsplit(None, 1) for line in f if line.strip())]


def _build(task: dict):
    """(object, its length, get(i) -> (path, label) or None) for one task."""
    kind = task['kind']
    if kind == 'serialized':
        from resnext_det.datasets import ImageNetFolder
        dataset = ImageNetFolder(task['root'], ann_file=task['ann_file'])
        return dataset, len(dataset), dataset.get_sample
    if kind == 'tuples':
        samples = plain_list(task['ann_file'], task['root'])
        return samples, len(samples), samples.__getitem__
    if kind == 'scan':
        from resnext_det.datasets import ImageNetFolder
        dataset = ImageNetFolder(task['root'])
        return dataset, len(dataset), None
    if kind in ('coco_ours', 'coco_mmdet'):
        if kind == 'coco_ours':
            from resnext_det.datasets import CocoDataset
        else:
            from mmdet.datasets import CocoDataset
        dataset = CocoDataset(ann_file=task['ann_file'], data_root=task['root'],
                              data_prefix=dict(img='train2017/'),
                              filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[],
                              backend_args=None)
        return dataset, len(dataset), None
    raise ValueError(f'unknown task kind {kind!r}')


def measure(task: dict) -> dict:
    """Build what ``task`` names in this process; seconds, memory, then the forked reads."""
    # import what the build imports first, so that the baseline holds the libraries; the
    # tuples too, so that a worker's gc.collect() walks the same library objects in each
    import mmdet.datasets  # noqa: F401

    import resnext_det.datasets  # noqa: F401
    gc.collect()
    base = memory()
    start = time.perf_counter()
    built, size, get = _build(task)
    seconds = time.perf_counter() - start
    gc.collect()
    after = memory()
    result = dict(kind=task['kind'], samples=size, build_s=seconds,
                  base_rss_mib=base['VmRSS'] / 1024,
                  retained_mib=(after['VmRSS'] - base['VmRSS']) / 1024,
                  peak_rss_mib=after['VmHWM'] / 1024,
                  peak_over_base_mib=(after['VmHWM'] - base['VmRSS']) / 1024)
    if get is not None and task.get('reads'):
        result['worker'] = forked_reads(get, size, task['reads'])
    return result


def run_task(task: dict, log: Callable[[str], None] = lambda msg: None) -> dict:
    """``measure(task)`` in a fresh python process."""
    log(f"measuring {task['kind']} ...")
    # the child imports this package's helpers (analysis_tools), as the tools' callers do
    tools = osp.dirname(osp.dirname(osp.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (tools, os.environ.get('PYTHONPATH')) if p))
    proc = subprocess.run([sys.executable, osp.abspath(__file__), json.dumps(task)],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"measuring {task['kind']} failed (exit {proc.returncode}):\n"
                           f'{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the benchmark

def imagenet_part(work: str, num_samples: int, num_classes: int, scan_classes: int, reads: int,
                  seed: int, log: Callable[[str], None]) -> dict:
    root = osp.join(work, 'imagenet', 'train')
    os.makedirs(root)
    ann_file = osp.join(work, 'imagenet', 'train.txt')
    start = time.perf_counter()
    make_imagenet_list(ann_file, num_samples, num_classes, seed)
    log(f'imagenet list: {num_samples} lines in {time.perf_counter() - start:.1f} s')
    results = {kind: run_task(dict(kind=kind, root=root, ann_file=ann_file, reads=reads), log)
               for kind in ('serialized', 'tuples')}
    scan_classes = min(scan_classes, num_classes)
    start = time.perf_counter()
    files = make_empty_files(root, ann_file, scan_classes)
    log(f'{files} empty files of {scan_classes} classes in {time.perf_counter() - start:.1f} s')
    scan = run_task(dict(kind='scan', root=root), log)
    factor = num_samples / scan['samples']
    scan.update(scanned_classes=scan_classes, scale=factor,
                scaled=dict(samples=num_samples, build_s=scan['build_s'] * factor,
                            retained_mib=scan['retained_mib'] * factor,
                            peak_over_base_mib=scan['peak_over_base_mib'] * factor))
    results['scan'] = scan
    shutil.rmtree(root)
    return dict(samples=num_samples, classes=num_classes, reads=reads,
                list_mib=osp.getsize(ann_file) / MIB, results=results)


def coco_part(work: str, num_images: int, seed: int, log: Callable[[str], None]) -> dict:
    root = osp.join(work, 'coco')
    os.makedirs(osp.join(root, 'train2017'))
    ann_file = osp.join(root, 'instances_train2017.json')
    start = time.perf_counter()
    # the images resnext_det's CocoDataset checks for, empty
    counts = make_coco_train(ann_file, num_images, seed, image_dir=osp.join(root, 'train2017'))
    log(f"coco json: {counts['images']} images, {counts['annotations']} annotations, "
        f"{counts['file_mib']:.0f} MiB in {time.perf_counter() - start:.1f} s")
    results = {kind: run_task(dict(kind=kind, root=root, ann_file=ann_file), log)
               for kind in ('coco_ours', 'coco_mmdet')}
    shutil.rmtree(root)
    return dict(counts=counts, results=results)


def environment() -> dict:
    from analysis_tools.coco_eval_benchmark import environment as machine_and_versions
    return dict(machine_and_versions(('numpy', 'torch', 'mmdet', 'mmengine', 'pycocotools')),
                memory_gib=os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30)


def benchmark(parts=('imagenet', 'coco'), num_samples: int = IMAGENET_TRAIN_IMAGES,
              num_classes: int = IMAGENET_CLASSES, scan_classes: int = 100,
              reads: int = 100_000, coco_images: int = COCO_TRAIN_IMAGES, seed: int = 0,
              tmp_dir: Optional[str] = None, log: Callable[[str], None] = lambda msg: None
              ) -> dict:
    report = dict(config=dict(parts=list(parts), num_samples=num_samples,
                              num_classes=num_classes, scan_classes=scan_classes, reads=reads,
                              coco_images=coco_images, seed=seed),
                  environment=environment())
    work = tempfile.mkdtemp(prefix='dataset_scale_', dir=tmp_dir)
    try:
        if 'imagenet' in parts:
            report['imagenet'] = imagenet_part(work, num_samples, num_classes, scan_classes,
                                               reads, seed, log)
        if 'coco' in parts:
            report['coco'] = coco_part(work, coco_images, seed, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def format_markdown(report: dict) -> str:
    lines = []
    if 'imagenet' in report:
        part = report['imagenet']
        results = part['results']
        lines += [f"ImageNet train list: {part['samples']:,} samples, {part['classes']} classes; "
                  f"a forked worker reads {part['reads']:,} samples' (path, label)", '',
                  '| index | build (s) | retained (MiB) | peak over start (MiB) | worker '
                  'Private_Dirty growth (MiB) | ... after gc.collect() (MiB) |',
                  '|---|---:|---:|---:|---:|---:|']
        names = dict(serialized='ImageNetFolder(ann_file=...): numpy SampleIndex',
                     tuples='list of (path, label) tuples')
        for kind, name in names.items():
            r = results[kind]
            w = r['worker']
            lines.append(f"| {name} | {r['build_s']:.2f} | {r['retained_mib']:.1f} | "
                         f"{r['peak_over_base_mib']:.1f} | {w['private_dirty_growth_mib']:.1f} | "
                         f"{w['private_dirty_growth_after_gc_mib']:.1f} |")
        scan = results['scan']
        s = scan['scaled']
        lines.append(f"| ImageNetFolder folder scan: {scan['samples']:,} files of "
                     f"{scan['scanned_classes']} classes, x{scan['scale']:.2f} | "
                     f"{s['build_s']:.2f} | {s['retained_mib']:.1f} | "
                     f"{s['peak_over_base_mib']:.1f} | (as the first row) | |")
    if 'coco' in report:
        part = report['coco']
        c = part['counts']
        lines += ['' if lines else None,
                  f"COCO train2017-shaped: {c['images']:,} images, {c['annotations']:,} "
                  f"annotations ({c['crowd']:,} crowd), {c['file_mib']:.0f} MiB json", '',
                  '| dataset | images kept | build (s) | retained (MiB) | peak RSS (MiB) | '
                  'peak over start (MiB) |', '|---|---:|---:|---:|---:|---:|']
        names = dict(coco_ours='resnext_det.CocoDataset', coco_mmdet='mmdet CocoDataset')
        for kind, name in names.items():
            r = part['results'][kind]
            lines.append(f"| {name} | {r['samples']:,} | {r['build_s']:.1f} | "
                         f"{r['retained_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
                         f"{r['peak_over_base_mib']:.0f} |")
    return '\n'.join(line for line in lines if line is not None)


if __name__ == '__main__':
    print(json.dumps(measure(json.loads(sys.argv[1]))))
