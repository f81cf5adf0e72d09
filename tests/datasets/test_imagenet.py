"""ImageNet-format folders: classes, labels, the paper's crops, clear errors."""
import pytest
import torch
from PIL import Image

from resnext_det.datasets import DatasetError, ImageNetFolder


def make_folder(root, classes=('cat', 'dog'), per_class=3, size=(40, 30)):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new('RGB', size, (40 * c, 100, 200)).save(root / name / f'{i}.JPEG')
    return root


def test_samples_labels_and_crops(tmp_path):
    root = make_folder(tmp_path / 'train')
    train = ImageNetFolder(str(root), train=True, crop_size=16)
    assert train.classes == ['cat', 'dog'] and len(train) == 6
    assert [label for _, label in train.samples] == [0, 0, 0, 1, 1, 1]
    item = train[4]
    assert item['inputs'].shape == (3, 16, 16) and item['inputs'].dtype == torch.uint8
    assert item['data_samples'] == 1
    val = ImageNetFolder(str(root), train=False, crop_size=16, resize_size=20)
    assert val[0]['inputs'].shape == (3, 16, 16)
    assert torch.equal(val[0]['inputs'], val[0]['inputs'])  # test-time crops are deterministic


def test_missing_folder_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / 'nope')):
        ImageNetFolder(str(tmp_path / 'nope'))


def test_class_folder_without_images_is_named(tmp_path):
    root = make_folder(tmp_path / 'train')
    (root / 'empty_class').mkdir()
    (root / 'empty_class' / 'notes.txt').write_text('not an image')
    with pytest.raises(DatasetError, match='empty_class'):
        ImageNetFolder(str(root))
    (tmp_path / 'flat').mkdir()
    with pytest.raises(DatasetError, match='no class sub-folders'):
        ImageNetFolder(str(tmp_path / 'flat'))
    with pytest.raises(DatasetError, match='ghost'):
        ImageNetFolder(str(root), classes=['cat', 'ghost'])


def test_corrupt_image_names_the_file(tmp_path):
    root = make_folder(tmp_path / 'train', per_class=1)
    (root / 'cat' / '0.JPEG').write_bytes(b'not a jpeg')
    dataset = ImageNetFolder(str(root), train=False, crop_size=8, resize_size=8)
    with pytest.raises(RuntimeError, match=r'cat/0\.JPEG'):
        dataset[0]
