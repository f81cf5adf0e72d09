"""The synthetic demo dataset is valid COCO / ImageNet-folder data, deterministic, and safe to
re-run."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from resnext_det.demo import make_data as demo_data
from resnext_det.errors import OutputExistsError

SMALL = dict(num_train=8, num_val=4, image_size=(128, 160), num_cls_per_class=5,
             num_cls_val_per_class=2, object_size=(20, 60))


def make(out_dir, **overrides):
    return demo_data.make_demo_data(out_dir, **{**SMALL, **overrides})


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return make(tmp_path_factory.mktemp('demo') / 'data')


def load(path):
    return json.loads(Path(path).read_text())


def all_files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(Path(root).rglob('*'))
            if p.is_file()}


def test_layout_and_counts(dataset):
    root = Path(dataset['out_dir'])
    assert dataset['generated']
    assert not list(root.parent.glob('*.tmp-*')), 'the temporary directory was left behind'
    assert sorted(p.name for p in (root / 'coco' / 'train').iterdir()) == [
        f'{i:06d}.jpg' for i in range(1, 9)]
    assert len(list((root / 'coco' / 'val').iterdir())) == 4
    counts = dataset['counts']
    assert (counts['train_images'], counts['val_images']) == (8, 4)
    assert counts['train_objects'] >= 8 and counts['val_objects'] >= 4
    assert load(root / 'DONE.json')['params']['seed'] == 0

    classes = Path(dataset['classes_file']).read_text().split()
    assert classes == dataset['classes'] == list(demo_data.CLASSES)
    for split, per_class in (('train', 5), ('val', 2)):
        split_dir = root / 'imagenet' / split
        assert sorted(p.name for p in split_dir.iterdir()) == sorted(classes)
        for name in classes:
            crops = sorted((split_dir / name).glob('*.JPEG'))
            assert len(crops) == per_class
            assert Image.open(crops[0]).size == (64, 64)
        assert counts[f'cls_{split}_images'] == per_class * len(classes)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_are_consistent(dataset, split):
    coco = load(dataset[f'{split}_ann_file'])
    images = {img['id']: img for img in coco['images']}
    assert len(images) == len(coco['images']), 'image ids are not unique'
    category_ids = {cat['id'] for cat in coco['categories']}
    assert category_ids == set(range(1, len(demo_data.CLASSES) + 1))
    assert len({ann['id'] for ann in coco['annotations']}) == len(coco['annotations'])

    for img in coco['images']:
        with Image.open(Path(dataset[f'{split}_img_dir']) / img['file_name']) as im:
            assert im.size == (img['width'], img['height']) == (160, 128)

    for ann in coco['annotations']:
        img = images[ann['image_id']]
        assert ann['category_id'] in category_ids
        assert ann['iscrowd'] == 0 and ann['area'] > 0
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and w > 0 and h > 0
        assert x + w <= img['width'] and y + h <= img['height']
        [polygon] = ann['segmentation']
        assert len(polygon) >= 6 and len(polygon) % 2 == 0
        xs, ys = polygon[0::2], polygon[1::2]
        np.testing.assert_allclose(
            ann['bbox'], [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], atol=1)


def test_polygon_matches_drawn_pixels(dataset):
    """Rasterising the annotation polygon gives `area` pixels, and those pixels are one solid
    colour up to noise and JPEG: the polygon is where the object was drawn."""
    coco = load(dataset['train_ann_file'])
    for ann in coco['annotations'][:10]:
        img = coco['images'][ann['image_id'] - 1]
        # the polygon is in COCO coordinates (pixel i spans [i, i+1]); PIL centres pixel i at i
        xy = [c - 0.5 for c in ann['segmentation'][0]]
        mask_image = Image.new('L', (img['width'], img['height']))
        ImageDraw.Draw(mask_image).polygon(list(zip(xy[0::2], xy[1::2])), fill=1)
        mask = np.asarray(mask_image, bool)
        assert mask.sum() == ann['area']

        with Image.open(Path(dataset['train_img_dir']) / img['file_name']) as im:
            pixels = np.asarray(im.convert('RGB'), np.float32)
        inside = pixels[mask]
        # ~7 from noise and JPEG; a polygon off by a pixel takes in background: typically 15-30
        assert inside.std(axis=0).max() < 12, 'the polygon does not cover one solid colour'


def test_pycocotools_mask_area_matches(dataset):
    from pycocotools import coco as coco_module
    coco = coco_module.COCO(dataset['train_ann_file'])
    for ann in coco.dataset['annotations'][:10]:
        mask = coco.annToMask(ann)
        assert mask.shape == (128, 160)
        assert mask.sum() == pytest.approx(ann['area'], rel=0.2)


def test_same_seed_gives_identical_files(dataset, tmp_path):
    again = make(tmp_path / 'again')
    first, second = all_files(dataset['out_dir']), all_files(again['out_dir'])
    assert first.keys() == second.keys()
    assert first == second
    assert again['counts'] == dataset['counts']


def test_other_seed_gives_other_data(dataset, tmp_path):
    other = make(tmp_path / 'other', seed=1)
    assert load(other['train_ann_file']) != load(dataset['train_ann_file'])


def test_val_split_does_not_depend_on_num_train(dataset, tmp_path):
    more = make(tmp_path / 'more', num_train=10)
    assert Path(more['val_ann_file']).read_bytes() == Path(dataset['val_ann_file']).read_bytes()


def test_rerun_is_a_no_op(tmp_path):
    out = tmp_path / 'data'
    first = make(out)
    marker = out / 'coco' / 'train' / '000001.jpg'
    before = marker.stat().st_mtime_ns
    second = make(out)
    assert not second['generated']
    assert second['counts'] == first['counts']
    assert marker.stat().st_mtime_ns == before


def test_other_params_need_overwrite(tmp_path):
    out = tmp_path / 'data'
    make(out)
    with pytest.raises(OutputExistsError,
                       match=r'different parameters \(num_train: 8 there, 6 asked'):
        make(out, num_train=6)
    assert load(out / 'DONE.json')['params']['num_train'] == 8

    replaced = make(out, num_train=6, overwrite=True)
    assert replaced['generated'] and replaced['counts']['train_images'] == 6
    assert len(list((out / 'coco' / 'train').iterdir())) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data']


def test_foreign_directory_is_never_deleted(tmp_path):
    out = tmp_path / 'data'
    out.mkdir()
    (out / 'mine.txt').write_text('keep me')
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match='not a complete demo dataset'):
            make(out, overwrite=overwrite)
    assert (out / 'mine.txt').read_text() == 'keep me'


def test_empty_directory_is_filled(tmp_path):
    out = tmp_path / 'data'
    out.mkdir()
    assert make(out)['generated']
    assert (out / 'DONE.json').is_file()
