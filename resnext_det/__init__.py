"""resnext_det: ResNeXt backbone for MMDetection 3.x.

`import resnext_det` (or `custom_imports=dict(imports=['resnext_det'])` in a config) registers
the package's modules in the `resnext_det` registry scope, a child of mmdet's, so configs name
them `type='resnext_det.ResNeXt'` and mmdet's own `ResNeXt` stays untouched.
"""
from .version import __version__
from . import datasets, engine, evaluation, models, registry  # noqa: F401  (registers modules)
from .engine.checkpointing import install_atomic_local_backend
from .utils.checkpoint import install_safe_checkpoint_loader, install_safe_globals

install_safe_globals()
install_safe_checkpoint_loader()
install_atomic_local_backend()

__all__ = ['__version__']
