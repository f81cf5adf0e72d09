# Runtime of the companion classification trainer (tools/train.py serves it too): the detection
# runtime, so what every run of this project adds (the resnext_det imports, the NaN/RNG/
# tensor-only hooks, atomic checkpoints, the collective timeout) comes from one file, with a
# classifier's checkpointing and logging on top.
_base_ = './default_runtime.py'
default_scope = 'resnext_det'
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='accuracy/top1', rule='greater'))
env_cfg = dict(cudnn_benchmark=True)
# a plain visualizer (mmdet's DetVisualizationHook stays registered but only draws for
# --show/--show-dir, which classification runs do not take)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(_delete_=True, type='Visualizer', vis_backends=vis_backends)
log_processor = dict(window_size=100, by_epoch=True)
