"""The five 50-layer ImageNet configs of the cardinality ablation (paper Table 3)."""
from pathlib import Path

import pytest
from mmengine.config import Config

from resnext_det.analysis.cardinality import count_params, group_width
from resnext_det.models import ResNeXt

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'imagenet'
R50 = 'resnet50_8xb32_in1k.py'
VARIANTS = {
    R50: 1,
    'resnext50_2x40d_8xb32_in1k.py': 2,
    'resnext50_4x24d_8xb32_in1k.py': 4,
    'resnext50_8x14d_8xb32_in1k.py': 8,
    'resnext50_32x4d_8xb32_in1k.py': 32,
}
R50_PARAMS = 23_508_032


def _build(backbone):
    return ResNeXt(**{k: v for k, v in backbone.items() if k != 'type'})


@pytest.mark.parametrize('name', list(VARIANTS))
def test_backbone_is_the_fixed_complexity_template(name):
    cfg = Config.fromfile(CONFIGS / name)
    backbone = cfg.model.backbone.to_dict()
    cardinality = VARIANTS[name]
    assert backbone['type'] == 'resnext_det.ResNeXt' and backbone['depth'] == 50
    assert backbone['groups'] == cardinality
    if cardinality > 1:  # ResNet's width is planes whatever base_width says
        assert backbone['base_width'] == group_width(50, cardinality)
    params = count_params(_build(backbone))
    assert abs(params / R50_PARAMS - 1) < 0.025, params


@pytest.mark.parametrize('name', [n for n in VARIANTS if n != R50])
def test_only_the_backbone_width_differs_from_resnet50(name):
    base, cfg = Config.fromfile(CONFIGS / R50), Config.fromfile(CONFIGS / name)
    text = (CONFIGS / name).read_text()
    assert "_base_ = './resnet50_8xb32_in1k.py'" in text  # derived, not copied
    a, b = base.to_dict(), cfg.to_dict()
    for d in (a, b):
        d['model']['backbone'].pop('groups')
        d['model']['backbone'].pop('base_width')
    assert a == b
