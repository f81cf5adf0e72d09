# Runtime of the companion classification trainer (tools/train.py serves it too).
default_scope = 'resnext_det'
# 'resnext_det' registers our modules; 'resnext_det.runtime' is the explicit opt-in to the
# atomic checkpoint backend and the tensor-only checkpoint loader (docs/reliability.md)
custom_imports = dict(imports=['resnext_det', 'resnext_det.runtime'], allow_failed_imports=False)
# stop at the first NaN/inf loss term, naming it, before a bad checkpoint is written; keep the
# RNG states in checkpoints so that --resume continues exactly; keep checkpoints loadable
# tensor-only (weights_only=True)
custom_hooks = [
    dict(type='resnext_det.NonFiniteLossHook'),
    dict(type='resnext_det.RandomStateHook'),
    dict(type='resnext_det.TensorOnlyCheckpointHook')
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='accuracy/top1', rule='greater',
                    # all-or-nothing writes (temporary file + rename), never truncated by a kill
                    backend_args=dict(backend='resnext_det.atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # collective timeout in seconds (1800 s = 30 min, torch's default, stated to be lowered): a
    # rank that dies, hangs or is stopped makes the others give up after it, and
    # tools/dist_train.sh ends the job naming the rank (docs/reliability.md)
    dist_cfg=dict(backend='nccl', timeout=1800))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(window_size=100, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
