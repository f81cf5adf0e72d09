"""Every experiment config builds, has mmdet's 1x recipe, and runs one forward on tiny input."""
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

from resnext_det.models import ResNeXt

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
EXPERIMENTS = {
    'faster_rcnn_r50_fpn.py': (50, 1),
    'faster_rcnn_x50_32x4d_fpn.py': (50, 32),
    'faster_rcnn_r101_fpn.py': (101, 1),
    'faster_rcnn_x101_32x4d_fpn.py': (101, 32),
    'faster_rcnn_x101_64x4d_fpn.py': (101, 64),
    'mask_rcnn_r101_fpn.py': (101, 1),
    'mask_rcnn_x101_32x4d_fpn.py': (101, 32),
}


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules()


def tiny_sample(with_mask):
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                         ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 40., 48.]]), labels=torch.tensor([1]))
    if with_mask:
        from mmdet.structures.mask import BitmapMasks
        mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
        mask[:, 8:48, 8:40] = 1
        gt.masks = BitmapMasks(mask.numpy(), 64, 64)
    sample.gt_instances = gt
    return sample


def test_x101_32x4d_is_mmdets_1x_recipe():
    cfg = Config.fromfile(CONFIGS / 'faster_rcnn_x101_32x4d_fpn.py')
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.02, momentum=0.9,
                                               weight_decay=0.0001)
    assert cfg.train_cfg.max_epochs == 12
    steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
    assert steps[0].milestones == [8, 11]
    warmup = [s for s in cfg.param_scheduler if s.type == 'LinearLR'][0]
    assert (warmup.end, warmup.by_epoch) == (500, False)
    assert cfg.auto_scale_lr.base_batch_size == 16 and cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    resize = [t for t in cfg.train_pipeline if t.type == 'Resize'][0]
    assert resize.scale == (1333, 800) and resize.keep_ratio
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth, backbone.groups, backbone.base_width) == \
        ('resnext_det.ResNeXt', 101, 32, 4)
    assert backbone.frozen_stages == 1 and backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.neck.out_channels == 256 and cfg.model.neck.num_outs == 5
    assert 'resnext_det' in cfg.custom_imports.imports


@pytest.mark.parametrize('name', sorted(EXPERIMENTS))
def test_experiment_builds_and_runs_one_forward(name):
    cfg = Config.fromfile(CONFIGS / name)
    depth, groups = EXPERIMENTS[name]
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, ResNeXt)
    assert (model.backbone.depth, model.backbone.groups) == (depth, groups)
    model.init_weights()
    with_mask = name.startswith('mask')
    losses = model(torch.rand(1, 3, 64, 64), [tiny_sample(with_mask)], mode='loss')
    assert ('loss_mask' in losses) == with_mask
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
