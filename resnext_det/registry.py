"""The `resnext_det` registry scope.

Models, datasets and metrics are children of mmdet's registries, so mmdet configs reach them as
`type='resnext_det.ResNeXt'` and our configs reach mmdet's (FPN, RPNHead, ...) by plain name,
while mmdet's own `ResNeXt` is neither replaced nor shadowed.
"""
from mmdet.registry import (
    DATASETS as MMDET_DATASETS,
    METRICS as MMDET_METRICS,
    MODELS as MMDET_MODELS,
)
from mmengine.registry import HOOKS as MMENGINE_HOOKS, Registry

MODELS = Registry('model', parent=MMDET_MODELS, scope='resnext_det',
                  locations=['resnext_det.models'])
DATASETS = Registry('dataset', parent=MMDET_DATASETS, scope='resnext_det',
                    locations=['resnext_det.datasets'])
METRICS = Registry('metric', parent=MMDET_METRICS, scope='resnext_det',
                   locations=['resnext_det.evaluation'])
# mmengine's Runner looks hooks up in its root registry, whose `get` only finds scoped names
# in direct children: so this one hangs off mmengine's root, not mmdet's.
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='resnext_det',
                 locations=['resnext_det.engine'])
