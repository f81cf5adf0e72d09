"""mmdet's RPN head with proposals decoded in fp32 under autocast."""
from mmdet.models.dense_heads import RPNHead as MMDetRPNHead

from ..registry import MODELS


@MODELS.register_module()
class RPNHead(MMDetRPNHead):
    """mmdet's ``RPNHead`` that turns its outputs into proposals in fp32.

    Under autocast the stock head generates the anchors in the dtype of its conv outputs. In
    bf16 (8-bit mantissa) an anchor edge at x=1000 lands on a multiple of 4 pixels, and on CPU
    the decoded boxes stay bf16, which mmcv's NMS refuses. Proposal generation is a few
    elementwise ops on the small head outputs, so it runs in fp32; the convolutions and the
    losses are untouched. In fp32 training this is exactly mmdet's head.
    """

    def predict_by_feat(self, cls_scores, bbox_preds, *args, **kwargs):
        return super().predict_by_feat([s.float() for s in cls_scores],
                                        [b.float() for b in bbox_preds], *args, **kwargs)
