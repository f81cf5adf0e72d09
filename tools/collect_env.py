"""Print the versions that matter for a bug report (python, torch, CUDA, mmcv ops, mmdet, ...)."""
from resnext_det.utils.collect_env import collect_env

if __name__ == '__main__':
    for name, value in collect_env().items():
        print(f'{name}: {value}')
