# mmdet's runtime, plus the import that registers the `resnext_det` scope.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['resnext_det'], allow_failed_imports=False)
# stop at the first NaN/inf loss term, naming it, before a bad checkpoint is written; keep the
# RNG states in checkpoints so that --resume continues exactly
custom_hooks = [
    dict(type='resnext_det.NonFiniteLossHook'),
    dict(type='resnext_det.RandomStateHook')
]
