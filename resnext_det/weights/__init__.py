"""Backbone checkpoints: infer their architecture, convert other libraries' layouts, export.

``tools/convert_weights.py`` and ``tools/export_backbone.py`` are the command-line front ends.
"""
from .arch import WeightsError, describe_arch, infer_arch
from .convert import SOURCES, convert, read_checkpoint, verify_against
from .export import (
    OutputExistsError,
    SavedCheckpoint,
    export_classifier,
    file_sha256,
    save_backbone_checkpoint,
    weights_sha256,
)

__all__ = [
    'SOURCES', 'OutputExistsError', 'SavedCheckpoint', 'WeightsError', 'convert',
    'describe_arch', 'export_classifier', 'file_sha256', 'infer_arch', 'read_checkpoint',
    'save_backbone_checkpoint', 'verify_against', 'weights_sha256'
]
