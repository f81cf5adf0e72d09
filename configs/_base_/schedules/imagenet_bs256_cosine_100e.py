# Cosine variant of the paper's recipe: 5-epoch linear warmup, then cosine decay to 0.
_base_ = './imagenet_bs256_step_100e.py'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=5, end=100, eta_min=0,
         convert_to_iter_based=True)
]
