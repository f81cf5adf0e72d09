"""Decoding the training JPEGs on the model's device (``ImageNetFolder(decode_on_device=True)`` +
``DeviceDecodePreprocessor``), tested with the device decoder run on the CPU: the same boxes and
flips as the CPU path for the same seed, nearly the same pixels, mixed batches, clear errors,
and one training step through a DataLoader as the trainer builds it."""
import math

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.model import ImgDataPreprocessor
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from test_decode import photo  # tests/datasets, on sys.path under pytest
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from resnext_det.datasets import DatasetError, ImageNetFolder
from resnext_det.datasets.decode import EncodedImage
from resnext_det.errors import UserInputError
from resnext_det.models import DeviceDecodePreprocessor
from resnext_det.registry import MODELS

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
CROP = 48
# (file, source photo, size, save options): ImageNet-like JPEGs at test size, progressive too
JPEGS = (('cat/coffee.JPEG', 'coffee.png', (300, 200), dict(quality=90)),
         ('cat/chelsea.JPEG', 'chelsea.png', (226, 150), dict(quality=90, progressive=True)),
         ('dog/astronaut.JPEG', 'astronaut.png', (160, 160), dict(quality=75)),
         ('dog/wide.JPEG', 'coffee.png', (280, 64), dict(quality=90)))


def make_set(root, extra=()):
    """A two-class folder of the JPEGS above plus ``extra`` (file, PIL image, save options)."""
    files = [(name, photo(source).resize(size), options) for name, source, size, options in JPEGS]
    for name, image, options in list(files) + list(extra):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / name, **options)
    return str(root)


def items(dataset, seeds):
    """dataset[i] with the RNG seeded to seeds[i]: both paths draw the same boxes and flips."""
    out = []
    for i, seed in enumerate(seeds):
        torch.manual_seed(seed)
        out.append(dataset[i % len(dataset)])
    return out


def both_paths(root, seeds, **kwargs):
    cpu = ImageNetFolder(root, crop_size=CROP, **kwargs)
    device = ImageNetFolder(root, crop_size=CROP, decode_on_device=True, **kwargs)
    return items(cpu, seeds), items(device, seeds)


def decoded(batch):
    """The uint8 crops the device path gives (before normalisation), decoded on the CPU."""
    return DeviceDecodePreprocessor().decode(pseudo_collate(batch)['inputs'])


def test_same_boxes_flips_and_pixels_as_the_cpu_path(tmp_path):
    """Boxes and flips: torchvision's own draws (v2.RandomResizedCrop's make_params, then the
    flip's torch.rand(1)) for the same seed. Pixels: torchvision's decode_jpeg (its libjpeg-turbo)
    against simplejpeg's (libjpeg-turbo too), the same crop and resize kernel: measured
    identical here (max 0 levels over 40 crops), so the bound is the one level a different
    libjpeg-turbo build's IDCT could round differently. On a GPU nvjpeg's IDCT and chroma
    upsampling differ from libjpeg's, and the float resize from the CPU's uint8 kernel (within a
    level): not measured here (no GPU)."""
    root = make_set(tmp_path / 'train')
    seeds = list(range(40))
    cpu, device = both_paths(root, seeds)
    flips = 0
    for seed, item in zip(seeds, device):
        sample = item['inputs']
        assert isinstance(sample, EncodedImage)
        width, height = sample.size
        torch.manual_seed(seed)
        params = v2.RandomResizedCrop(CROP).make_params(
            [torch.zeros(3, height, width, dtype=torch.uint8)])
        flip = bool(torch.rand(1) < 0.5)
        assert sample.box == (params['top'], params['left'], params['height'], params['width'])
        assert sample.flip == flip and sample.out_size == (CROP, CROP)
        flips += flip
    assert 0 < flips < len(seeds)  # both outcomes drawn

    ours, reference = decoded(device), [item['inputs'] for item in cpu]
    diff = torch.stack([(a.int() - b.int()).abs() for a, b in zip(ours, reference)]).float()
    assert all(a.dtype == torch.uint8 and a.shape == (3, CROP, CROP) for a in ours)
    assert diff.mean() < 0.5 and diff.max() <= 1, (diff.mean(), diff.max())
    # and after normalisation: what the model sees, within one level / std
    batch = DeviceDecodePreprocessor(MEAN, STD)(pseudo_collate(device), True)
    want = ImgDataPreprocessor(MEAN, STD)(pseudo_collate(cpu), True)
    assert batch['inputs'].shape == want['inputs'].shape == (len(seeds), 3, CROP, CROP)
    torch.testing.assert_close(batch['inputs'], want['inputs'], rtol=0, atol=1.01 / min(STD))
    assert batch['data_samples'] == want['data_samples'] == [item['data_samples']
                                                             for item in cpu]


def test_png_and_cmyk_are_decoded_on_the_cpu_in_a_mixed_batch(tmp_path):
    """What nvjpeg does not take stays a CPU-decoded tensor, bit for bit the CPU path's, and a
    batch mixing both keeps its order through pseudo_collate and the preprocessor."""
    source = photo('coffee.png').resize((120, 80))
    root = make_set(tmp_path / 'train', extra=[
        ('cat/a.png', source, {}), ('dog/cmyk.JPEG', source.convert('CMYK'), dict(quality=95))])
    dataset = ImageNetFolder(root, crop_size=CROP, decode_on_device=True)
    kinds = {dataset.get_sample(i)[0].rsplit('/', 1)[-1]: i for i in range(len(dataset))}
    seeds = list(range(len(dataset)))
    cpu, device = both_paths(root, seeds)
    for name, i in kinds.items():
        on_cpu = name in ('a.png', 'cmyk.JPEG')
        assert isinstance(device[i]['inputs'], torch.Tensor) == on_cpu, name
        if on_cpu:
            assert torch.equal(device[i]['inputs'], cpu[i]['inputs'])
    ours = decoded(device)
    for a, b in zip(ours, [item['inputs'] for item in cpu]):
        assert (a.int() - b.int()).abs().max() <= 1
    batch = DeviceDecodePreprocessor(MEAN, STD)(pseudo_collate(device), True)
    assert batch['inputs'].shape == (len(dataset), 3, CROP, CROP)


def test_grey_jpeg_is_decoded_to_rgb(tmp_path):
    root = make_set(tmp_path / 'train',
                    extra=[('cat/grey.JPEG', photo('chelsea.png').convert('L'), {})])
    dataset = ImageNetFolder(root, crop_size=CROP, decode_on_device=True)
    i = next(i for i in range(len(dataset)) if dataset.get_sample(i)[0].endswith('grey.JPEG'))
    cpu, device = both_paths(root, [i] * 3)
    sample = device[i]['inputs']
    assert isinstance(sample, EncodedImage)  # one component: nvjpeg takes it
    out = decoded([device[i]])[0]
    assert out.shape == (3, CROP, CROP)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert (out.int() - cpu[i]['inputs'].int()).abs().max() <= 1


def test_corrupt_jpeg_fails_at_decode_naming_the_file(tmp_path):
    """The header parses, so the worker passes it on; the batch's decode fails, and the error
    names the file that does, not the batch."""
    root = tmp_path / 'train'
    make_set(root)
    good = (root / 'cat' / 'coffee.JPEG').read_bytes()
    (root / 'dog' / 'truncated.JPEG').write_bytes(good[:len(good) // 3])
    dataset = ImageNetFolder(str(root), crop_size=CROP, decode_on_device=True)
    batch = items(dataset, range(len(dataset)))
    assert all(isinstance(item['inputs'], EncodedImage) for item in batch)
    with pytest.raises(DatasetError,
                       match=r'dog/truncated\.JPEG: .*truncated.*remove or replace the file'):
        DeviceDecodePreprocessor(MEAN, STD)(pseudo_collate(batch), True)


def tiny_classifier(data_preprocessor):
    # in the classifier configs' scope (cls_runtime.py), where mmengine's BaseModel builds the
    # preprocessor from the config's dict
    with DefaultScope.overwrite_default_scope('resnext_det'):
        return MODELS.build(dict(
            type='resnext_det.ImageClassifier', num_classes=2,
            backbone=dict(type='resnext_det.ResNeXt', depth=50, groups=4, base_width=4,
                          base_channels=8),
            data_preprocessor=data_preprocessor))


def test_one_training_step_through_a_dataloader(tmp_path):
    """As the trainer runs it: a DataLoader worker (the samples pickled across processes),
    pseudo_collate, the model's preprocessor from the config, train_step. A model left with the
    default preprocessor stops at the first batch, naming the fix."""
    root = make_set(tmp_path / 'train', extra=[('cat/a.png', photo('coffee.png').resize(
        (90, 60)), {})])
    dataset = ImageNetFolder(root, crop_size=32, decode_on_device=True)
    loader = DataLoader(dataset, batch_size=len(dataset), num_workers=1,
                        collate_fn=pseudo_collate)
    data = next(iter(loader))
    assert sum(isinstance(x, EncodedImage) for x in data['inputs']) == len(dataset) - 1
    torch.manual_seed(0)
    model = tiny_classifier(dict(type='resnext_det.DeviceDecodePreprocessor', mean=MEAN,
                                 std=STD))
    assert isinstance(model.data_preprocessor, DeviceDecodePreprocessor)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    losses = model.train_step(data, optim)
    assert math.isfinite(losses['loss'].item())

    plain = tiny_classifier(None)  # ImageClassifier's default: mmengine's ImgDataPreprocessor
    with pytest.raises(UserInputError, match=r"decode_on_device=True.*data_preprocessor=dict\("
                       r"type='resnext_det\.DeviceDecodePreprocessor'"):
        plain.train_step(data, optim)


def test_validation_and_cpu_batches_ignore_it(tmp_path):
    """A test set decodes on the CPU whatever the flag, and the preprocessor treats plain tensor
    batches (the CPU path, validation) exactly as ImgDataPreprocessor does."""
    root = make_set(tmp_path / 'val')
    plain = ImageNetFolder(root, train=False, crop_size=CROP, resize_size=56)
    flagged = ImageNetFolder(root, train=False, crop_size=CROP, resize_size=56,
                             decode_on_device=True)
    batch = [flagged[i] for i in range(len(flagged))]
    for i, item in enumerate(batch):
        assert isinstance(item['inputs'], torch.Tensor)
        assert torch.equal(item['inputs'], plain[i]['inputs'])
    ours = DeviceDecodePreprocessor(MEAN, STD)(pseudo_collate(batch), False)
    want = ImgDataPreprocessor(MEAN, STD)(pseudo_collate(batch), False)
    assert torch.equal(ours['inputs'], want['inputs'])
    stacked = torch.stack([item['inputs'] for item in batch])  # default_collate's batches
    assert torch.equal(DeviceDecodePreprocessor(MEAN, STD)(dict(inputs=stacked))['inputs'],
                       ImgDataPreprocessor(MEAN, STD)(dict(inputs=stacked))['inputs'])
    with pytest.raises(ValueError, match='reduced_decode'):
        ImageNetFolder(root, crop_size=CROP, decode_on_device=True, reduced_decode=True)
    ImageNetFolder(root, train=False, decode_on_device=True, reduced_decode=True)  # fine


def test_header_check_finds_what_nvjpeg_cannot_take(tmp_path):
    from resnext_det.datasets.decode import device_decodable
    source = photo('coffee.png').resize((64, 48))
    cases = {'rgb': (source, dict(quality=90), True),
             'progressive': (source, dict(progressive=True), True),
             'grey': (source.convert('L'), {}, True),
             'cmyk': (source.convert('CMYK'), {}, False)}
    for name, (image, options, want) in cases.items():
        path = tmp_path / f'{name}.jpg'
        image.save(path, **options)
        assert device_decodable(path.read_bytes()) is want, name
    png = tmp_path / 'x.png'
    source.save(png)
    assert not device_decodable(png.read_bytes())
    assert not device_decodable(np.zeros(20, np.uint8).tobytes())
