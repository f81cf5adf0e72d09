"""Backbone checkpoints: infer their architecture, convert other libraries' layouts, export.

``tools/convert_weights.py`` and ``tools/export_backbone.py`` are the command-line front ends.
"""
from .arch import WeightsError, infer_arch
from .convert import SOURCES, convert, read_checkpoint, verify_against
from .export import export_classifier, save_backbone_checkpoint

__all__ = [
    'SOURCES', 'WeightsError', 'convert', 'export_classifier', 'infer_arch', 'read_checkpoint',
    'save_backbone_checkpoint', 'verify_against'
]
