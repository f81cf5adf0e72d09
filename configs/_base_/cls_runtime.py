# Runtime of the companion classification trainer (tools/train.py serves it too).
default_scope = 'resnext_det'
custom_imports = dict(imports=['resnext_det'], allow_failed_imports=False)
# stop at the first NaN/inf loss term, naming it, before a bad checkpoint is written; keep the
# RNG states in checkpoints so that --resume continues exactly
custom_hooks = [
    dict(type='resnext_det.NonFiniteLossHook'),
    dict(type='resnext_det.RandomStateHook')
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(window_size=100, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
