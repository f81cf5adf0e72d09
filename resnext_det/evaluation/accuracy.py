"""Top-k accuracy for the classification trainer (mmengine metric, gathered across ranks)."""
from typing import Sequence

import torch
from mmengine.evaluator import BaseMetric

from ..registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-1 / top-5 accuracy in percent, reported as ``accuracy/top1`` and ``accuracy/top5``."""
    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), **kwargs):
        super().__init__(**kwargs)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            scores = sample['scores'].float().cpu()
            label = int(sample['label'])
            ranks = scores.argsort(descending=True)
            self.results.append([int(label in ranks[:k]) for k in self.topk])

    def compute_metrics(self, results: list) -> dict:
        hits = torch.tensor(results, dtype=torch.float64)
        return {f'top{k}': float(hits[:, i].mean() * 100) for i, k in enumerate(self.topk)}
