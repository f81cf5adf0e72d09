"""Print the versions that matter for a bug report (python, torch, CUDA, mmcv ops, mmdet, ...)."""
import warnings

# setuptools deprecates pkg_resources, which mmengine and mmcv import: not ours to fix, and it
# would bury the command's own output (real warnings still show)
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning,
                        module=r'(mmengine|mmcv|mmdet|importlib)(\.|$)')

from resnext_det.utils.collect_env import collect_env

if __name__ == '__main__':
    for name, value in collect_env().items():
        print(f'{name}: {value}')
