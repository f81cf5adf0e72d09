"""A data preprocessor that decodes the training JPEGs on the model's device.

With ``ImageNetFolder(decode_on_device=True)`` the DataLoader workers only read the files and
draw each sample's crop box and flip (the same draws as the CPU path); the JPEGs reach the model
still encoded (:class:`~resnext_det.datasets.decode.EncodedImage`). This preprocessor decodes a
batch of them in one ``torchvision.io.decode_jpeg`` call on its device (nvjpeg's batched decoder
on a GPU, libjpeg-turbo on the CPU), crops, resizes with torchvision v2's antialiased bilinear
kernel (the CPU path's) and flips each, then normalises and stacks like mmengine's
``ImgDataPreprocessor``. On a GPU this moves the decode, ~65% of a worker's time per image
(docs/benchmarks.md), off the CPU cores.
"""
import re
import warnings
from typing import List, Sequence, Union

import torch
from mmengine.model import ImgDataPreprocessor
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2 import functional as F

from ..datasets.decode import EncodedImage, decode_error
from ..registry import MODELS


def _reason(error: Exception) -> str:
    """torchvision's decode error without the C++ source location it starts with."""
    lines = str(error).strip().splitlines() or ['']
    return re.sub(r'^.*\.(cpp|cu|h):\d+,\s*', '', lines[-1])


def _decode(encoded: Sequence[EncodedImage], device: torch.device) -> List[torch.Tensor]:
    """uint8 (3, H, W) RGB images of ``encoded`` on ``device``, decoded in one batched call.
    A failed batch is decoded again one image at a time to name the file that fails: nvjpeg's
    batched decode returns nothing on an error, and says not which image it was."""
    jpegs = [sample.jpeg for sample in encoded]
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders for TorchCodec's (same libraries); the
        # warning would come once a batch
        warnings.filterwarnings('ignore', 'The image decoding and encoding capabilities',
                                DeprecationWarning)
        try:
            images = decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            for sample in encoded:
                try:
                    decode_jpeg(sample.jpeg, mode=ImageReadMode.RGB, device=device)
                except RuntimeError as e:
                    raise decode_error(sample.path, f'missing, truncated or not an image '
                                       f'({_reason(e)})') from None
            raise  # the batch failed and no image alone does: not the files' fault
    for sample, image in zip(encoded, images):
        width, height = sample.size
        if image.shape[-2:] != (height, width):  # the box was drawn on the header's size
            raise decode_error(sample.path, f'decoded {image.shape[-1]}x{image.shape[-2]} '
                               f'pixels, the header says {width}x{height}')
    return images


def _crop(image: torch.Tensor, sample: EncodedImage) -> torch.Tensor:
    """The sample's box of ``image`` resized to its output size, flipped if drawn so: what
    ``RandomResizedCropDecoder.crop`` does on the CPU. ``F.resize_image`` runs torch's uint8
    kernel on the CPU and, elsewhere, resizes in float32 then rounds back to uint8 (within a
    level of the CPU kernel)."""
    top, left, h, w = sample.box
    out = F.resize_image(image[:, top:top + h, left:left + w], list(sample.out_size),
                         antialias=True)
    return out.flip(-1) if sample.flip else out


@MODELS.register_module()
class DeviceDecodePreprocessor(ImgDataPreprocessor):
    """``ImgDataPreprocessor`` that first decodes the encoded JPEGs of a batch on its device.

    Takes what ``ImageNetFolder`` gives through mmengine's ``pseudo_collate``: a list of
    ``inputs`` holding :class:`EncodedImage` samples (``decode_on_device=True``: decoded in one
    ``decode_jpeg`` call, cropped, resized, flipped), uint8 (3, H, W) tensors (PNG and CMYK
    files the dataset decoded on the CPU, or any CPU-path batch), or both. The crop size comes
    with each sample (the dataset's ``crop_size``), so it cannot disagree with the CPU-decoded
    ones. Validation batches and stacked tensors are handled exactly as by
    ``ImgDataPreprocessor``.

    Args: those of mmengine's ``ImgDataPreprocessor`` (``mean``, ``std`` of the RGB channels,
    ``pad_size_divisor``, ``pad_value``, ``bgr_to_rgb``, ``rgb_to_bgr``, ``non_blocking``).

    Switch it on in a config (or the same keys with ``--cfg-options``; the classifier configs
    leave ``model.data_preprocessor`` to ``ImageClassifier``'s default, so give mean and std)::

        train_dataloader = dict(dataset=dict(decode_on_device=True))
        model = dict(data_preprocessor=dict(type='resnext_det.DeviceDecodePreprocessor',
                                            mean=[123.675, 116.28, 103.53],
                                            std=[58.395, 57.12, 57.375]))
    """

    def forward(self, data: dict, training: bool = False) -> Union[dict, list]:
        inputs = data.get('inputs') if isinstance(data, dict) else None
        if isinstance(inputs, (list, tuple)) and any(
                isinstance(item, EncodedImage) for item in inputs):
            data = dict(data, inputs=self.decode(inputs))
        return super().forward(data, training)

    def decode(self, inputs: Sequence[Union[EncodedImage, torch.Tensor]]) -> List[torch.Tensor]:
        """``inputs`` as uint8 (3, h, w) tensors on this preprocessor's device, in their
        order: the encoded ones decoded and cropped, the others moved there."""
        encoded = [item for item in inputs if isinstance(item, EncodedImage)]
        crops = iter([_crop(image, sample)
                      for image, sample in zip(_decode(encoded, self.device), encoded)])
        return [next(crops) if isinstance(item, EncodedImage)
                else item.to(self.device, non_blocking=self._non_blocking) for item in inputs]
