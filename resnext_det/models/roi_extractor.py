"""mmdet's RoI extractor, made safe for channels_last features and bf16/fp16 autocast."""
from typing import Optional, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor as MMDetSingleRoIExtractor

from ..registry import MODELS


@MODELS.register_module()
class SingleRoIExtractor(MMDetSingleRoIExtractor):
    """mmdet's ``SingleRoIExtractor`` whose RoIAlign always reads contiguous fp32 features.

    Three defects of the stock extractor on the fast path, all fixed by the same cast:

    * mmcv's RoIAlign kernels read the feature map as contiguous NCHW memory: a channels_last
      map gives wrong numbers silently (tests/models/test_roi_extractor.py shows it);
    * mmcv has no bf16 RoIAlign kernel, so bf16 autocast stops with NotImplementedError;
    * the stock extractor casts the RoIs to the features' dtype; in bf16 (8-bit mantissa) a box
      corner near x=1000 moves by up to 4 pixels.

    RoIAlign is cheap next to the convolutions, so it runs in fp32 here (torchvision's autocast
    policy for its own roi_align too) and the pooled features go back in the input dtype. In
    plain fp32 NCHW training this is exactly mmdet's extractor.
    """

    def forward(self,
                feats: Tuple[torch.Tensor, ...],
                rois: torch.Tensor,
                roi_scale_factor: Optional[float] = None) -> torch.Tensor:
        dtype = feats[0].dtype
        feats = tuple(f.float().contiguous() for f in feats)
        roi_feats = super().forward(feats, rois.float(), roi_scale_factor)
        return roi_feats.to(dtype)
