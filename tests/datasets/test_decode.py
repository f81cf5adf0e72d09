"""The crop decoders feed the model what torchvision's transforms would: same boxes and flips
for the same seed, the same pixels without a reduced-scale decode, close pixels with one."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.datasets.folder import pil_loader
from torchvision.transforms import v2

from resnext_det.datasets import DatasetError
from resnext_det.datasets.decode import (
    RandomResizedCropDecoder,
    ResizeCenterCropDecoder,
    jpeg_size,
    read_header,
)

PHOTOS = ('astronaut.png', 'coffee.png', 'chelsea.png')  # 512x512, 600x400, 451x300


def photo(name):
    import skimage
    return Image.open(osp.join(osp.dirname(skimage.__file__), 'data', name)).convert('RGB')


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    """scikit-image's photographs as quality-90 JPEGs (ImageNet's usual quality)."""
    out = tmp_path_factory.mktemp('photos')
    paths = []
    for name in PHOTOS:
        paths.append(str(out / name.replace('.png', '.jpg')))
        photo(name).save(paths[-1], quality=90)
    return paths


def cv2_rgb(path):  # ImageNetFolder's decode: what the decoders replace
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)


@pytest.mark.parametrize('size', [(375, 500), (500, 333), (7, 300), (300, 7), (224, 224),
                                  (1, 1)])
def test_box_is_torchvisions_for_the_same_seed(size):
    height, width = size
    decoder = RandomResizedCropDecoder(64, scale=(0.08, 1.0))
    transform = v2.RandomResizedCrop(64, scale=(0.08, 1.0))
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    for seed in range(200):
        torch.manual_seed(seed)
        ours = decoder.box(width, height)
        torch.manual_seed(seed)
        theirs = transform.make_params([image])
        assert ours == (theirs['top'], theirs['left'], theirs['height'], theirs['width'])
        # and the generator is left where torchvision leaves it: the next draw is the same
        after = torch.rand(1)
        torch.manual_seed(seed)
        transform.make_params([image])
        assert torch.equal(after, torch.rand(1))


def test_full_decode_is_bit_exact_to_imagenetfolders_v2_path(jpegs):
    """Without a reduced decode (output as large as the boxes), the crop, resize and flip are
    v2's, bit for bit; and within one level of torchvision's PIL pipeline (the same libjpeg,
    PIL's resampling vs torch's port of it)."""
    decoder = RandomResizedCropDecoder(224)
    ours_v2 = v2.Compose([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()])
    pil = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.PILToTensor()])
    flips = 0
    for path in jpegs:
        for seed in range(4):
            torch.manual_seed(seed)
            out = decoder(path)
            torch.manual_seed(seed)
            reference = ours_v2(cv2_rgb(path))
            torch.manual_seed(seed)
            via_pil = pil(pil_loader(path))
            assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
            assert torch.equal(out, reference)
            assert (out.int() - via_pil.int()).abs().max() <= 1
            flips += not torch.equal(out, _resized_box(path, seed))
    assert decoder.reduced == 0 and 0 < flips < 12  # both flip outcomes were drawn


def _resized_box(path, seed):
    """The same crop unflipped."""
    torch.manual_seed(seed)
    return v2.RandomResizedCrop(224, antialias=True)(cv2_rgb(path))


def test_reduced_decode_is_close_to_the_full_decode(jpegs):
    """A 64-pixel output lets libjpeg decode at 1/2..1/8 for most boxes. Bound: mean abs
    difference <= 6 levels (of 255) per crop, <= 4 on average. What differs is detail finer
    than the output's pixels (libjpeg's scaled IDCT drops it, where the antialiased resize of
    the full decode filters it) plus the box rounded to the reduced image's pixels, at most
    half an output pixel; measured 2.5-3.8 mean, 8 max per crop at 64 pixels, less for
    224-pixel outputs."""
    reduced, full = RandomResizedCropDecoder(64), RandomResizedCropDecoder(64, reduce=False)
    diffs, means = [], []
    for path in jpegs:
        for seed in range(10):
            torch.manual_seed(seed)
            a = reduced(path).float()
            torch.manual_seed(seed)
            b = full(path).float()
            diffs.append((a - b).abs().mean().item())
            means.append((a.mean((1, 2)) - b.mean((1, 2))).abs().max().item())
    assert reduced.reduced >= 20 and full.reduced == 0
    assert max(diffs) <= 8 and np.mean(diffs) <= 4
    assert np.mean(means) <= 1.5  # the colours the model sees are the same


def test_test_time_decoder(jpegs):
    """Short side < 2 x 256 (coffee 400, chelsea 300): decoded in full, bit-exact to v2's
    Resize + CenterCrop; astronaut's 512: decoded at 1/2, close (bound as above)."""
    decoder = ResizeCenterCropDecoder(256, 224)
    reference = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224)])
    astronaut, coffee, chelsea = jpegs
    for path in (coffee, chelsea):
        assert torch.equal(decoder(path), reference(cv2_rgb(path)))
    assert decoder.reduced == 0
    out = decoder(astronaut)
    assert decoder.reduced == 1 and out.shape == (3, 224, 224)
    assert (out.float() - reference(cv2_rgb(astronaut)).float()).abs().mean() <= 4


@pytest.mark.parametrize('kind', ['grey', 'cmyk', 'rgba_png'])
def test_grey_cmyk_and_png_become_rgb(kind, tmp_path):
    """As torchvision's pil_loader (convert('RGB')): grey copied to 3 channels, CMYK converted
    (OpenCV's and PIL's CMYK formulas differ by rounding: <= 2 levels), alpha dropped."""
    source = photo('coffee.png').resize((120, 80))
    path = str(tmp_path / ('x.png' if kind == 'rgba_png' else 'x.jpg'))
    if kind == 'grey':
        source.convert('L').save(path, quality=95)
    elif kind == 'cmyk':
        source.convert('CMYK').save(path, quality=95)
    else:
        rgba = source.convert('RGBA')
        rgba.putalpha(128)
        rgba.save(path)
    pil = T.Compose([T.RandomResizedCrop(48), T.RandomHorizontalFlip(), T.PILToTensor()])
    torch.manual_seed(0)
    out = RandomResizedCropDecoder(48)(path)
    torch.manual_seed(0)
    reference = pil(pil_loader(path))
    assert out.shape == (3, 48, 48)
    assert (out.int() - reference.int()).abs().max() <= (2 if kind == 'cmyk' else 1)
    if kind == 'grey':
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


@pytest.mark.parametrize('content', [b'not a jpeg', 'truncated', None])
def test_unreadable_file_names_the_path_and_the_fix(content, tmp_path, jpegs):
    path = tmp_path / 'bad.JPEG'
    if content == 'truncated':  # the header parses, the pixels are cut off
        data = open(jpegs[0], 'rb').read()
        path.write_bytes(data[:len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    for decoder in (RandomResizedCropDecoder(32), ResizeCenterCropDecoder(40, 32)):
        with pytest.raises(DatasetError, match=f'{path}.*remove or replace the file'):
            decoder(str(path))


def test_jpeg_header_size_is_pils(jpegs, tmp_path):
    """The frame-header walk reads what PIL reads, progressive and EXIF-bearing JPEGs too; other
    formats fall back to PIL."""
    source = photo('chelsea.png')
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated; ignored by both decoders, as by pil_loader
    variants = {'progressive.jpg': dict(progressive=True), 'exif.jpg': dict(exif=exif),
                'grey.jpg': {}}
    paths = list(jpegs)
    for name, options in variants.items():
        paths.append(str(tmp_path / name))
        (source.convert('L') if name == 'grey.jpg' else source).save(paths[-1], **options)
    for path in paths:
        with open(path, 'rb') as f:
            assert jpeg_size(f.read()) == Image.open(path).size
    png = str(tmp_path / 'x.png')
    source.save(png)
    assert jpeg_size(open(png, 'rb').read()) is None
    assert read_header(png)[1:] == (451, 300, False)
    torch.manual_seed(0)
    out = RandomResizedCropDecoder(64)(paths[-2])  # EXIF-rotated: the box fits the pixels
    assert out.shape == (3, 64, 64)


def test_jpegs_go_through_simplejpeg_at_the_chosen_scale_and_the_rest_through_opencv(
        jpegs, monkeypatch):
    """The faster decoder is the one used (its pixels are OpenCV's, so only the calls show it),
    at exactly 1/k, and a JPEG it refuses still decodes, through OpenCV."""
    import simplejpeg

    from resnext_det.datasets import decode
    calls, decode_jpeg = [], simplejpeg.decode_jpeg

    def counting(data, *args, **kwargs):
        out = decode_jpeg(data, *args, **kwargs)
        calls.append(out.shape[:2])
        return out

    monkeypatch.setattr(decode.simplejpeg, 'decode_jpeg', counting)
    data, width, height, is_jpeg = read_header(jpegs[1])  # 600x400
    assert is_jpeg
    for k in (1, 2, 4, 8):
        rgb = decode.decode_rgb(jpegs[1], data, k, (width, height), is_jpeg)
        assert rgb.shape == (-(-height // k), -(-width // k), 3) and calls[-1] == rgb.shape[:2]
    assert len(calls) == 4
    full = decode.decode_rgb(jpegs[1], data, 1, (width, height), is_jpeg)

    def refusing(data, *args, **kwargs):
        raise ValueError('Unsupported color conversion request')

    monkeypatch.setattr(decode.simplejpeg, 'decode_jpeg', refusing)
    np.testing.assert_array_equal(decode.decode_rgb(jpegs[1], data, 1, (width, height), True),
                                  full)  # OpenCV's decode of the same file: the same pixels
