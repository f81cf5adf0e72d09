"""The full-scale dataset benchmark (tools/benchmark_datasets.py): its generated ImageNet list
and COCO json are what the readers expect, the forked-read measurement sees copy-on-read, and a
tiny run reports every number, consistently."""
import json
import os.path as osp

import numpy as np
import pytest
from analysis_tools.dataset_scale_benchmark import (
    forked_reads,
    imagenet_class_counts,
    make_coco_train,
    make_empty_files,
    make_imagenet_list,
    plain_list,
)
from pycocotools.coco import COCO

from resnext_det.datasets import ImageNetFolder


def test_imagenet_list_reads_the_same_every_way(tmp_path):
    ann_file = str(tmp_path / 'train.txt')
    wnids = make_imagenet_list(ann_file, num_samples=700, num_classes=7, seed=1)
    assert wnids == sorted(wnids) and all(len(w) == 9 and w[0] == 'n' for w in wnids)
    dataset = ImageNetFolder(str(tmp_path), ann_file=ann_file)
    assert dataset.classes == wnids and len(dataset) == 700
    counts = np.bincount(dataset.samples.labels, minlength=7)
    assert counts.tolist() == imagenet_class_counts(700, 7, seed=1).tolist()
    assert list(dataset.samples) == plain_list(ann_file, str(tmp_path))  # the two indexes
    path, label = dataset.get_sample(0)
    assert path == osp.join(str(tmp_path), wnids[0], osp.basename(path)) and label == 0
    assert osp.basename(path).startswith(wnids[0] + '_') and path.endswith('.JPEG')
    again = str(tmp_path / 'again.txt')
    make_imagenet_list(again, num_samples=700, num_classes=7, seed=1)
    assert open(again).read() == open(ann_file).read()
    root = tmp_path / 'train'
    made = make_empty_files(str(root), ann_file, classes=2)
    scanned = ImageNetFolder(str(root))
    assert made == len(scanned) == counts[:2].sum() and scanned.classes == wnids[:2]
    assert list(scanned.samples) == plain_list(ann_file, str(root))[:made]


def test_coco_json_is_valid_coco(tmp_path):
    ann_file = str(tmp_path / 'instances.json')
    counts = make_coco_train(ann_file, num_images=40, seed=2, image_dir=str(tmp_path))
    coco = COCO(ann_file)
    assert len(coco.imgs) == counts['images'] == 40 and len(coco.cats) == 80
    assert len(coco.anns) == counts['annotations'] > 40 * 3
    assert all(osp.isfile(tmp_path / img['file_name']) for img in coco.imgs.values())
    for ann in coco.anns.values():
        img = coco.imgs[ann['image_id']]
        x, y, w, h = ann['bbox']
        if ann['iscrowd']:
            assert sum(ann['segmentation']['counts']) == img['width'] * img['height']
        else:
            (polygon,) = ann['segmentation']
            xs, ys = np.array(polygon[::2]), np.array(polygon[1::2])
            assert len(polygon) % 2 == 0 and len(xs) >= 6
            assert xs.min() >= x - 0.01 and xs.max() <= x + w + 0.01
            assert ys.min() >= y - 0.01 and ys.max() <= y + h + 0.01
        coco.annToMask(ann)  # pycocotools can rasterise it
    make_coco_train(str(tmp_path / 'again.json'), num_images=40, seed=2)
    assert open(tmp_path / 'again.json').read() == open(ann_file).read()


def test_forked_reads_see_copy_on_read(tmp_path):
    """A worker reading a list of tuples copies pages; reading the numpy index does not."""
    ann_file = str(tmp_path / 'train.txt')
    make_imagenet_list(ann_file, num_samples=200_000, num_classes=50, seed=0)
    dataset = ImageNetFolder(str(tmp_path), ann_file=ann_file)
    samples = plain_list(ann_file, str(tmp_path))
    indexed = forked_reads(dataset.get_sample, len(dataset), reads=50_000)
    listed = forked_reads(samples.__getitem__, len(samples), reads=50_000)
    assert indexed['label_sum'] == listed['label_sum'] > 0  # the same samples were read
    assert indexed['path_chars'] == listed['path_chars']
    assert listed['private_dirty_growth_mib'] > 5
    assert listed['private_dirty_growth_mib'] > 4 * indexed['private_dirty_growth_mib']


@pytest.mark.slow  # five fresh python processes that import torch and mmdet: ~45 s
def test_tiny_run_reports_every_number(tmp_path, run_tool):
    out = tmp_path / 'datasets.json'
    args = ['--num', 3000, '--classes', 20, '--scan-classes', 4, '--reads', 2000,
            '--coco-images', 300, '--tmp', tmp_path, '--out', out, '--md', tmp_path / 't.md']
    proc = run_tool('benchmark_datasets.py', *args, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report['config']['command'].startswith('python tools/benchmark_datasets.py --num 3000')
    assert report['config']['wall_s'] > 0
    imagenet = report['imagenet']['results']
    for kind in 'serialized', 'tuples':
        result = imagenet[kind]
        assert result['samples'] == 3000 and result['build_s'] > 0
        assert result['peak_rss_mib'] >= result['base_rss_mib'] > 0
        worker = result['worker']
        assert worker['reads'] == 2000
        assert worker['after_kib']['Rss'] > 0 and 'Private_Dirty' in worker['before_kib']
    # both read the same samples
    assert imagenet['serialized']['worker']['label_sum'] == imagenet['tuples']['worker'][
        'label_sum']
    assert imagenet['serialized']['worker']['path_chars'] == imagenet['tuples']['worker'][
        'path_chars']
    scan = imagenet['scan']
    assert scan['scanned_classes'] == 4 and 0 < scan['samples'] < 3000
    assert scan['scaled']['samples'] == 3000
    assert scan['scaled']['build_s'] == pytest.approx(scan['build_s'] * 3000 / scan['samples'])
    coco = report['coco']
    assert coco['counts']['images'] == 300 and coco['counts']['annotations'] > 300
    ours, stock = coco['results']['coco_ours'], coco['results']['coco_mmdet']
    assert ours['samples'] == stock['samples'] > 0  # the same images kept by the filter
    assert ours['samples'] <= 300 - coco['counts']['images_without_boxes']
    table = (tmp_path / 't.md').read_text()
    assert table.strip() == report['markdown'].strip() and table in proc.stdout
    for name in 'numpy SampleIndex', 'tuples', 'folder scan', 'resnext_det.CocoDataset', \
            'mmdet CocoDataset':
        assert name in table
