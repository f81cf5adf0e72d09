"""resnext_det.Shared2FCBBoxHead against mmdet's: equal without autocast, and under bf16/fp16
autocast the fp32 detections where the stock head stops (10,000 candidate boxes or more: mmcv's
``batched_nms`` mixes dtypes) or rounds the scores to the autocast dtype (fewer)."""
import importlib
from pathlib import Path

import pytest
import torch
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead as MMDetShared2FCBBoxHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from model_testing import slim_detector_cfg  # tests/, on sys.path under pytest

from resnext_det.models import Shared2FCBBoxHead

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
NUM_CLASSES = 80
HEAD = dict(in_channels=8, fc_out_channels=16, roi_feat_size=7, num_classes=NUM_CLASSES)
IMG_META = dict(img_shape=(256, 256), ori_shape=(256, 256), scale_factor=(1.0, 1.0))
# mmcv's batched_nms runs NMS class by class from this many boxes on (its split_thr)
SPLIT_THR = 10000


def rcnn_test_cfg(score_thr=0.0):
    # score_thr 0: every RoI x class is a candidate box
    return ConfigDict(score_thr=score_thr, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100)


def head_outputs(num_rois, seed=0):
    """RoIs of one 256x256 image and the head's outputs for them, the outputs rounded to bf16
    (also exact in fp16 at this scale): the fp32 and the autocast runs then post-process the
    same numbers, and only the post-processing can differ."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_rois, 2, generator=g) * 200
    wh = torch.rand(num_rois, 2, generator=g) * 100 + 4
    rois = torch.cat([torch.zeros(num_rois, 1), xy, xy + wh], dim=1)
    cls_score = (torch.randn(num_rois, NUM_CLASSES + 1, generator=g) * 2).bfloat16().float()
    bbox_pred = (torch.randn(num_rois, NUM_CLASSES * 4, generator=g) * 0.5).bfloat16().float()
    return rois, cls_score, bbox_pred


def predict(head, rois, cls_score, bbox_pred, dtype=None, cfg=rcnn_test_cfg()):
    """``head.predict_by_feat`` for one image; under ``dtype`` autocast the outputs come in that
    dtype, as the fcs give them there."""
    if dtype is not None:
        cls_score, bbox_pred = cls_score.to(dtype), bbox_pred.to(dtype)
    with torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
        return head.predict_by_feat((rois, ), (cls_score, ), (bbox_pred, ), [IMG_META],
                                    rcnn_test_cfg=cfg)[0]


@pytest.mark.parametrize('num_rois', [200, 100], ids=['split_nms', 'one_nms'])
def test_same_as_mmdet_without_autocast(num_rois):
    inputs = head_outputs(num_rois)
    expected = predict(MMDetShared2FCBBoxHead(**HEAD), *inputs)
    got = predict(Shared2FCBBoxHead(**HEAD), *inputs)
    assert len(got) == 100
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(got[key], expected[key]), key


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('num_rois', [200, 100], ids=['split_nms', 'one_nms'])
def test_autocast_gives_the_fp32_detections(num_rois, dtype):
    # 200 RoIs x 80 classes = 16,000 candidates: mmcv's per-class NMS; 8,000: its single NMS
    head = Shared2FCBBoxHead(**HEAD)
    inputs = head_outputs(num_rois)
    expected = predict(head, *inputs)
    got = predict(head, *inputs, dtype=dtype)
    assert got.bboxes.dtype == got.scores.dtype == torch.float32
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(got[key], expected[key]), key


def test_stock_head_fails_or_rounds_under_autocast():
    """The defects the class exists for, on the same inputs as above."""
    head = MMDetShared2FCBBoxHead(**HEAD)
    with pytest.raises(RuntimeError, match='Index put requires the source and destination'):
        predict(head, *head_outputs(200), dtype=torch.bfloat16)
    inputs = head_outputs(100)
    expected, got = predict(head, *inputs), predict(head, *inputs, dtype=torch.bfloat16)
    # fp32 scores (mmcv's nms concatenates them with the fp32 boxes) holding bf16's rounding
    assert got.scores.dtype == torch.float32
    assert not torch.allclose(got.scores, expected.scores, rtol=1e-4, atol=0)


def test_raw_results_without_test_cfg_are_fp32():
    """Without rcnn_test_cfg (mmdet's test-time augmentation) the head returns every RoI's
    boxes and class scores, before NMS: in fp32 too."""
    head = Shared2FCBBoxHead(**HEAD)
    rois, cls_score, bbox_pred = head_outputs(50)
    got = predict(head, rois, cls_score, bbox_pred, dtype=torch.bfloat16, cfg=None)
    expected = predict(head, rois, cls_score, bbox_pred, cfg=None)
    assert got.bboxes.dtype == got.scores.dtype == torch.float32
    assert torch.equal(got.bboxes, expected.bboxes) and torch.equal(got.scores, expected.scores)


# ---- a whole detector of the fast configs, slim, predicting under bf16 autocast ----

@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules()


def slim_detector(name):
    """The config's slim detector (model_testing.slim_detector_cfg), its R-CNN keeping every
    candidate box (score_thr 0), in eval mode."""
    cfg = slim_detector_cfg(CONFIGS / name)
    cfg.test_cfg.rcnn.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    # mmdet's init (std 0.01 and 0.001) gives every box a score near 1/81 and deltas near 0:
    # scaled, the scores spread over 1e-4..0.2 and the boxes move by up to a pixel or two, so
    # that comparing them tells something
    with torch.no_grad():
        model.roi_head.bbox_head.fc_cls.weight.mul_(100)
        model.roi_head.bbox_head.fc_reg.weight.mul_(300)
    return model.eval()


def image_sample(size=64):
    return DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                       pad_shape=(size, size), scale_factor=(1.0, 1.0)))


@pytest.fixture
def nms_sizes(monkeypatch):
    """The number of boxes of each mmcv ``batched_nms`` call of the R-CNN's multiclass_nms."""
    module = importlib.import_module('mmdet.models.layers.bbox_nms')
    sizes, batched_nms = [], module.batched_nms

    def recording(boxes, *args, **kwargs):
        sizes.append(len(boxes))
        return batched_nms(boxes, *args, **kwargs)

    monkeypatch.setattr(module, 'batched_nms', recording)
    return sizes


@pytest.mark.parametrize('name', ['faster_rcnn_x101_32x4d_fpn_fast.py',
                                  'mask_rcnn_x101_32x4d_fpn_fast.py'])
def test_fast_detector_predicts_in_fp32_under_bf16_autocast(name, nms_sizes):
    """mmdet's predict path end to end (RPN, RoI head, mask head): more than 10,000 candidate
    boxes reach mmcv's NMS, and the detections come out fp32. The backbone's bf16 rounding
    reorders the near-tied scores of random weights, so the detections are compared as score
    lists here; the RoI head test below compares them box for box."""
    model = slim_detector(name)
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(images, [image_sample()], mode='predict')[0].pred_instances
        with torch.autocast('cpu', dtype=torch.bfloat16):
            got = model(images, [image_sample()], mode='predict')[0].pred_instances
    assert nms_sizes[1] >= SPLIT_THR  # [fp32 run, bf16 run]
    assert got.bboxes.dtype == got.scores.dtype == torch.float32
    assert len(got) == len(expected) == 100
    assert ((got.bboxes >= 0) & (got.bboxes <= 64)).all()
    # bf16's rounding in the backbone and the fcs, compounded: some % of a score
    torch.testing.assert_close(got.scores, expected.scores, rtol=0.1, atol=1e-3)
    if 'masks' in expected:
        assert got.masks.dtype == torch.bool and got.masks.shape == expected.masks.shape


def test_fast_roi_head_gives_the_fp32_detections_under_bf16_autocast(nms_sizes):
    """The RoI head of the fast config on 144 disjoint proposals (17,280 candidate boxes, so
    NMS keeps each and the comparison does not hang on near-tied scores): under bf16 autocast
    the same boxes to bf16 rounding, the same labels and close scores."""
    model = slim_detector('faster_rcnn_x101_32x4d_fpn_fast.py')
    model.test_cfg.rcnn.max_per_img = -1  # all of them
    corners = torch.stack(torch.meshgrid(torch.arange(12.), torch.arange(12.), indexing='ij'),
                          -1).view(-1, 2) * 10 + 3
    proposals = InstanceData(bboxes=torch.cat([corners, corners + 6], dim=1),
                             scores=torch.ones(144))

    def detect(dtype=None):
        with torch.no_grad(), torch.autocast('cpu', dtype=dtype or torch.float32,
                                             enabled=dtype is not None):
            feats = model.extract_feat(torch.rand(1, 3, 128, 128,
                                                  generator=torch.Generator().manual_seed(0)))
            dets = model.roi_head.predict(feats, [proposals], [image_sample(128)])[0]
        # one detection per (class, proposal): in that order, whatever the scores
        centers = ((dets.bboxes[:, :2] + dets.bboxes[:, 2:]) / 2 - 6) / 10
        order = (dets.labels * 144 + centers.round().long() @ torch.tensor([12, 1])).argsort()
        return dets[order]

    expected, got = detect(), detect(torch.bfloat16)
    assert nms_sizes[1] == 144 * NUM_CLASSES > SPLIT_THR
    assert got.bboxes.dtype == got.scores.dtype == torch.float32
    assert len(got) == len(expected) == 144 * NUM_CLASSES
    assert torch.equal(got.labels, expected.labels)
    # the boxes move by up to ~1.4 px from the proposals, and differ by ~0.015 px
    torch.testing.assert_close(got.bboxes, expected.bboxes, atol=0.05, rtol=0)
    torch.testing.assert_close(got.scores, expected.scores, rtol=0.1, atol=1e-3)
