# ImageNet-1K folders (data/imagenet/{train,val}/<class>/*.JPEG), the paper's augmentation:
# train RandomResizedCrop 224 + flip; val resize short side 256 + center crop 224.
# 32 images per GPU x 8 GPUs = the paper's batch of 256. Loading keeps a GPU fed: worker
# processes, pinned memory, persistent workers, libjpeg-turbo decoding (OpenCV).
#
# The samples are found by scanning the class folders (ann_file=None), which works for this
# layout, the demo set (tools/make_demo_data.py) and any torchvision ImageFolder tree. At full
# size every rank then lists 1.28M files at start-up (minutes on a network file system). With
# mmpretrain's layout, read its annotation lists instead, as mmpretrain's ImageNet does:
#   data/imagenet/meta/train.txt  lines 'n01440764/n01440764_10026.JPEG 0' (path relative to
#                                 data_root, label = index of the sorted class folders)
#   data/imagenet/meta/val.txt    lines 'ILSVRC2012_val_00000001.JPEG 65' (no class folder, so
#                                 the class names come from classes=: a list, or a text file
#                                 of names one per line, e.g. made by
#                                 cut -d/ -f1 data/imagenet/meta/train.txt | sort -u
#                                   > data/imagenet/meta/classes.txt)
# i.e. train_dataloader.dataset.ann_file=data_root + 'meta/train.txt' and
# val_dataloader.dataset: ann_file=data_root + 'meta/val.txt',
# classes=data_root + 'meta/classes.txt' (ann_file and classes are paths as given, like
# data_root). The default stays the folder scan: it needs no list, and the val folder of this
# layout has class sub-folders, which mmpretrain's flat val/ does not.
data_root = 'data/imagenet/'
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    pin_memory=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='resnext_det.ImageNetFolder', data_root=data_root + 'train', train=True,
                 crop_size=224, ann_file=None))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    pin_memory=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='resnext_det.ImageNetFolder', data_root=data_root + 'val', train=False,
                 crop_size=224, resize_size=256, ann_file=None))
test_dataloader = val_dataloader
val_evaluator = dict(type='resnext_det.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
