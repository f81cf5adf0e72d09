"""Print the versions that matter for a bug report (python, torch, CUDA, mmcv ops, mmdet, ...)."""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

from resnext_det.utils.collect_env import collect_env

if __name__ == '__main__':
    for name, value in collect_env().items():
        print(f'{name}: {value}')
