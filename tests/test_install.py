"""The installed stack: the package imports, mmcv's compiled ops run, mmdet builds a detector."""
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_package_imports_and_has_version():
    import resnext_det
    assert resnext_det.__version__.count('.') == 2


def test_mmcv_roi_align_on_cpu_matches_torchvision():
    from mmcv.ops import RoIAlign
    from torchvision.ops import roi_align
    feats = torch.randn(2, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    rois = torch.tensor([[0, 1.0, 2.0, 10.0, 12.0], [1, 0.5, 0.5, 15.0, 7.5]])
    out = RoIAlign((4, 4), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feats, rois)
    ref = roi_align(feats, rois, (4, 4), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    assert out.shape == (2, 8, 4, 4)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_mmcv_nms_on_cpu_matches_torchvision():
    from mmcv.ops import nms
    from torchvision.ops import nms as tv_nms
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + torch.rand(50, 2, generator=g) * 30 + 1], dim=1)
    scores = torch.rand(50, generator=g)
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    ref_keep = tv_nms(boxes, scores, 0.5)
    assert torch.equal(keep.sort().values, ref_keep.sort().values)
    assert dets.shape == (len(keep), 5)


def test_stock_faster_rcnn_builds_and_runs_one_forward():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.structures import InstanceData
    from mmengine.utils import get_installed_path
    register_all_modules()
    cfg = Config.fromfile(Path(get_installed_path('mmdet')) / '.mim' / 'configs' / '_base_' /
                          'models' / 'faster-rcnn_r50_fpn.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                         ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 40., 40.]]),
                                      labels=torch.tensor([3]))
    losses = model(torch.rand(1, 3, 64, 64), [sample], mode='loss')
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox'} <= set(losses)
    model.eval()
    with torch.no_grad():
        [result] = model(torch.rand(1, 3, 64, 64), [sample], mode='predict')
    assert result.pred_instances.bboxes.shape[1] == 4


def test_collect_env_prints_everything():
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'collect_env.py')],
                         capture_output=True, text=True, check=True).stdout
    for key in ('sys.platform', 'Python', 'PyTorch', 'TorchVision', 'CUDA available', 'MMCV',
                'MMCV ops: yes', 'MMCV CUDA ops', 'MMEngine', 'MMDetection', 'resnext_det'):
        assert key in out, key
