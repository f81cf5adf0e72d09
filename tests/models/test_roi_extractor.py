"""resnext_det.SingleRoIExtractor against mmdet's: equal on the plain path, right where the
stock one is wrong (channels_last) or stops (bf16)."""
import pytest
import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor as MMDetExtractor

from resnext_det.models import SingleRoIExtractor

CFG = dict(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0), out_channels=8,
           featmap_strides=[4, 8, 16, 32])


def roi_inputs():
    """Features of 8 channels on 4 levels of a 128x160 image, and boxes of every size."""
    g = torch.Generator().manual_seed(0)
    feats = tuple(torch.randn(2, 8, 128 // s, 160 // s, generator=g) for s in (4, 8, 16, 32))
    # boxes of every size, so that every pyramid level gets some
    xy = torch.rand(12, 2, generator=g) * 60
    wh = torch.tensor([8., 16., 40., 100., 220., 400.]).repeat(2).unsqueeze(1).expand(12, 2)
    rois = torch.cat([torch.arange(12).remainder(2).float().unsqueeze(1), xy, xy + wh], dim=1)
    return feats, rois


@pytest.fixture
def inputs():
    return roi_inputs()


def test_same_as_mmdet_on_the_plain_path(inputs):
    feats, rois = inputs
    expected = MMDetExtractor(**CFG)(feats, rois)
    assert torch.equal(SingleRoIExtractor(**CFG)(feats, rois), expected)


def test_channels_last_features_give_the_nchw_result(inputs):
    feats, rois = inputs
    expected = MMDetExtractor(**CFG)(feats, rois)
    feats_cl = tuple(f.contiguous(memory_format=torch.channels_last) for f in feats)
    # the defect this class exists for: mmcv's kernel reads NCHW memory, silently
    assert not torch.allclose(MMDetExtractor(**CFG)(feats_cl, rois), expected, atol=1e-3)
    torch.testing.assert_close(SingleRoIExtractor(**CFG)(feats_cl, rois), expected)


def test_bf16_features_run_in_fp32_and_come_back_in_bf16(inputs):
    feats, rois = inputs
    expected = MMDetExtractor(**CFG)(feats, rois)
    feats_bf16 = tuple(f.bfloat16().requires_grad_() for f in feats)
    with pytest.raises(NotImplementedError, match='BFloat16'):
        MMDetExtractor(**CFG)(feats_bf16, rois)
    out = SingleRoIExtractor(**CFG)(feats_bf16, rois)
    assert out.dtype == torch.bfloat16
    # only the features' own bf16 rounding remains: the boxes are not rounded to bf16
    torch.testing.assert_close(out.float(), expected, atol=0.03, rtol=0.02)
    out.float().sum().backward()
    assert all(f.grad is not None and f.grad.dtype == torch.bfloat16 for f in feats_bf16)
