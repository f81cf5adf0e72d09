# mmdet's runtime plus what every run of this project adds (detection and classification:
# cls_runtime.py inherits this file), all in this one place.
_base_ = 'mmdet::_base_/default_runtime.py'
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
# checkpoints are written all-or-nothing (temporary file + rename), never truncated by a kill
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='resnext_det.atomic_local')))
# a rank that dies, hangs or is stopped leaves the others waiting in a collective: they give up
# after this many seconds (1800 s = 30 min, torch's own default, stated here so that it can be
# lowered) and tools/dist_train.sh ends the job naming the rank (docs/reliability.md)
env_cfg = dict(dist_cfg=dict(timeout=1800))
