"""The companion classifier: builds from every ImageNet config, trains, reports accuracy."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import resnext_det  # noqa: F401
from resnext_det.evaluation import Accuracy
from resnext_det.models import ImageClassifier, ResNeXt
from resnext_det.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'imagenet'
ARCHS = {
    'resnet50_8xb32_in1k.py': (50, 1, 64, 25_557_032),
    'resnext50_32x4d_8xb32_in1k.py': (50, 32, 4, 25_028_904),
    'resnext101_32x4d_8xb32_in1k.py': (101, 32, 4, 44_177_704),
    'resnext101_64x4d_8xb32_in1k.py': (101, 64, 4, 83_455_272),
}


@pytest.mark.parametrize('name', sorted(ARCHS))
def test_imagenet_configs_build_the_paper_recipe(name):
    cfg = Config.fromfile(CONFIGS / name)
    depth, groups, base_width, params = ARCHS[name]
    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, ResNeXt)
    assert (model.backbone.depth, model.backbone.groups, model.backbone.base_width) == \
        (depth, groups, base_width)
    # torchvision's classifier sizes (resnext50_32x4d 25,028,904, resnext101_64x4d 83,455,272)
    assert sum(p.numel() for p in model.parameters()) == params
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.1, momentum=0.9,
                                               weight_decay=1e-4)
    assert cfg.param_scheduler.milestones == [30, 60, 90] and cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 256
    assert cfg.train_dataloader.dataset.crop_size == 224
    assert (cfg.val_dataloader.dataset.resize_size, cfg.val_dataloader.dataset.crop_size) == \
        (256, 224)
    loader = cfg.train_dataloader
    assert loader.num_workers > 0 and loader.pin_memory and loader.persistent_workers


@pytest.mark.slow
def test_classifier_learns_a_tiny_problem():
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=dict(type='resnext_det.ResNeXt', depth=50, groups=4, base_width=4,
                      base_channels=8),
        num_classes=2, data_preprocessor=dict(type='ImgDataPreprocessor'))
    model.init_weights()
    # class 0: dark images, class 1: bright images
    inputs = torch.cat([torch.rand(4, 3, 32, 32) * 0.3, torch.rand(4, 3, 32, 32) * 0.3 + 0.7])
    labels = [0] * 4 + [1] * 4
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = None
    for _ in range(15):
        loss = model(inputs, labels, mode='loss')['loss']
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2
    model.eval()
    with torch.no_grad():
        preds = model(inputs, labels, mode='predict')
    assert [int(p['scores'].argmax()) for p in preds] == labels
    assert model(inputs).shape == (8, 2)


def test_accuracy_metric_top1_top5():
    metric = Accuracy(topk=(1, 2))
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    metric.process(None, [dict(scores=row, label=label) for row, label in zip(scores, [0, 1, 1])])
    result = metric.compute_metrics(metric.results)
    assert result == pytest.approx({'top1': 100 / 3, 'top2': 200 / 3})


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_classes'):
        ImageClassifier(backbone=dict(type='resnext_det.ResNeXt', depth=50), num_classes=1)
