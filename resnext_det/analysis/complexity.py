"""Parameter and FLOP counts of the ImageNet classifiers, next to the paper's Table 1/3/5."""
import torch
from mmengine.analysis import FlopAnalyzer

from ..models.builders import (
    resnet50,
    resnet101,
    resnext50_32x4d,
    resnext101_32x4d,
    resnext101_64x4d,
)

NUM_CLASSES = 1000
# name: (builder, paper params in M (with the 1000-way fc), paper GFLOPs = 1e9 multiply-adds)
PAPER = {
    'R-50': (resnet50, 25.5, 4.1),
    'X-50-32x4d': (resnext50_32x4d, 25.0, 4.2),
    'R-101': (resnet101, 44.5, 7.8),
    'X-101-32x4d': (resnext101_32x4d, 44.2, 8.0),
    'X-101-64x4d': (resnext101_64x4d, 83.6, 15.6),
}


def model_stats(name: str, image_size: int = 224) -> dict:
    """Backbone params, classifier params and GFLOPs (multiply-adds, as the paper counts)."""
    builder, paper_params, paper_gflops = PAPER[name]
    backbone = builder().eval()
    backbone_params = sum(p.numel() for p in backbone.parameters())
    feat_dim = backbone.feat_dim
    fc_params = feat_dim * NUM_CLASSES + NUM_CLASSES
    with torch.no_grad():
        analyzer = FlopAnalyzer(backbone, torch.zeros(1, 3, image_size, image_size))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        # fvcore-style counting: one "flop" per multiply-add; + the fc layer's
        gflops = (analyzer.total() + feat_dim * NUM_CLASSES) / 1e9
    params_m = (backbone_params + fc_params) / 1e6
    return dict(name=name, backbone_params=backbone_params, params_m=params_m,
                paper_params_m=paper_params, gflops=gflops, paper_gflops=paper_gflops,
                params_dev=params_m / paper_params - 1, gflops_dev=gflops / paper_gflops - 1)
