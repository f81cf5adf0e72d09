"""Decoders that read an image file straight into the network's crop: uint8 CHW RGB tensors.

``RandomResizedCropDecoder`` gives what ``cv2.imread`` + ``torchvision.transforms.v2``
``RandomResizedCrop(antialias=True)`` + ``RandomHorizontalFlip`` give (``ImageNetFolder``'s
training path), with the same box and flip for the same torch RNG state, but decodes no more
than the crop needs: the header gives the size (a JPEG's frame header; other formats: PIL's
lazy open), the box is drawn on it with torchvision's own draws, and, with ``reduce=True``,
where the box would be downscaled by 2x or more anyway, libjpeg decodes the JPEG at 1/2, 1/4
or 1/8 scale with its scaled IDCT (``ImageNetFolder`` leaves that off by default: it cost the
demo classifier top-1, docs/benchmarks.md). JPEGs are decoded by simplejpeg (libjpeg-turbo's
TurboJPEG API, straight to RGB): the same pixels as OpenCV's decoder, measured 10-25% faster on
ImageNet-sized photos (0.69-0.70 against 0.77-0.96 ms per 500x333 image, one core, two loads),
where the decode is most of the pipeline's time; OpenCV decodes what simplejpeg refuses (PNG
and other formats). libjpeg-turbo's other scales (3/8, 5/8, 3/4, 7/8) have no SIMD IDCT and
decode slower than the full image, so they are not used. The crop is then resized by the same
antialiased bilinear kernel as v2's (``v2.functional.resize_image``), so without a reduced
decode the output is bit-exact.

``ResizeCenterCropDecoder`` is the test-time counterpart (short side to ``resize_size``, center
crop ``crop_size``), reducing the decode where the short side stays >= ``resize_size``.

``RandomResizedCropDecoder.draw`` and ``crop`` split the training decoder in two, so that
``ImageNetFolder(decode_on_device=True)`` can draw the same box and flip and leave a JPEG
encoded (``EncodedImage``) for ``resnext_det.DeviceDecodePreprocessor`` to decode on the
model's device.

Both read files the way torchvision's ``pil_loader`` does: EXIF orientation is not applied, grey
and CMYK JPEGs become RGB, an alpha channel is dropped.
"""
import io
import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import simplejpeg
import torch
from mmengine.structures import BaseDataElement
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2 import functional as F

from ..errors import DatasetError, UserInputError

# libjpeg's scaled-IDCT factors that OpenCV exposes, largest first
# (the scale bits only: OpenCV refuses IMREAD_REDUCED_COLOR_*'s BGR bit together with RGB)
_REDUCED = ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
            (2, cv2.IMREAD_REDUCED_GRAYSCALE_2))
# RGB straight from libjpeg (no BGR->RGB pass); no EXIF rotation, as torchvision's pil_loader,
# so the decoded size is the header's and the box drawn on the header fits the pixels
_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION


def decode_error(path: str, why: str = 'missing, truncated or not an image') -> DatasetError:
    return DatasetError(f'failed to decode image {path}: {why}; remove or replace the file')


# the start-of-frame markers of DCT JPEGs (baseline, extended, progressive; Huffman or
# arithmetic coded), which libjpeg can decode at reduced scale; lossless and hierarchical ones
# are left to PIL and decoded in full
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC9, 0xCA))
_OTHER_SOF = frozenset((0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF))


def _frame_header(data: bytes) -> Optional[int]:
    """The offset of a DCT JPEG's start-of-frame marker (its 0xFF byte), or None where ``data``
    is not one or its header is unusual. A walk over the segment lengths up to the frame header:
    a tenth of ``Image.open``'s time, which matters at ~1 ms per image."""
    if data[:2] != b'\xff\xd8':
        return None
    pos, end = 2, len(data) - 9
    while pos < end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _SOF:
            return pos
        if marker in _OTHER_SOF:
            return None
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length field
            pos += 2
            continue
        pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return None


def jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from a DCT JPEG's frame header, or None where ``data`` is not one or
    its header is unusual (then PIL reads the size)."""
    pos = _frame_header(data)
    if pos is None:
        return None
    height, width = (data[pos + 5] << 8) | data[pos + 6], (data[pos + 7] << 8) | data[pos + 8]
    return (width, height) if width and height else None  # 0: size in a DNL marker


def device_decodable(data: Union[bytes, np.ndarray]) -> bool:
    """Whether ``torchvision.io.decode_jpeg`` can decode this JPEG to RGB on any device: a
    Huffman-coded baseline, extended or progressive frame of 8-bit samples with 1 (grey) or 3
    (YCbCr) components. nvjpeg does not decode arithmetic coding, 12-bit samples or CMYK/YCCK
    (4 components) the way libjpeg does, so those few (ImageNet's train set has 22 CMYK
    JPEGs) are decoded on the CPU (``ImageNetFolder(decode_on_device=True)``). ``data``: the
    file's bytes, or ``read_header``'s uint8 array of them."""
    data = memoryview(data)  # of an array: its bytes as ints, no copy
    pos = _frame_header(data)
    return (pos is not None and data[pos + 1] in (0xC0, 0xC1, 0xC2) and data[pos + 4] == 8
            and data[pos + 9] in (1, 3))


def read_header(path: str) -> Tuple[np.ndarray, int, int, bool]:
    """(file bytes, width, height, is a DCT JPEG: reducible), reading the file once: the size
    from the JPEG frame header, or from PIL (``Image.open`` parses only the header) for other
    formats; the bytes go to OpenCV's decoder."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise decode_error(path, f'cannot read it ({e.strerror or e})') from None
    data = np.frombuffer(raw, dtype=np.uint8)
    size = jpeg_size(raw)
    if size is not None:
        return data, size[0], size[1], True
    try:
        with Image.open(io.BytesIO(raw)) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise decode_error(path) from None
    return data, width, height, False


def decode_rgb(path: str, data: np.ndarray, reduction: int = 1,
               size: Optional[Tuple[int, int]] = None, jpeg: bool = False) -> np.ndarray:
    """HxWx3 uint8 RGB, decoded at 1/``reduction`` scale (1, 2, 4 or 8: JPEG only). ``size``
    (width, height) from the header: a decode of another size means a damaged file. ``jpeg``:
    a DCT JPEG (``read_header``), decoded by simplejpeg."""
    # libjpeg's scaled output is ceil(side / reduction)
    expected = None if size is None else (-(-size[1] // reduction), -(-size[0] // reduction))
    rgb = None
    if jpeg and expected is not None:  # simplejpeg, with OpenCV as the fallback
        try:
            # the smallest scale whose output is at least these sides is exactly 1/reduction
            rgb = simplejpeg.decode_jpeg(data, 'RGB', min_height=expected[0],
                                         min_width=expected[1])
        except ValueError:  # a colour space TurboJPEG does not convert (CMYK), or damage
            pass
    if rgb is None:
        flags = _FLAGS if reduction == 1 else dict(_REDUCED)[reduction] | _FLAGS
        rgb = cv2.imdecode(data, flags)
    if rgb is None:
        raise decode_error(path)
    if expected is not None and rgb.shape[:2] != expected:
        raise decode_error(path, f'decoded {rgb.shape[1]}x{rgb.shape[0]} pixels, the header '
                           f'says {expected[1]}x{expected[0]}')
    return rgb


def _reduction(is_jpeg: bool, min_side: float, target: float) -> int:
    """The largest libjpeg scale 1/k that keeps ``min_side / k >= target`` (no upsampling of what
    would otherwise be downscaled), or 1."""
    if is_jpeg:
        for k, _ in _REDUCED:
            if min_side >= k * target:
                return k
    return 1


def _resize(rgb: np.ndarray, size: Sequence[int]) -> torch.Tensor:
    """uint8 HWC array -> uint8 CHW tensor of ``size`` (h, w) by v2's antialiased bilinear resize
    (the very function v2.RandomResizedCrop calls). A channels-last copy of the crop first: torch's
    AVX2 uint8 kernel reads it as is, where the strided view of a crop would be repacked."""
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
    return F.resize_image(image, list(size), antialias=True)


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class RandomResizedCropDecoder:
    """``decoder(path)`` -> uint8 (3, h, w) RGB tensor: a random resized crop, flipped
    horizontally with probability ``flip_prob``; torchvision's RandomResizedCrop(size, scale,
    ratio, antialias=True) + RandomHorizontalFlip(flip_prob), drawing from the global torch RNG in
    the same order (box, then flip), so seeded runs give the same boxes as v2's transforms.

    Args:
        size (int | (h, w)): output size.
        scale, ratio: RandomResizedCrop's area and aspect-ratio ranges.
        flip_prob (float): probability of the horizontal flip (0: never).
        reduce (bool): allow libjpeg's reduced-scale decode (False: always decode in full).
    """

    def __init__(self, size: Union[int, Sequence[int]] = 224,
                 scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), flip_prob: float = 0.5,
                 reduce: bool = True):
        self.size = _pair(size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.flip_prob, self.reduce = flip_prob, reduce
        # get_params' log of the ratio range (float32), and one-element tensors to draw into
        self._log_ratio = [float(v) for v in torch.log(torch.tensor(self.ratio))]
        self._float, self._int = torch.empty(1), torch.empty(1, dtype=torch.int64)
        self.reduced = 0  # how many decodes were at reduced scale (for the benchmark's report)

    def box(self, width: int, height: int) -> Tuple[int, int, int, int]:
        """(top, left, h, w): ``torchvision.transforms.RandomResizedCrop.get_params`` on an image
        of this size, the same draws from the global torch RNG in the same order and dtypes
        (float32 uniforms, int64 ``random_``, which is what ``torch.randint`` calls), so the same
        box for the same RNG state (tests/datasets/test_decode.py). Its per-call tensor set-up
        (the log of the ratio range, new one-element tensors for each draw) was 0.19 ms of the
        ~1.5 ms per image; here the tensors are made once."""
        area = height * width
        for _ in range(10):
            target_area = area * self._float.uniform_(*self.scale).item()
            aspect_ratio = self._float.uniform_(*self._log_ratio).exp_().item()
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                top = self._int.random_(0, height - h + 1).item()
                return top, self._int.random_(0, width - w + 1).item(), h, w
        # torchvision's fallback: the central crop of the nearest allowed aspect ratio
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def draw(self, width: int, height: int) -> Tuple[Tuple[int, int, int, int], bool]:
        """((top, left, h, w), flip) for an image of this size: the box, then the flip, drawn as
        v2's RandomResizedCrop + RandomHorizontalFlip draw them. Both decode paths
        (``__call__`` here, ``ImageNetFolder(decode_on_device=True)``) draw through this, so a
        seeded run gives the same boxes and flips whichever decodes."""
        box = self.box(width, height)
        # drawn even at flip_prob 0, as v2.RandomHorizontalFlip does: the next box stays the same
        return box, self._float.uniform_().item() < self.flip_prob  # torch.rand(1)'s draw

    def crop(self, path: str, data: np.ndarray, width: int, height: int, is_jpeg: bool,
             box: Tuple[int, int, int, int], flip: bool) -> torch.Tensor:
        """The drawn crop of the file ``read_header`` read, decoded on the CPU, resized and
        flipped: uint8 (3, h, w)."""
        top, left, h, w = box
        k = _reduction(is_jpeg and self.reduce, min(h / self.size[0], w / self.size[1]), 1)
        rgb = decode_rgb(path, data, k, (width, height), is_jpeg)
        if k > 1:
            self.reduced += 1
            # the box in the reduced image, rounded to its pixels: at most half a reduced pixel
            # off, which is at most half an output pixel (the reduced box is >= the output)
            rh, rw = rgb.shape[:2]
            y0, x0 = min(round(top / k), rh - 1), min(round(left / k), rw - 1)
            y1, x1 = min(max(round((top + h) / k), y0 + 1), rh), min(max(round((left + w) / k),
                                                                          x0 + 1), rw)
        else:
            y0, x0, y1, x1 = top, left, top + h, left + w
        out = _resize(rgb[y0:y1, x0:x1], self.size)
        return out.flip(-1) if flip else out

    def __call__(self, path: str) -> torch.Tensor:
        data, width, height, is_jpeg = read_header(path)
        box, flip = self.draw(width, height)
        return self.crop(path, data, width, height, is_jpeg, box, flip)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={tuple(round(r, 4) for r in self.ratio)}, flip_prob={self.flip_prob})')


class EncodedImage(BaseDataElement):
    """A training sample left encoded, for ``resnext_det.DeviceDecodePreprocessor`` to decode on
    the model's device (``ImageNetFolder(decode_on_device=True)``).

    Fields: ``jpeg`` (uint8 1-D CPU tensor: the file's bytes; ``decode_jpeg`` takes its input on
    the CPU whatever the device it decodes on), ``size`` ((width, height) from the header),
    ``box`` ((top, left, h, w) of the crop), ``flip`` (bool), ``out_size`` ((h, w) of the
    crop once resized: the dataset's crop size), ``path`` (for error messages).

    Not a dict: mmengine's ``pseudo_collate`` keeps it as one item of the batch's ``inputs``
    list (a dict would be collated key by key, and a batch mixing it with the CPU-decoded
    tensors of PNG or CMYK files would not collate), and a data preprocessor's ``cast_data``
    calls its ``to()``, which raises: any preprocessor but ours fails there, saying what to
    set, instead of deep in mmengine's ``ImgDataPreprocessor`` with a dump of the batch.
    """

    def to(self, *args, **kwargs):
        raise UserInputError(
            f'the training set gives JPEGs still encoded (decode_on_device=True; e.g. '
            f'{self.path}), and only resnext_det.DeviceDecodePreprocessor decodes them, not the '
            "model's data preprocessor: set model.data_preprocessor=dict(type='resnext_det."
            "DeviceDecodePreprocessor', mean=..., std=...), or decode_on_device=False")


class ResizeCenterCropDecoder:
    """``decoder(path)`` -> uint8 (3, crop, crop) RGB tensor: torchvision's Resize(resize_size,
    antialias=True) (short side) + CenterCrop(crop_size) on the decoded image, decoded at 1/2,
    1/4 or 1/8 scale where the short side stays >= ``resize_size`` (JPEGs of 512+ pixels on the
    short side for 256; ImageNet's usual 500x375 are decoded in full)."""

    def __init__(self, resize_size: int = 256, crop_size: Union[int, Sequence[int]] = 224,
                 reduce: bool = True):
        self.resize_size, self.crop_size = int(resize_size), _pair(crop_size)
        self.reduce = reduce
        self.reduced = 0

    def __call__(self, path: str) -> torch.Tensor:
        data, width, height, is_jpeg = read_header(path)
        k = _reduction(is_jpeg and self.reduce, min(width, height), self.resize_size)
        # the full image's resized size, so a reduced decode (ceil'd sides) resizes to the same
        short, long = sorted((width, height))
        new_long = int(self.resize_size * long / short)
        out_hw = ([self.resize_size, new_long] if height <= width
                  else [new_long, self.resize_size])
        rgb = decode_rgb(path, data, k, (width, height), is_jpeg)
        self.reduced += k > 1
        image = torch.from_numpy(rgb).permute(2, 0, 1)
        image = F.resize_image(image, out_hw, antialias=True)
        return F.center_crop_image(image, list(self.crop_size))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(resize_size={self.resize_size}, '
                f'crop_size={self.crop_size})')


__all__ = ['RandomResizedCropDecoder', 'ResizeCenterCropDecoder', 'EncodedImage', 'read_header',
           'jpeg_size', 'device_decodable', 'decode_rgb', 'decode_error']
