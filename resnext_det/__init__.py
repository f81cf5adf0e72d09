"""resnext_det: ResNeXt backbone for MMDetection 3.x.

`import resnext_det` (or `custom_imports=dict(imports=['resnext_det'])` in a config) registers
the package's modules in the `resnext_det` registry scope, a child of mmdet's, so configs name
them `type='resnext_det.ResNeXt'` and mmdet's own `ResNeXt` stays untouched. It changes nothing
else in the process (tests/test_plugin_hygiene.py checks that in a fresh interpreter): the
atomic checkpoint backend and the tensor-only checkpoint loader are an explicit opt-in,
`resnext_det.runtime`.
"""
from . import datasets, engine, evaluation, models, registry  # noqa: F401  (registers modules)
from .version import __version__

__all__ = ['__version__']
