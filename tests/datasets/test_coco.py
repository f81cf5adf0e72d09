"""Broken annotations are skipped as mmdet skips them, but counted and reported."""
import json

import numpy as np
import pytest
from mmdet.datasets import CocoDataset as MMDetCocoDataset
from PIL import Image

from resnext_det.datasets import CocoDataset

CLASSES = ('circle', 'square')


@pytest.fixture
def broken_coco(tmp_path):
    images = [dict(id=i, file_name=f'{i}.jpg', width=64, height=48) for i in (1, 2, 3, 4)]
    for info in images:
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / info['file_name'])
    anns = [
        dict(id=10, image_id=1, category_id=1, bbox=[4, 4, 20, 20], area=400, iscrowd=0),
        dict(id=11, image_id=2, category_id=99, bbox=[4, 4, 20, 20], area=400, iscrowd=0),
        dict(id=12, image_id=3, category_id=2, bbox=[100, 80, 10, 10], area=100, iscrowd=0),
        dict(id=13, image_id=3, category_id=2, bbox=[10, 10, 0.5, 5], area=0, iscrowd=0),
    ]  # image 4 has no annotation at all
    cats = [dict(id=1, name='circle'), dict(id=2, name='square')]
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return dict(ann_file=str(ann_file), data_root=str(tmp_path),
                data_prefix=dict(img=str(tmp_path) + '/'), metainfo=dict(classes=CLASSES),
                pipeline=[], filter_cfg=dict(filter_empty_gt=True, min_size=1))


def test_same_samples_as_mmdet_but_problems_counted(broken_coco):
    ours = CocoDataset(**broken_coco)
    stock = MMDetCocoDataset(**broken_coco)
    assert len(ours) == len(stock) == 2  # mmdet's filter drops images 2 and 4
    assert [d['instances'] for d in ours] == [d['instances'] for d in stock]
    assert len(ours[0]['instances']) == 1 and not ours[1]['instances']
    assert ours.skipped == {'category id not in the categories': 1,
                            'box outside the image': 1, 'empty or degenerate box': 1}
    assert ours.images_without_annotations == 3
    summary = ours.problem_summary()
    assert 'ann.json' in summary and '2.jpg annotation 11' in summary
    assert '3 image(s) left without usable annotations' in summary


def test_clean_dataset_reports_nothing(broken_coco, tmp_path):
    data = json.loads(open(broken_coco['ann_file']).read())
    data['annotations'] = data['annotations'][:1]
    data['images'] = data['images'][:1]
    clean = tmp_path / 'clean.json'
    clean.write_text(json.dumps(data))
    assert CocoDataset(**dict(broken_coco, ann_file=str(clean))).problem_summary() == ''
