"""The *_fast detection configs: the plain model and recipe plus the fast-path switches, and a
detector on the fast path (Faster and Mask R-CNN) computes the plain path's losses (CPU)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData
from model_testing import randomize_bn, slim_detector_cfg  # tests/, on sys.path under pytest

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
FAST = {'faster_rcnn_x101_32x4d_fpn_fast.py': 'faster_rcnn_x101_32x4d_fpn.py',
        'faster_rcnn_r101_fpn_fast.py': 'faster_rcnn_r101_fpn.py',
        'mask_rcnn_x101_32x4d_fpn_fast.py': 'mask_rcnn_x101_32x4d_fpn.py',
        'mask_rcnn_r101_fpn_fast.py': 'mask_rcnn_r101_fpn.py'}


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules()


@pytest.mark.parametrize('fast_name', sorted(FAST))
def test_fast_config_is_the_plain_one_plus_the_switches(fast_name):
    fast = Config.fromfile(CONFIGS / fast_name).to_dict()
    plain = Config.fromfile(CONFIGS / FAST[fast_name]).to_dict()
    assert fast['model']['backbone'].pop('channels_last') is True
    assert fast['model']['backbone'].pop('fold_frozen_bn') is True
    assert fast['env_cfg'].pop('cudnn_benchmark') is True
    assert fast['val_cfg'].pop('fp16') is True and fast['test_cfg'].pop('fp16') is True
    plain['env_cfg'].pop('cudnn_benchmark')
    wrapper = fast['optim_wrapper']
    assert (wrapper.pop('type'), wrapper.pop('dtype')) == ('AmpOptimWrapper', 'bfloat16')
    assert wrapper.pop('loss_scale') == dict(enabled=False)
    plain['optim_wrapper'].pop('type')
    for cfg in (fast, plain):
        cfg.pop('filename', None)
    assert fast == plain


def samples(size=64):
    """Two annotated images; the masks (read by Mask R-CNN only) are the ellipses inscribed in
    the boxes, so that a mask target is no box-shaped block of ones."""
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                         ori_shape=(size, size), scale_factor=(1.0, 1.0)))
    boxes = torch.tensor([[4., 4., 30., 45.], [25., 20., 60., 55.]])
    y, x = np.mgrid[:size, :size] + 0.5
    masks = np.stack([((x - (x1 + x2) / 2) / ((x2 - x1) / 2)) ** 2 +
                      ((y - (y1 + y2) / 2) / ((y2 - y1) / 2)) ** 2 <= 1
                      for x1, y1, x2, y2 in boxes.tolist()]).astype(np.uint8)
    sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([1, 7]),
                                       masks=BitmapMasks(masks, size, size))
    return [sample, sample.clone()]


def build(name, **backbone):
    """The config's detector, small; ``backbone`` overrides the slim backbone's settings (the
    CUDA tests keep each config's own ``groups``)."""
    # slim widths and few sampled RoIs keep the test quick: bf16 convolutions and matmuls are
    # emulated on CPUs without bf16 units. The fast-path switches are the config's own.
    model = slim_detector_cfg(CONFIGS / name, **backbone)
    model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    model.train_cfg.rcnn.sampler.num = 64
    model = MODELS.build(model)
    model.init_weights()
    return model


def losses(model, images, dtype=None):
    torch.manual_seed(0)  # the RPN and R-CNN samplers draw random proposals
    with torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(images, samples(), mode='loss')
    return {k: sum(v) if isinstance(v, list) else v for k, v in out.items() if 'loss' in k}


# each detector's parts of the loss: Mask R-CNN's mask head runs on the RoI extractor's output
# too (resnext_det.SingleRoIExtractor as its mask_roi_extractor)
LOSSES = {'faster_rcnn_x101_32x4d_fpn': {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'}}
LOSSES['mask_rcnn_x101_32x4d_fpn'] = LOSSES['faster_rcnn_x101_32x4d_fpn'] | {'loss_mask'}


@pytest.fixture(scope='module', params=sorted(LOSSES))
def plain_and_fast(request):
    plain = build(f'{request.param}.py')
    randomize_bn(plain.backbone)
    fast = build(f'{request.param}_fast.py')
    fast.load_state_dict(plain.state_dict())
    plain.train(), fast.train()
    return plain, fast, torch.rand(2, 3, 64, 64), LOSSES[request.param]


def test_fast_detector_has_the_plain_losses_and_grads_in_fp32(plain_and_fast):
    plain, fast, images, parts = plain_and_fast
    expected, got = losses(plain, images), losses(fast, images)
    assert expected.keys() == got.keys() == parts
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], atol=1e-4, rtol=1e-4, msg=k)
    plain.zero_grad(), fast.zero_grad()
    sum(expected.values()).backward(), sum(got.values()).backward()
    # float rounding in another order can swap near-tied proposals after NMS, so a sampled RoI
    # or two differ: per-tensor gradients agree to a relative norm error, not elementwise
    grads = dict(fast.named_parameters())
    for name, p in plain.named_parameters():
        if p.grad is not None:
            error = (grads[name].grad - p.grad).norm() / p.grad.norm().clamp(min=1e-8)
            assert error < 0.02, (name, error)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_fast_detector_trains_under_autocast(plain_and_fast, dtype):
    plain, fast, images, parts = plain_and_fast
    expected, got = losses(plain, images), losses(fast, images, dtype)
    assert got.keys() == parts
    total = sum(got.values())
    assert torch.isfinite(total)
    # same proposals up to rounding: the losses agree to the precision of the dtype
    torch.testing.assert_close(total.float(), sum(expected.values()), atol=0.05, rtol=0.05)
    fast.zero_grad()
    total.backward()
    grads = [p.grad for p in fast.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_fast_configs_optim_wrapper_trains_in_bf16_without_loss_scaling(monkeypatch):
    """The config's own AmpOptimWrapper drives the step, as the runner would. mmengine allows
    it on CUDA only; its autocast and GradScaler also run on CPU, so the check is patched."""
    from mmengine.optim import build_optim_wrapper
    monkeypatch.setattr(
        'mmengine.optim.optimizer.amp_optimizer_wrapper.is_cuda_available', lambda: True)
    model = build('faster_rcnn_x101_32x4d_fpn_fast.py')
    cfg = Config.fromfile(CONFIGS / 'faster_rcnn_x101_32x4d_fpn_fast.py')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert wrapper.cast_dtype == torch.bfloat16 and not wrapper.loss_scaler.is_enabled()
    before = model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    data = dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)] * 2,
                data_samples=samples())
    log_vars = model.train_step(data, wrapper)
    assert all(torch.isfinite(v) for v in log_vars.values())
    after = model.roi_head.bbox_head.fc_cls.weight
    assert after.dtype == torch.float32 and not torch.equal(after, before)  # fp32 master weights
    # the wrapper's state (no scaler state) round-trips for --resume
    wrapper.load_state_dict(wrapper.state_dict())
