# ImageNet-1K folders (data/imagenet/{train,val}/<class>/*.JPEG), the paper's augmentation:
# train RandomResizedCrop 224 + flip; val resize short side 256 + center crop 224.
# 32 images per GPU x 8 GPUs = the paper's batch of 256. Loading keeps a GPU fed: worker
# processes, pinned memory, persistent workers, and a decoder that decodes only what the crop
# needs (resnext_det/datasets/decode.py; per-core speed: docs/benchmarks.md, "Scale").
#
# Samples come from scanning the class folders (ann_file=None: this layout, the demo set, any
# torchvision ImageFolder tree). At full size every rank then lists 1.28M files at start-up;
# mmpretrain's annotation lists avoid that (paths as given, like data_root):
#   train_dataloader.dataset.ann_file='data/imagenet/meta/train.txt'
#       lines 'n01440764/n01440764_10026.JPEG 0': class names = the sorted folders
#   val_dataloader.dataset.ann_file='data/imagenet/meta/val.txt' (flat: no class folder), with
#       classes='data/imagenet/meta/classes.txt', one name per line, e.g. from
#       cut -d/ -f1 data/imagenet/meta/train.txt | sort -u > data/imagenet/meta/classes.txt
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
