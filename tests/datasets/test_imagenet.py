"""ImageNet-format data: folders and mmpretrain annotation lists give the same samples; classes,
labels, the paper's crops, clear errors; samples stored without a Python object each."""
import gc
import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from resnext_det.datasets import DatasetError, ImageNetFolder
from resnext_det.datasets.imagenet import SampleIndex


def make_folder(root, classes=('cat', 'dog'), per_class=3, size=(40, 30)):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new('RGB', size, (40 * c, 100, 200)).save(root / name / f'{i}.JPEG')
    return root


def write_list(path, lines):
    path.write_text(''.join(line + '\n' for line in lines))
    return str(path)


def folder_list(root):
    """mmpretrain's train.txt of a folder: '<class>/<file> <label>' in torchvision's order."""
    return [f'{p[len(str(root)) + 1:]} {label}' for p, label in ImageFolder(str(root)).samples]


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


def test_folder_scan_and_list_match_torchvision(tmp_path):
    root = make_folder(tmp_path / 'train', classes=('n02', 'n01', 'n10'), per_class=2)
    reference = ImageFolder(str(root))  # torchvision's DatasetFolder: the reference
    scanned = ImageNetFolder(str(root))
    ann_file = write_list(tmp_path / 'train.txt', folder_list(root))
    listed = ImageNetFolder(str(root), ann_file=ann_file)
    for dataset in scanned, listed:
        assert dataset.classes == reference.classes == ['n01', 'n02', 'n10']
        assert dataset.metainfo == dict(classes=('n01', 'n02', 'n10'))
        assert list(dataset.samples) == reference.samples
        assert [dataset.get_sample(i) for i in range(len(dataset))] == reference.samples
    assert listed.samples[-1] == reference.samples[-1] and listed.samples[1:3] == \
        reference.samples[1:3]
    assert listed[3]['data_samples'] == reference.samples[3][1]  # decodes the listed path


def test_list_format_like_mmpretrain(tmp_path):
    """Blank lines skipped, split at the last blank (paths may hold spaces), CRLF, extra blanks;
    classes given (names or a file of names) allow a flat list, as mmpretrain's val.txt."""
    lines = ['', 'b/x y.JPEG 1\r', '  a/1.JPEG\t0  ', '', 'b/2.JPEG   1', '   ']
    ann_file = write_list(tmp_path / 'train.txt', lines)
    dataset = ImageNetFolder(str(tmp_path), ann_file=ann_file)
    assert dataset.classes == ['a', 'b']
    assert list(dataset.samples) == [(str(tmp_path / 'b/x y.JPEG'), 1),
                                     (str(tmp_path / 'a/1.JPEG'), 0),
                                     (str(tmp_path / 'b/2.JPEG'), 1)]
    val_list = write_list(tmp_path / 'val.txt', ['ILSVRC2012_val_00000001.JPEG 2',
                                                 'ILSVRC2012_val_00000002.JPEG 0'])
    names = ['tench', 'goldfish', 'shark']
    (tmp_path / 'classes.txt').write_text('\n'.join(names) + '\n')
    for classes in names, str(tmp_path / 'classes.txt'):
        val = ImageNetFolder(str(tmp_path), ann_file=val_list, classes=classes)
        assert val.classes == names
        assert list(val.samples) == [(str(tmp_path / 'ILSVRC2012_val_00000001.JPEG'), 2),
                                     (str(tmp_path / 'ILSVRC2012_val_00000002.JPEG'), 0)]


@pytest.mark.parametrize('lines, classes, match', [
    (['a/1.JPEG 0', '', 'a/2.JPEG'], None, r'train\.txt, line 3: .a/2\.JPEG. is not'),
    (['a/1.JPEG 0', 'a/2.JPEG zero'], None, r'line 2: .*not a non-negative integer'),
    (['a/1.JPEG 0', 'a/2.JPEG -1'], None, r'line 2: .*not a non-negative integer'),
    (['a/1.JPEG 0', 'b/2.JPEG 3'], ['a', 'b'], r'line 2: .*out of range for the 2 classes'),
    (['a/1.JPEG 0', 'b/2.JPEG 0'], None, r'line 2: .*folder b is class 1 .*pass classes'),
    (['a/1.JPEG 0', '2.JPEG 0'], None, r'line 2: .*no class folder.*classes'),
    (['', '  ', ''], None, r'train\.txt: holds no sample'),
])
def test_bad_lists_name_file_line_and_fix(tmp_path, lines, classes, match):
    ann_file = write_list(tmp_path / 'train.txt', lines)
    with pytest.raises(DatasetError, match=match):
        ImageNetFolder(str(tmp_path), ann_file=ann_file, classes=classes)


def test_missing_list_root_or_class_file(tmp_path):
    with pytest.raises(DatasetError, match=r'nope\.txt: cannot be read .*ann_file=None'):
        ImageNetFolder(str(tmp_path), ann_file=str(tmp_path / 'nope.txt'))
    ann_file = write_list(tmp_path / 'train.txt', ['a/1.JPEG 0'])
    with pytest.raises(DatasetError, match=r'ghost .data_root of .*train\.txt. does not exist'):
        ImageNetFolder(str(tmp_path / 'ghost'), ann_file=ann_file)
    with pytest.raises(DatasetError, match=r'classes\.txt: cannot be read'):
        ImageNetFolder(str(tmp_path), ann_file=ann_file, classes=str(tmp_path / 'classes.txt'))


def reachable(obj, skip_types=(type(sys), type, type(len), type(gc.collect))):
    """Every object reachable from ``obj`` by gc references (modules, classes, functions not
    followed): what a forked worker might touch, one object per sample or not."""
    seen, todo = {id(obj)}, [obj]
    while todo:
        for ref in gc.get_referents(todo.pop()):
            if id(ref) not in seen and not isinstance(ref, skip_types):
                seen.add(id(ref))
                todo.append(ref)
    return len(seen)


@pytest.mark.parametrize('use_list', [False, True])
def test_no_python_object_per_sample(tmp_path, use_list):
    """Ten times the samples, the same number of Python objects: nothing per sample a forked
    worker could write a reference count to (a list of tuples fails it)."""
    sizes = {}
    for per_class in 2, 20:
        root = tmp_path / str(per_class)
        make_folder(root, per_class=per_class, size=(4, 4))
        ann_file = write_list(tmp_path / f'{per_class}.txt', folder_list(root)) if use_list \
            else None
        dataset = ImageNetFolder(str(root), ann_file=ann_file)
        assert isinstance(dataset.samples, SampleIndex)
        assert [type(a) for a in (dataset.samples.paths, dataset.samples.offsets,
                                  dataset.samples.labels)] == [np.ndarray] * 3
        assert dataset.samples.labels.dtype == np.int16
        sizes[per_class] = reachable(dataset)
    assert sizes[2] == sizes[20]
    listed = ImageNetFolder(str(root), ann_file=ann_file)
    listed.samples = list(listed.samples)  # the check can fail: a tuple and a str per sample
    assert reachable(listed) > sizes[20] + len(listed)


def test_pickles_and_loads_in_worker_processes(tmp_path):
    root = make_folder(tmp_path / 'train', per_class=4, size=(12, 10))
    ann_file = write_list(tmp_path / 'train.txt', folder_list(root))
    dataset = ImageNetFolder(str(root), train=False, crop_size=8, resize_size=8,
                             ann_file=ann_file)
    copy = pickle.loads(pickle.dumps(dataset))
    assert list(copy.samples) == list(dataset.samples) and copy.classes == dataset.classes
    loader = DataLoader(dataset, batch_size=3, num_workers=2)  # forked workers on Linux
    labels = torch.cat([batch['data_samples'] for batch in loader])
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


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
    with pytest.raises(DatasetError, match=r'cat/0\.JPEG.*remove or replace the file'):
        dataset[0]


@pytest.mark.parametrize('train', [True, False])
def test_items_are_cv2_decode_plus_torchvision_v2_transforms(tmp_path, train):
    """By default (no reduced decode) an item is, bit for bit and with the same seed, what the
    former pipeline gave: cv2 decode, then v2's RandomResizedCrop + flip (or Resize +
    CenterCrop); with it, close (the crops of the reduced decodes: tests/datasets/test_decode.py).
    """
    import cv2
    from torchvision.transforms import v2
    rng = np.random.default_rng(0)
    root = tmp_path / 'train'
    for name in ('cat', 'dog'):
        (root / name).mkdir(parents=True)
        for i in range(3):  # smooth noise, so the crops' pixels differ across the image
            noise = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            Image.fromarray(noise).resize((320, 240), Image.BICUBIC).save(
                root / name / f'{i}.JPEG', quality=90)
    expected = (v2.Compose([v2.RandomResizedCrop(32, antialias=True), v2.RandomHorizontalFlip()])
                if train else v2.Compose([v2.Resize(40, antialias=True), v2.CenterCrop(32)]))
    full = ImageNetFolder(str(root), train=train, crop_size=32, resize_size=40)  # the default
    reduced = ImageNetFolder(str(root), train=train, crop_size=32, resize_size=40,
                             reduced_decode=True)
    for i in range(len(full)):
        bgr = cv2.imread(full.get_sample(i)[0], cv2.IMREAD_COLOR)
        image = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
        torch.manual_seed(i)
        want = expected(image)
        torch.manual_seed(i)
        got = full[i]
        assert torch.equal(got['inputs'], want) and got['data_samples'] == full.samples[i][1]
        torch.manual_seed(i)
        close = reduced[i]['inputs'].float()
        assert (close - want.float()).abs().mean() < 6
    assert reduced.decode.reduced > 0  # 240 px images, 32 px crops: some decodes reduced
