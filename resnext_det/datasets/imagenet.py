"""ImageNet-format data for the companion classification trainer: an image folder
(`root/<class>/*.JPEG`) scanned with torchvision's helpers, or mmpretrain's annotation list
(`meta/train.txt`: one `n01440764/n01440764_10026.JPEG 0` per line) read without touching the
1.28M files.

Either way the samples are held as three numpy arrays (every relative path in one byte buffer,
their offsets, the labels), the way mmengine's ``BaseDataset(serialize_data=True)`` holds its
data list: a forked DataLoader worker (x every rank) that reads a sample then writes no
reference count of a per-sample Python object, so the pages stay shared with the parent instead
of being copied one by one (copy-on-read); 1.28M (path, label) tuples cost ~200 MiB per worker
that way. ``tools/benchmark_datasets.py`` measures it.

Decoding and augmentation are one step (``resnext_det/datasets/decode.py``): the paper's
RandomResizedCrop box is drawn by torchvision's sampler on the JPEG header's size, libjpeg-turbo
decodes (through simplejpeg; at 1/2, 1/4 or 1/8 scale where the crop is downscaled that much
anyway, only with ``reduced_decode=True``), and the crop is resized by torchvision.transforms.v2's
antialiased kernel: the pixels of cv2 + v2, uint8 out (normalised on the device by the model's
data preprocessor).
"""
import contextlib
import gc
import os
import os.path as osp
from collections.abc import Sequence as SequenceABC
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.datasets.folder import find_classes, make_dataset

from ..errors import DatasetError
from ..registry import DATASETS
from .decode import (
    EncodedImage,
    RandomResizedCropDecoder,
    ResizeCenterCropDecoder,
    device_decodable,
    read_header,
)

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


class SampleIndex(SequenceABC):
    """``index[i] == (path, label)`` for ``i < len(index)``, held in three numpy arrays.

    ``paths`` (uint8) holds every path relative to ``root`` back to back as bytes (the file
    system's encoding, os.fsencode), ``offsets`` (int64, one more than the samples) where each
    starts, ``labels`` (int16, or int32 past 32,767 classes) the class indices. Reading sample i
    builds its tuple then; nothing per sample lives between reads, so there is nothing whose
    reference count a reader could write. It pickles as its arrays (a spawned worker, a copy).
    """

    def __init__(self, root: str, paths: np.ndarray, offsets: np.ndarray, labels: np.ndarray):
        if not (len(offsets) == len(labels) + 1 and offsets[0] == 0
                and offsets[-1] == len(paths)):
            raise ValueError(f'SampleIndex: {len(labels)} labels need {len(labels) + 1} offsets '
                             f'from 0 to len(paths)={len(paths)}')
        self.root, self.paths, self.offsets, self.labels = root, paths, offsets, labels

    @classmethod
    def from_relative(cls, root: str, rel_paths: Sequence[bytes], labels) -> 'SampleIndex':
        """From paths relative to ``root`` (bytes) and their labels."""
        lengths = np.fromiter(map(len, rel_paths), np.int64, count=len(rel_paths))
        offsets = np.zeros(len(rel_paths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        paths = np.frombuffer(b''.join(rel_paths), np.uint8)
        labels = np.asarray(labels)
        dtype = np.int16 if len(labels) == 0 or labels.max() < 2**15 else np.int32
        return cls(root, paths, offsets, labels.astype(dtype))

    def __len__(self) -> int:
        return len(self.labels)

    def relative_path(self, index: int) -> str:
        start, end = self.offsets[index], self.offsets[index + 1]
        return os.fsdecode(self.paths[start:end].tobytes())

    def __getitem__(self, index: Union[int, slice]):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f'sample {index} of {len(self)}')
        return osp.join(self.root, self.relative_path(index)), int(self.labels[index])

    def __repr__(self) -> str:
        return (f'SampleIndex({len(self)} samples under {self.root!r}, '
                f'{self.paths.nbytes + self.offsets.nbytes + self.labels.nbytes} bytes)')


def scan_image_folder(root: str, classes: Optional[Sequence[str]] = None):
    """(class names, [(path, label)]) of an ImageNet-style folder, by torchvision's
    ``DatasetFolder`` helpers (``find_classes`` / ``make_dataset``), with errors that name the
    folder and the fix. Every class must hold at least one image."""
    if not osp.isdir(root):
        raise DatasetError(
            f'image folder {root} does not exist. Expected ImageNet layout root/<class>/*.JPEG; '
            'the demo set is made by: python tools/make_demo_data.py')
    if classes is None:
        try:
            classes, _ = find_classes(root)
        except FileNotFoundError:  # torchvision's: no class folder
            raise DatasetError(f'image folder {root} has no class sub-folders') from None
    classes = list(classes)
    missing = [name for name in classes if not osp.isdir(osp.join(root, name))]
    if missing:
        raise DatasetError(f'image folder {root}: class folder(s) {", ".join(missing)} '
                                'do not exist')
    try:
        samples = make_dataset(root, {name: i for i, name in enumerate(classes)},
                               extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:  # torchvision's "Found no valid file for the classes ..."
        raise DatasetError(f'image folder {root}: {e}') from None
    return classes, samples


def index_image_folder(root: str, classes: Optional[Sequence[str]] = None
                       ) -> Tuple[List[str], SampleIndex]:
    """:func:`scan_image_folder` stored as a :class:`SampleIndex` (the scan's list of tuples
    is dropped on return)."""
    classes, samples = scan_image_folder(root, classes)
    # make_dataset joins expanduser(root) with the class folder and the file name: cutting
    # that prefix and joining it back on access gives the same path strings.
    cut = len(osp.join(osp.expanduser(root), ''))
    rel = [os.fsencode(path[cut:]) for path, _ in samples]
    labels = np.fromiter((label for _, label in samples), np.int64, count=len(samples))
    return classes, SampleIndex.from_relative(osp.expanduser(root), rel, labels)


def _read_class_names(classes: Union[str, Sequence[str]]) -> List[str]:
    """``classes`` as given, or read from a text file with one name per line (mmpretrain's
    ``classes='meta/classes.txt'``)."""
    if not isinstance(classes, str):
        return list(classes)
    try:
        with open(classes, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise DatasetError(f'class list {classes}: cannot be read ({e.strerror}); pass classes '
                           'as a list of names or a text file with one name per line') from None
    if not names:
        raise DatasetError(f'class list {classes}: holds no class name; write one per line')
    return names


def _list_error(ann_file: str, number: int, line: bytes, problem: str, fix: str):
    text = line.decode(errors='replace').strip()
    return DatasetError(f'{ann_file}, line {number}: {text!r} {problem}; {fix}')


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection inside: the parse makes millions of small acyclic objects,
    each allocation burst triggering a collection that walks them all again (1.28M lines: 2.4x
    the time with it on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_annotation_list(ann_file: str, root: str,
                         classes: Optional[Union[str, Sequence[str]]] = None
                         ) -> Tuple[List[str], SampleIndex]:
    """(class names, samples) of an mmpretrain annotation list.

    Each non-blank line is ``<path relative to root> <label>``, split at the last blank as
    mmpretrain does (``rsplit(' ', 1)``), so paths may hold spaces. Without ``classes``, the
    class names are the sorted top-level folders of the paths (ImageNet's ``meta/train.txt``:
    its labels are exactly those folders' sorted order, as torchvision's folder scan numbers
    them) and every line's label must be its folder's index; a list without folders
    (``meta/val.txt``) or labelled in another order needs ``classes``. With ``classes`` (names,
    or a text file of names one per line), labels must lie in ``[0, len(classes))``, as
    mmpretrain's fixed ImageNet class list expects. The per-line objects of the parse are
    dropped on return (1.28M lines: a few seconds, a few hundred MiB while parsing).
    """
    with _gc_paused():
        return _parse_annotation_list(ann_file, root, classes)


def _parse_annotation_list(ann_file, root, classes):
    try:
        with open(ann_file, 'rb') as f:
            # (line number, [path, label]); line numbers count blank lines, as an editor does
            rows = [(n, text.rsplit(None, 1)) for n, line in enumerate(f, 1)
                    if (text := line.strip())]
    except OSError as e:
        raise DatasetError(f'annotation list {ann_file}: cannot be read ({e.strerror}); pass '
                           'ann_file=None to scan the image folder instead, or fix the path '
                           '(mmpretrain layout: data/imagenet/meta/train.txt)') from None
    if not rows:
        raise DatasetError(f'annotation list {ann_file}: holds no sample; expected lines such '
                           "as 'n01440764/n01440764_10026.JPEG 0' (path relative to "
                           f'{root}, then the label)')
    # the first line that is not '<path> <digits>', if any: named in the error
    bad_line = next(((number, fields) for number, fields in rows
                     if len(fields) != 2 or not fields[1].isdigit()), None)
    if bad_line is not None:
        number, fields = bad_line
        if len(fields) != 2:
            raise _list_error(ann_file, number, fields[0], "is not '<relative path> <label>' "
                              "(e.g. 'n01440764/n01440764_10026.JPEG 0')",
                              'fix or remove the line')
        # digits only: no sign, so no negative label
        raise _list_error(ann_file, number, b' '.join(fields), 'has a label that is not a '
                          'non-negative integer', 'write the class index (from 0) after the '
                          'path')
    labels = np.array([int(fields[1]) for _, fields in rows], np.int64)
    paths = [fields[0] for _, fields in rows]
    if classes is not None:
        class_names = _read_class_names(classes)
        bad = np.flatnonzero(labels >= len(class_names))
        if len(bad):
            number, fields = rows[bad[0]]
            raise _list_error(
                ann_file, number, b' '.join(fields), f'has a label out of range for the '
                f'{len(class_names)} classes ({len(bad)} line(s) so)', 'labels count from 0 in '
                'the order of classes: fix the list, or pass the classes it was written for')
        return class_names, SampleIndex.from_relative(root, paths, labels)

    slash = np.fromiter((path.find(b'/') for path in paths), np.int64, count=len(paths))
    if (slash <= 0).any():
        number, fields = rows[int(np.argmax(slash <= 0))]
        raise _list_error(
            ann_file, number, b' '.join(fields), 'has no class folder, so the class names '
            "cannot be read from the paths (mmpretrain's val.txt has none)", 'pass '
            'classes=[...] in label order, or a text file with one name per line, e.g. the '
            'training list\'s folders: cut -d/ -f1 meta/train.txt | sort -u > meta/classes.txt')
    folders = np.array([path[:end] for path, end in zip(paths, slash)])  # fixed-width bytes
    class_bytes, folder_index = np.unique(folders, return_inverse=True)
    folder_index = folder_index.reshape(-1)
    class_names = [os.fsdecode(name) for name in class_bytes]
    wrong = np.flatnonzero(folder_index != labels)
    if len(wrong):
        i = wrong[0]
        number, fields = rows[i]
        raise _list_error(
            ann_file, number, b' '.join(fields), f'has label {labels[i]}, but its folder '
            f'{class_names[folder_index[i]]} is class {folder_index[i]} of the '
            f'{len(class_names)} sorted folder names ({len(wrong)} line(s) so)', 'without '
            "classes=, labels must number the sorted folders (ImageNet's meta/train.txt does); "
            "pass classes=[...] in the list's label order")
    return class_names, SampleIndex.from_relative(root, paths, labels)


@DATASETS.register_module()
class ImageNetFolder(Dataset):
    """Classification samples with the paper's augmentation.

    Train: RandomResizedCrop(crop_size) + horizontal flip. Test: resize the short side to
    ``resize_size`` and center-crop ``crop_size`` (256 / 224 for ImageNet).

    Args:
        data_root (str): the split's folder, e.g. ``data/imagenet/train``.
        train (bool): training augmentation or test-time resize + crop.
        crop_size (int), resize_size (int): see above.
        crop_scale (tuple): area range of RandomResizedCrop (the paper's (0.08, 1.0); small
            images of single objects want a larger minimum).
        classes (Sequence[str] | str, optional): class names in label order, or a text file of
            them one per line; default: the sorted class folders (of ``data_root``, or of the
            paths in ``ann_file``).
        ann_file (str, optional): mmpretrain's annotation list (e.g.
            ``data/imagenet/meta/train.txt``; a path as given, like ``data_root``): lines of
            ``<path relative to data_root> <label>``, read instead of scanning ``data_root``.
            See :func:`read_annotation_list`.

        reduced_decode (bool): decode a JPEG at 1/2, 1/4 or 1/8 scale where its crop is
            downscaled by that much anyway (libjpeg's scaled IDCT, ``decode.py``). Off by
            default: every image decoded in full gives the former pixels (cv2 + torchvision v2)
            bit for bit, the same boxes and flips. On, the demo classifier trained on 256 px
            crops (74% of its training decodes reduced) lost 2.7 top-1 points over 3 seeds
            (95% CI [-4.6, -0.8], docs/benchmarks.md), for ~10% more images per core on
            ImageNet-like data; not a default until that is understood. EXIF orientation is not
            applied, as in torchvision's ImageFolder.
        decode_on_device (bool): training only (a test set ignores it and decodes on the CPU):
            leave each JPEG encoded, with its box and flip drawn as the CPU path draws them
            (the same for the same seed), as an :class:`~.decode.EncodedImage` that the model's
            ``resnext_det.DeviceDecodePreprocessor`` decodes in one batched
            ``torchvision.io.decode_jpeg`` call on the model's device (nvjpeg on a GPU), then
            crops, resizes and flips there: the workers only read files. PNGs and the JPEGs
            nvjpeg does not take (CMYK, 12-bit, arithmetic-coded: ``device_decodable``) are
            decoded here as before, so a batch may mix both. Needs
            ``model.data_preprocessor=dict(type='resnext_det.DeviceDecodePreprocessor', ...)``
            (any other preprocessor stops at the first batch, saying so); excludes
            ``reduced_decode`` (the device decodes in full).

    ``samples`` is a :class:`SampleIndex`: ``samples[i]`` and :meth:`get_sample` give
    ``(path, label)``.
    """

    def __init__(self, data_root: str, train: bool = True, crop_size: int = 224,
                 resize_size: int = 256, crop_scale: Sequence[float] = (0.08, 1.0),
                 classes: Optional[Union[str, Sequence[str]]] = None,
                 ann_file: Optional[str] = None, reduced_decode: bool = False,
                 decode_on_device: bool = False):
        if train and decode_on_device and reduced_decode:
            raise ValueError('ImageNetFolder: decode_on_device=True decodes on the device in '
                             'full, so reduced_decode=True would apply to the CPU-decoded '
                             'fallbacks (PNG, CMYK) only; pass one of them')
        self.data_root, self.ann_file = data_root, ann_file
        if ann_file is None:
            self.classes, self.samples = index_image_folder(
                data_root, None if classes is None else _read_class_names(classes))
        else:
            if not osp.isdir(data_root):  # one stat: the 1.28M files are not checked
                raise DatasetError(
                    f'image folder {data_root} (data_root of the annotation list {ann_file}) '
                    'does not exist; point data_root at the folder the listed paths are '
                    'relative to (mmpretrain layout: data/imagenet/train)')
            self.classes, self.samples = read_annotation_list(ann_file, data_root, classes)
        self.metainfo = dict(classes=tuple(self.classes))
        # decode + crop in one step, from the file's path
        self.decode = (RandomResizedCropDecoder(crop_size, scale=crop_scale,
                                                reduce=reduced_decode) if train else
                       ResizeCenterCropDecoder(resize_size, crop_size, reduce=reduced_decode))
        # validation stays on the CPU: its resize + center crop is deterministic and cheap next
        # to training's, and the test loop's preprocessor gets plain tensors
        self.decode_on_device = bool(train and decode_on_device)

    def __len__(self) -> int:
        return len(self.samples)

    def get_sample(self, index: int) -> Tuple[str, int]:
        """(image path, label) of sample ``index``, nothing decoded."""
        return self.samples[index]

    def __getitem__(self, index: int) -> dict:
        path, label = self.get_sample(index)
        if not self.decode_on_device:
            return dict(inputs=self.decode(path), data_samples=label)
        data, width, height, is_jpeg = read_header(path)
        box, flip = self.decode.draw(width, height)  # the CPU path's draws, in its order
        if is_jpeg and device_decodable(data):
            # a copy: the bytes' array is read-only, which torch.from_numpy warns about
            inputs = EncodedImage(jpeg=torch.from_numpy(data.copy()), size=(width, height),
                                  box=box, flip=flip, out_size=self.decode.size, path=path)
        else:
            inputs = self.decode.crop(path, data, width, height, is_jpeg, box, flip)
        return dict(inputs=inputs, data_samples=label)
