"""A small synthetic dataset of coloured shapes, so the detectors and the classifier can be
trained and tested end to end without downloading COCO or ImageNet.

`make_demo_data(out_dir)` writes, all determined by `seed`:

    out_dir/coco/{train,val}/000001.jpg ...          detection / instance segmentation images
    out_dir/coco/annotations/instances_{train,val}.json
    out_dir/imagenet/{train,val}/<class>/<class>_00000.JPEG ...   object crops, one folder a class
    out_dir/imagenet/meta/{classes,train,val}.txt
    out_dir/DONE.json                                the parameters; written last

The default size is meant for a tiny Faster/Mask R-CNN to learn something on 2 CPU cores in about
ten minutes. Only numpy, Pillow and the standard library are used, and nothing from resnext_det,
so the module can be loaded on its own.
"""
import colorsys
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import OutputExistsError

CLASSES = ('circle', 'square', 'triangle', 'star')

# Bump when the generator's output changes for the same parameters, so that an old dataset is
# not silently reused as if it were the current one.
FORMAT_VERSION = 1

# Independent random streams: every image or crop gets its own generator seeded with
# (seed, stream, index), so the validation set does not change when only num_train does.
_DET_STREAMS = {'train': 0, 'val': 1}
_CLS_STREAMS = {'train': 2, 'val': 3}

_MAX_OBJECTS = 4
_PLACEMENT_TRIES = 50
_MIN_CONTRAST = 80  # Euclidean RGB distance between an object and the background under it
_PIXEL_NOISE = 5.0  # std of the per-pixel noise over the whole image, in 0..255 units


def make_demo_data(out_dir, seed=0, num_train=300, num_val=60, image_size=(192, 192),
                   num_cls_per_class=300, num_cls_val_per_class=50, crop_size=64,
                   object_size=(24, 90), overwrite=False):
    """Generate the demo dataset into `out_dir` unless it is already there, and describe it.

    Args:
        out_dir: the dataset root (created; its parent is created too).
        seed: everything generated depends on this and the other parameters only.
        num_train, num_val: detection images per split.
        image_size: (H, W) of the detection images.
        num_cls_per_class, num_cls_val_per_class: classification crops per class, train and val.
        crop_size: side of the square classification crops.
        object_size: (min, max) of an object's longer bounding-box side, in pixels.
        overwrite: replace an existing demo dataset that was made with other parameters.

    Returns:
        dict of paths (str), `classes`, `counts`, and `generated` (False when an existing
        complete dataset with the same parameters was reused).

    Raises:
        ValueError: `out_dir` holds a dataset with other parameters and `overwrite` is False,
            or it holds something this function did not write (never deleted, even with
            `overwrite`), or a parameter is out of range.
    """
    out_dir = Path(out_dir)
    height, width = (int(s) for s in image_size)
    params = dict(
        format_version=FORMAT_VERSION, seed=int(seed), num_train=int(num_train),
        num_val=int(num_val), image_size=[height, width], num_cls_per_class=int(num_cls_per_class),
        num_cls_val_per_class=int(num_cls_val_per_class), crop_size=int(crop_size),
        object_size=[int(s) for s in object_size], classes=list(CLASSES))
    _check_params(params)

    if _already_there(out_dir, params, overwrite):
        return _describe(out_dir, _read_done(out_dir)['counts'], generated=False)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.with_name(f'{out_dir.name}.tmp-{os.getpid()}')
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        counts = _generate(tmp_dir, params)
        _write_json(tmp_dir / 'DONE.json', dict(params=params, counts=counts))
        _move_into_place(tmp_dir, out_dir, params, overwrite)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return _describe(out_dir, counts, generated=True)


def _check_params(params):
    height, width = params['image_size']
    min_size, max_size = params['object_size']
    if params['num_train'] < 1 or params['num_val'] < 1:
        raise ValueError('num_train and num_val must be at least 1')
    if params['num_cls_per_class'] < 1 or params['num_cls_val_per_class'] < 1:
        raise ValueError('num_cls_per_class and num_cls_val_per_class must be at least 1')
    if not 8 <= min_size <= max_size:
        raise ValueError(f'object_size={params["object_size"]} must be (min, max), 8 <= min <= max')
    if max_size > min(height, width) - 2:
        raise ValueError(f'object_size max {max_size} does not fit image_size='
                         f'{params["image_size"]} (it must be at most min(H, W) - 2)')
    if params['crop_size'] < 8:
        raise ValueError('crop_size must be at least 8')


def _read_done(out_dir):
    """The DONE.json record, or None if out_dir is not a complete dataset made here."""
    try:
        record = json.loads((out_dir / 'DONE.json').read_text())
    except (OSError, ValueError):
        return None
    valid = isinstance(record, dict) and isinstance(record.get('params'), dict)
    return record if valid and 'counts' in record else None


def _already_there(out_dir, params, overwrite):
    """True if out_dir holds this very dataset; False if it is absent or may be replaced (an
    empty folder, or a demo dataset with other parameters and overwrite asked for).

    Raises OutputExistsError otherwise. A folder without DONE.json is never replaced: it may
    hold data that is not ours."""
    if not out_dir.exists():
        return False
    record = _read_done(out_dir)
    if record is None:
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            return False
        raise OutputExistsError(out_dir, 'exists but is not a complete demo dataset (no valid '
                                'DONE.json)', fix='remove it or choose another out_dir')
    if record['params'] == params:
        return True
    if not overwrite:
        diff = ', '.join(f'{key}: {record["params"].get(key)!r} there, {value!r} asked'
                         for key, value in params.items() if record['params'].get(key) != value)
        raise OutputExistsError(out_dir, f'holds a demo dataset made with different '
                                f'parameters ({diff})',
                                fix='pass overwrite=True (--overwrite) to replace it')
    return False


def _move_into_place(tmp_dir, out_dir, params, overwrite):
    """Rename the finished tmp_dir to out_dir, so out_dir is never seen half-written.

    out_dir is checked again, as another process may have written it meanwhile: the same
    dataset is kept; an older one being overwritten is moved aside first and deleted only once
    the new one is in place."""
    if _already_there(out_dir, params, overwrite):
        return
    old_dir = None
    if out_dir.exists():
        old_dir = out_dir.with_name(f'{out_dir.name}.old-{os.getpid()}')
        os.rename(out_dir, old_dir)
    os.rename(tmp_dir, out_dir)
    if old_dir is not None:
        shutil.rmtree(old_dir)


def _describe(out_dir, counts, generated):
    coco, imagenet = out_dir / 'coco', out_dir / 'imagenet'
    return dict(
        out_dir=str(out_dir), coco_root=str(coco),
        train_img_dir=str(coco / 'train'), val_img_dir=str(coco / 'val'),
        train_ann_file=str(coco / 'annotations' / 'instances_train.json'),
        val_ann_file=str(coco / 'annotations' / 'instances_val.json'),
        imagenet_root=str(imagenet), classes_file=str(imagenet / 'meta' / 'classes.txt'),
        classes=list(CLASSES), counts=dict(counts), generated=generated)


def _generate(root, params):
    counts = {}
    for split, num_images in (('train', params['num_train']), ('val', params['num_val'])):
        coco = _make_coco_split(root / 'coco', split, num_images, params)
        counts[f'{split}_images'] = len(coco['images'])
        counts[f'{split}_objects'] = len(coco['annotations'])

    meta = root / 'imagenet' / 'meta'
    meta.mkdir(parents=True)
    (meta / 'classes.txt').write_text(''.join(f'{name}\n' for name in CLASSES))
    for split, per_class in (('train', params['num_cls_per_class']),
                             ('val', params['num_cls_val_per_class'])):
        lines = _make_cls_split(root / 'imagenet', split, per_class, params)
        (meta / f'{split}.txt').write_text(''.join(lines))
        counts[f'cls_{split}_images'] = len(lines)
    return counts


def _make_coco_split(coco_root, split, num_images, params):
    height, width = params['image_size']
    image_dir = coco_root / split
    image_dir.mkdir(parents=True)
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([params['seed'], _DET_STREAMS[split], index])
        num_objects = int(rng.integers(1, _MAX_OBJECTS + 1))
        labels = rng.integers(0, len(CLASSES), num_objects)
        image, objects = _render_scene(rng, height, width, labels, params['object_size'])
        image_id = index + 1
        file_name = f'{image_id:06d}.jpg'
        # full-resolution colour (4:4:4): the default 4:2:0 chroma subsampling bleeds the
        # object's colour a pixel or two across the edges its polygon describes
        image.save(image_dir / file_name, quality=95, subsampling=0)
        images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
        for obj in objects:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=obj['label'] + 1,
                segmentation=[obj['polygon']], area=obj['area'], bbox=obj['bbox'], iscrowd=0))
    coco = dict(
        info=dict(description=f'resnext_det synthetic shapes, {split}', version=FORMAT_VERSION),
        images=images, annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='shape')
                    for i, name in enumerate(CLASSES)])
    _write_json(coco_root / 'annotations' / f'instances_{split}.json', coco)
    return coco


def _make_cls_split(imagenet_root, split, per_class, params):
    """Write per_class crops of each class; return the `<class>/<file> <label>` list lines.

    Each crop comes from its own scene whose first object, placed on an empty canvas so it is
    always complete, is the labelled one; the other objects only add context at the edges."""
    height, width = params['image_size']
    crop_size = params['crop_size']
    lines = []
    for label, name in enumerate(CLASSES):
        class_dir = imagenet_root / split / name
        class_dir.mkdir(parents=True)
        for k in range(per_class):
            rng = np.random.default_rng(
                [params['seed'], _CLS_STREAMS[split], label * per_class + k])
            labels = [label] + list(rng.integers(0, len(CLASSES), rng.integers(0, 3)))
            image, objects = _render_scene(rng, height, width, labels, params['object_size'])
            box = _context_box(rng, objects[0]['bbox'], height, width)
            crop = image.crop(box).resize((crop_size, crop_size), Image.BILINEAR)
            file_name = f'{name}_{k:05d}.JPEG'
            crop.save(class_dir / file_name, quality=95, subsampling=0)
            lines.append(f'{name}/{file_name} {label}\n')
    return lines


def _context_box(rng, bbox, height, width):
    """A square crop box around bbox (xywh) with a random 10-40% margin and offset, shifted to
    lie inside the image."""
    x, y, w, h = bbox
    side = max(w, h) * (1 + 2 * rng.uniform(0.1, 0.4))
    side = int(round(min(side, height, width)))
    cx = x + w / 2 + rng.uniform(-0.1, 0.1) * side
    cy = y + h / 2 + rng.uniform(-0.1, 0.1) * side
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + side, top + side


def _render_scene(rng, height, width, labels, object_size):
    """Draw objects of the given labels on a textured background, never overlapping.

    Objects do not share pixels (a candidate that would is re-placed, and dropped after
    _PLACEMENT_TRIES), so every polygon is fully visible and its mask area is exact; boxes may
    still overlap. The first object is always placed. Returns the RGB image and, per object,
    label, polygon (COCO, flat list), bbox (xywh) and area (pixels)."""
    background = _background(rng, height, width)
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    occupied = np.zeros((height, width), bool)
    objects = []
    for label in labels:
        for _ in range(_PLACEMENT_TRIES):
            vertices = _place(rng, _shape(rng, CLASSES[label]), height, width, object_size)
            mask = _rasterize(vertices, height, width)
            if not (mask & occupied).any():
                break
        else:
            continue
        occupied |= mask
        draw.polygon(vertices, fill=_object_colour(rng, background[mask].mean(axis=0)))
        objects.append(_annotation(int(label), vertices, int(mask.sum())))

    pixels = np.asarray(image, np.float32)
    # uniform rather than Gaussian noise of the same std: several times cheaper to draw
    pixels += (rng.random(pixels.shape, dtype=np.float32) - 0.5) * (_PIXEL_NOISE * math.sqrt(12))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)), objects


def _annotation(label, vertices, area):
    """COCO annotation of a polygon drawn with PIL at integer vertices.

    PIL fills the pixels whose centres lie in the polygon, taking pixel (i, j) to be centred at
    (i, j); in COCO's continuous coordinates that pixel spans [i, i+1] and is centred at
    (i+.5, j+.5). So the vertices shifted by half a pixel give the polygon whose inside holds
    the centres of exactly the drawn pixels (pycocotools' masks of it differ only at the edge)."""
    polygon = [float(c) + 0.5 for vertex in vertices for c in vertex]
    xs, ys = polygon[0::2], polygon[1::2]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return dict(label=label, polygon=polygon, bbox=bbox, area=area)


def _shape(rng, name):
    """Unit-scale outline of the named shape, randomly rotated, as an (N, 2) array."""
    if name == 'circle':
        angles = np.arange(32) * (2 * math.pi / 32)
        radii = np.ones(32)
    elif name == 'square':
        angles = np.arange(4) * (math.pi / 2)
        radii = np.ones(4)
    elif name == 'triangle':
        # irregular but clearly three-cornered: each corner is jittered by up to 20 degrees
        angles = np.radians(np.array([0, 120, 240]) + rng.uniform(-20, 20, 3))
        radii = np.ones(3)
    elif name == 'star':
        angles = np.arange(10) * (math.pi / 5)
        radii = np.tile([1.0, rng.uniform(0.38, 0.55)], 5)
    else:
        raise ValueError(f'unknown shape {name!r}')
    angles = angles + rng.uniform(0, 2 * math.pi)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _place(rng, outline, height, width, object_size):
    """Scale the outline so its longer box side is a log-uniform size in object_size (small
    objects are as common per octave as large ones), put it at a random position fully inside
    the image, and round to integer vertices, dropping repeats that rounding creates."""
    min_size, max_size = object_size
    size = math.exp(rng.uniform(math.log(min_size), math.log(max_size)))
    extent = outline.max(axis=0) - outline.min(axis=0)
    points = (outline - outline.min(axis=0)) * (size / extent.max())
    span = points.max(axis=0)
    offset = rng.uniform(0, 1, 2) * ([width - 1, height - 1] - span)
    vertices = []
    for x, y in np.round(points + offset).astype(int).tolist():
        if not vertices or (x, y) != vertices[-1]:
            vertices.append((x, y))
    if vertices[0] == vertices[-1]:
        vertices.pop()
    return vertices


def _rasterize(vertices, height, width):
    mask = Image.new('L', (width, height), 0)
    ImageDraw.Draw(mask).polygon(vertices, fill=1)
    return np.asarray(mask, bool)


def _object_colour(rng, under):
    """A saturated colour that stands out from `under`, the mean background colour beneath the
    object: the class is in the shape, never in the colour, so any hue will do."""
    for _ in range(_PLACEMENT_TRIES):
        colour = _hsv(rng.uniform(0, 1), rng.uniform(0.55, 1.0), rng.uniform(0.45, 1.0))
        if np.linalg.norm(colour - under) >= _MIN_CONTRAST:
            break
    return tuple(int(c) for c in np.round(colour))


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h, s, v)) * 255.0


def _muted(rng):
    return _hsv(rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.2, 0.9))


def _background(rng, height, width):
    """A float (H, W, 3) texture in muted colours: a gradient, stripes or smooth blobs, with
    smooth noise on top, so objects must be told from a varied background, not from flat grey."""
    kind = rng.integers(3)
    angle = rng.uniform(0, 2 * math.pi)
    along = (np.arange(width, dtype=np.float32)[None, :] * math.cos(angle)
             + np.arange(height, dtype=np.float32)[:, None] * math.sin(angle))
    if kind == 0:
        t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
    elif kind == 1:
        period, phase = rng.uniform(8, 40), rng.uniform(0, 2 * math.pi)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * along / period + phase)
    else:
        t = _smooth_noise(rng, height, width, 1)[..., 0]
    first, second = _muted(rng).astype(np.float32), _muted(rng).astype(np.float32)
    texture = first + t[..., None] * (second - first)
    return texture + (_smooth_noise(rng, height, width, 3) - 0.5) * np.float32(rng.uniform(20, 60))


def _smooth_noise(rng, height, width, channels):
    """Noise in [0, 1] that varies over a few tens of pixels: a coarse random grid, upsampled."""
    cells = int(rng.integers(3, 9))
    coarse = rng.uniform(0, 255, (cells, cells, channels)).astype(np.uint8)
    image = Image.fromarray(coarse if channels == 3 else coarse[..., 0])
    smooth = np.asarray(image.resize((width, height), Image.BICUBIC), np.float32) / 255.0
    return smooth.reshape(height, width, channels)


def _write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(',', ':')) + '\n')
