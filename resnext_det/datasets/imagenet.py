"""ImageNet-format folders (`root/<class>/*.JPEG`) for the companion classification trainer.

Decoding uses OpenCV (libjpeg-turbo), the fastest decoder in the stack (torchvision.io's is
deprecated since 0.29); augmentation is torchvision.transforms.v2 on uint8 tensors.
"""
import os.path as osp
from typing import Optional, Sequence

import cv2
import torch
from torch.utils.data import Dataset
from torchvision.datasets.folder import find_classes, make_dataset
from torchvision.transforms import v2

from ..errors import DatasetError
from ..registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


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
        classes (Sequence[str], optional): class order; default: sorted folder names.
    """

    def __init__(self, data_root: str, train: bool = True, crop_size: int = 224,
                 resize_size: int = 256, crop_scale: Sequence[float] = (0.08, 1.0),
                 classes: Optional[Sequence[str]] = None):
        self.data_root = data_root
        self.classes, self.samples = scan_image_folder(data_root, classes)
        self.metainfo = dict(classes=tuple(self.classes))
        if train:
            self.transform = v2.Compose([
                v2.RandomResizedCrop(crop_size, scale=tuple(crop_scale), antialias=True),
                v2.RandomHorizontalFlip()
            ])
        else:
            self.transform = v2.Compose([
                v2.Resize(resize_size, antialias=True),
                v2.CenterCrop(crop_size)
            ])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        path, label = self.samples[index]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise RuntimeError(f'failed to decode image {path}: missing, truncated or not an '
                               'image; remove or replace the file')
        image = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
        return dict(inputs=self.transform(image), data_samples=label)

