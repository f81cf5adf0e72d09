"""High-level use of a trained detector: predictions on your own images (``tools/infer.py``).

Not imported by ``import resnext_det``: ``from resnext_det.apis import run_inference``.
"""
from .inference import (
    IMG_EXTENSIONS,
    CheckedDetInferencer,
    CheckpointMismatchError,
    InferenceSummary,
    build_inferencer,
    collect_images,
    load_state_dict_strict,
    read_image,
    resolve_device,
    run_inference,
)

__all__ = [
    'IMG_EXTENSIONS', 'CheckedDetInferencer', 'CheckpointMismatchError', 'InferenceSummary',
    'build_inferencer', 'collect_images', 'load_state_dict_strict', 'read_image', 'resolve_device',
    'run_inference'
]
