"""mmcv built with CUDA ops (`make install CUDA=1`, no GPU needed): the extension carries kernels
for the architectures asked for and exports the CUDA launchers of every op the configs use, and
collect_env says so. Runs only where the installed mmcv has CUDA ops (`-m cuda_build`)."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resnext_det.utils.collect_env import collect_env, cuda_archs

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.cuda_build
# the CUDA side of RoIAlign (Faster and Mask R-CNN's RoI extractors) and nms (RPN, batched_nms)
LAUNCHERS = ('ROIAlignForwardCUDAKernelLauncher', 'ROIAlignBackwardCUDAKernelLauncher',
             'NMSCUDAKernelLauncher')


@pytest.fixture(scope='module')
def extension() -> str:
    from mmcv.ops import get_compiling_cuda_version
    if get_compiling_cuda_version() in ('not available', ''):
        pytest.skip('the installed mmcv has no CUDA ops: make install CUDA=1 builds them')
    return importlib.util.find_spec('mmcv._ext').origin


def test_kernels_for_the_asked_architectures(extension):
    import torch
    from mmcv.ops import get_compiling_cuda_version
    asked = os.environ.get('TORCH_CUDA_ARCH_LIST', '8.0;9.0').replace(' ', ';').split(';')
    sass, _ = cuda_archs(extension)
    assert set(asked) <= set(sass), (asked, sass)
    assert get_compiling_cuda_version() == torch.version.cuda


def test_the_cuda_launchers_of_the_configs_ops_are_exported(extension):
    if shutil.which('nm') is None:
        pytest.skip('needs nm (binutils)')
    symbols = subprocess.run(['nm', '-DC', '--defined-only', extension], capture_output=True,
                             text=True, check=True).stdout
    missing = [name for name in LAUNCHERS if f' {name}(' not in symbols]
    assert not missing, missing


def test_collect_env_names_the_architectures(extension):
    sass, _ = cuda_archs(extension)
    assert collect_env()['MMCV CUDA ops'].startswith(f"yes (compiled for {';'.join(sass)}")
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'collect_env.py')],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert f"MMCV CUDA ops: yes (compiled for {';'.join(sass)}" in out


def test_the_cpu_ops_still_run_without_a_gpu(extension):
    import torch
    from mmcv.ops import RoIAlign, batched_nms
    from torchvision.ops import roi_align
    feats = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    rois = torch.tensor([[0, 1.0, 2.0, 10.0, 12.0]])
    torch.testing.assert_close(
        RoIAlign((4, 4), 1.0, 2, aligned=True)(feats, rois),
        roi_align(feats, rois, (4, 4), spatial_scale=1.0, sampling_ratio=2, aligned=True))
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60.]])
    _, keep = batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 1]),
                          dict(iou_threshold=0.5))
    assert keep.tolist() == [0, 2]
