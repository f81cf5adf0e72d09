# ImageNet-1K folders (data/imagenet/{train,val}/<class>/*.JPEG), the paper's augmentation:
# train RandomResizedCrop 224 + flip; val resize short side 256 + center crop 224.
# 32 images per GPU x 8 GPUs = the paper's batch of 256. Loading keeps a GPU fed: worker
# processes, pinned memory, persistent workers, libjpeg-turbo decoding (torchvision.io).
data_root = 'data/imagenet/'
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    pin_memory=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='resnext_det.ImageNetFolder', data_root=data_root + 'train', train=True,
                 crop_size=224))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    pin_memory=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='resnext_det.ImageNetFolder', data_root=data_root + 'val', train=False,
                 crop_size=224, resize_size=256))
test_dataloader = val_dataloader
val_evaluator = dict(type='resnext_det.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
