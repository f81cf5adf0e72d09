"""Broken annotations are skipped as mmdet skips them, but counted and reported."""
import json

import numpy as np
import pytest
from mmdet.datasets import CocoDataset as MMDetCocoDataset
from PIL import Image

from resnext_det.datasets import CocoDataset, DatasetError

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


def rewrite(broken_coco, tmp_path, edit, name='edited.json'):
    data = json.loads(open(broken_coco['ann_file']).read())
    edit(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return dict(broken_coco, ann_file=str(path))


def test_annotation_file_that_is_not_json_names_line_and_column(broken_coco, tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(DatasetError, match=r'bad\.json: not valid JSON: .* line 2, column 12'):
        CocoDataset(**dict(broken_coco, ann_file=str(bad)))
    not_coco = tmp_path / 'list.json'
    not_coco.write_text('[1, 2, 3]')
    with pytest.raises(DatasetError, match='list.json: not a COCO annotation file'):
        CocoDataset(**dict(broken_coco, ann_file=str(not_coco)))


def test_missing_images_are_counted_and_named(broken_coco, tmp_path):
    (tmp_path / '2.jpg').unlink()
    (tmp_path / '4.jpg').unlink()
    with pytest.raises(DatasetError, match=r'2 of 4 images listed are missing .*: 2\.jpg, 4\.jpg'):
        CocoDataset(**broken_coco)


@pytest.mark.parametrize('bbox', [[4, 4, float('inf'), 20], [float('nan'), 4, 20, 20]])
def test_non_finite_boxes_stop_naming_the_annotation(broken_coco, tmp_path, bbox):
    def edit(data):
        data['annotations'][0]['bbox'] = bbox
    cfg = rewrite(broken_coco, tmp_path, edit)
    # mmdet keeps an infinite width (NaN losses follow); ours refuses either
    if bbox[2] == float('inf'):
        stock = MMDetCocoDataset(**cfg)
        assert any(not np.isfinite(i['bbox']).all() for d in stock for i in d['instances'])
    with pytest.raises(DatasetError,
                       match=r'1 annotation\(s\) with NaN/inf .*1\.jpg annotation 10'):
        CocoDataset(**cfg)


def test_classes_not_in_the_file_are_named(broken_coco):
    with pytest.raises(DatasetError, match=r"classes triangle are not categories .*circle, square"):
        CocoDataset(**dict(broken_coco, metainfo=dict(classes=('circle', 'triangle'))))


def test_dataset_left_empty_by_filtering_is_an_error(broken_coco, tmp_path):
    def edit(data):
        data['annotations'] = []
    with pytest.raises(DatasetError, match='no images left to train on'):
        CocoDataset(**rewrite(broken_coco, tmp_path, edit))
