"""Imported first by every tool, before mmengine/mmcv/mmdet: setuptools deprecates
pkg_resources, which mmengine and mmcv import. The warning is not ours to fix and would bury the
command's own output; real warnings still show."""
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning,
                        module=r'(mmengine|mmcv|mmdet|importlib)(\.|$)')
