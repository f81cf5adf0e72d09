"""The opt-in runtime: what ``import resnext_det`` deliberately does not do.

``import resnext_det`` only registers the package's modules in its registry scope. This module
switches on the process-wide parts of the project's reliability guarantees
(docs/reliability.md), explicitly:

* the atomic checkpoint backend is registered under its own name,
  ``'resnext_det.atomic_local'``, which our ``_base_`` runtimes select with
  ``default_hooks.checkpoint.backend_args`` (mmengine's ``'local'`` backend is not touched);
* mmengine's loader for local checkpoints (``load_from``, ``--resume``,
  ``init_cfg=dict(type='Pretrained')``) becomes :func:`resnext_det.utils.safe_load.
  load_checkpoint_file`: tensor-only under torch >= 2.6 with our runner checkpoints still
  resuming, code-bearing pickles refused unless ``--allow-unsafe-pickle``, corrupt files named.

``tools/train.py`` and ``tools/test.py`` call :func:`install` at start-up, and our ``_base_``
runtimes list this module in ``custom_imports``. Another MMDetection project opts in with

    custom_imports = dict(imports=['resnext_det', 'resnext_det.runtime'])

Importing this module installs; :func:`install` is idempotent.
"""
from .engine.durable_checkpoints import ATOMIC_BACKEND, register_atomic_backend
from .utils.safe_load import load_checkpoint_file

__all__ = ['ATOMIC_BACKEND', 'install']


def _load_local(filename: str, map_location=None):
    # mmengine's CheckpointLoader calls loaders as loader(filename, map_location)
    return load_checkpoint_file(filename, map_location=map_location)


def install() -> None:
    """Register the atomic backend and route mmengine's local checkpoint loads through the safe
    loader (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    register_atomic_backend()
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local, force=True)


install()
