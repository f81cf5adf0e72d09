"""resnext_det: a ResNeXt detection backbone for MMDetection 3.x.

Install with `make install` (README): it builds mmcv 2.1.0, which pip alone cannot on current
torch. Exact versions live in requirements/constraints.txt; the ranges below are what the code
needs: torch >= 2.5 for `torch.serialization.safe_globals` (the tensor-only checkpoint loader),
numpy >= 2 for `numpy._core` (the classes of mmengine checkpoints it allows), scipy (already
mmdet's) for the statistics of seed comparisons, simplejpeg (libjpeg-turbo's TurboJPEG API, in
its wheel) for the classification trainer's JPEG decode.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'resnext_det', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


setup(
    name='resnext_det',
    version=read_version(),
    description='ResNeXt detection backbone for MMDetection 3.x with a companion '
    'classification trainer',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['resnext_det', 'resnext_det.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.5',
        'torchvision>=0.20',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmengine>=0.10.0,<1.0.0',
        'mmdet>=3.3.0,<3.4.0',
        'pycocotools',
        'faster-coco-eval>=1.8.0,<2.0',
        'scipy>=1.10',
        'simplejpeg>=1.8',
        'numpy>=2.0',
    ],
    # scikit-image: the sample photographs the input-pipeline benchmark and its tests decode
    extras_require={'tests': ['pytest', 'hypothesis', 'timm', 'scikit-image'], 'lint': ['ruff']},
    license='Apache-2.0',
    zip_safe=False,
)
