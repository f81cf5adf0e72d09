"""mmdet's two-fc box head with its detections post-processed in fp32 under autocast."""
import contextlib
from typing import Optional, Sequence

import torch
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead as MMDetShared2FCBBoxHead

from ..registry import MODELS


def autocast_off(device: torch.device):
    """A context in which autocast is off on ``device``: every op runs in its inputs' dtypes."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()  # a device without autocast (meta): nothing to switch off


def _float(tensors: Sequence[Optional[torch.Tensor]]) -> tuple:
    # a head without regression (or classification) passes None per image
    return tuple(None if t is None else t.float() for t in tensors)


@MODELS.register_module()
class Shared2FCBBoxHead(MMDetShared2FCBBoxHead):
    """mmdet's ``Shared2FCBBoxHead`` that turns its outputs into detections in fp32.

    Under autocast the fcs give bf16/fp16 class logits and box deltas. On CPU the stock head
    softmaxes the logits in that dtype (CUDA autocast runs softmax in fp32), while the boxes,
    decoded from the fp32 RoIs, come out fp32. mmcv's ``batched_nms`` gets both: from 10,000
    candidate boxes on it runs NMS class by class and writes the scores its ``nms`` returns
    (concatenated with the boxes, so promoted to fp32) into a tensor of the scores' dtype,
    which stops with "Index put requires the source and destination dtypes match". Below that
    the scores come out fp32 holding bf16's rounding, and the boxes carry the rounding of the
    deltas decoded in bf16.

    So the logits, deltas and RoIs are cast to fp32 and the post-processing (softmax, decoding,
    NMS) runs with autocast off: elementwise ops and NMS on small tensors. The detections are
    fp32 whatever the autocast dtype; the fcs and the losses are untouched. Without autocast
    this is exactly mmdet's head.
    """

    def predict_by_feat(self, rois, cls_scores, bbox_preds, *args, **kwargs):
        device = next((r.device for r in rois), torch.device('cpu'))
        with autocast_off(device):
            return super().predict_by_feat(_float(rois), _float(cls_scores),
                                           _float(bbox_preds), *args, **kwargs)
