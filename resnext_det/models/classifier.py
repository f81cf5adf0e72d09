"""ImageNet classifier around the detection backbone: ResNeXt -> global average pool -> fc.

The parameter names (`backbone.*`, `head.fc.*`) are mmpretrain's, so a checkpoint of this
classifier is an mmpretrain-style checkpoint and the backbone export is a prefix strip.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from ..registry import MODELS


class LinearClsHead(nn.Module):
    """Global average pooling + one linear layer (the paper's classifier)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(F.adaptive_avg_pool2d(feature, 1), 1)))


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Classifier for mmengine's Runner.

    Args:
        backbone (dict): config of the backbone, e.g. ``dict(type='resnext_det.ResNeXt', depth=50,
            groups=32, base_width=4)``; only its last stage is used.
        num_classes (int): number of classes.
        label_smoothing (float): label smoothing of the cross-entropy loss.
        dropout (float): dropout before the fc layer.
        data_preprocessor (dict): normalisation; defaults to ImageNet mean/std on RGB.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int,
                 label_smoothing: float = 0.0,
                 dropout: float = 0.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImgDataPreprocessor',
                                     mean=[123.675, 116.28, 103.53],
                                     std=[58.395, 57.12, 57.375])
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f'ImageClassifier: num_classes={num_classes!r} must be an integer >= 2')
        backbone = dict(backbone)
        num_stages = backbone.get('num_stages', 4)
        backbone.setdefault('out_indices', (num_stages - 1, ))
        # a classifier trains every layer with live BN statistics
        backbone.setdefault('norm_eval', False)
        backbone.setdefault('frozen_stages', -1)
        self.backbone = MODELS.build(backbone)
        self.head = LinearClsHead(self.backbone.out_channels[-1], num_classes, dropout)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[int]] = None,
                mode: str = 'tensor'):
        logits = self.head(self.backbone(inputs)[-1])
        if mode == 'tensor':
            return logits
        labels = torch.as_tensor(data_samples, device=logits.device)
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels,
                                             label_smoothing=self.label_smoothing))
        if mode == 'predict':
            return [dict(scores=scores, label=label)
                    for scores, label in zip(logits.softmax(dim=1), labels)]
        raise ValueError(f"ImageClassifier: mode={mode!r} is not one of 'tensor', 'loss', "
                         f"'predict'")
