"""The CPU tests' equivalences on a CUDA GPU (``pytest -m cuda``; skipped without one): the
backbone against mmdet's, the RoI extractor on channels_last and autocast features, the *_fast
configs' train_step in bf16 and fp16, the fast-path options and the compiled backbone against the
plain eager path. The models and inputs are the CPU tests' own small ones.

``RESNEXT_DET_CUDA_TESTS_ON=cpu`` dry-runs this module on the CPU (tests/conftest.py,
``cuda_device``): a check of the tests' logic, not of CUDA."""
import copy
import functools
import importlib.util
from pathlib import Path

import pytest
import torch
from mmdet.models.backbones import ResNeXt as MMDetResNeXt
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor as MMDetExtractor
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from model_testing import randomize_bn  # tests/, on sys.path under pytest
from torch.nn.modules.batchnorm import _BatchNorm

from resnext_det.models import ResNeXt, Shared2FCBBoxHead, SingleRoIExtractor

pytestmark = pytest.mark.cuda

TESTS = Path(__file__).resolve().parents[1]
# fp32 with deterministic cuDNN and no TF32: the CPU tests' 1e-5 to 2e-5, loosened for the other
# algorithms (and summation orders) cuDNN and inductor may pick for each variant
FP32 = dict(atol=1e-4, rtol=1e-4)
# autocast results against fp32 ones, to the rounding of the dtype (bf16: the CPU test's bound;
# fp16 keeps 3 more mantissa bits)
AUTOCAST = {torch.float16: dict(atol=0.05, rtol=0.02), torch.bfloat16: dict(atol=0.1, rtol=0.05)}
AMP_DTYPES = pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16],
                                     ids=['fp16', 'bf16'])


def cpu_test_module(relpath):
    """A CPU test module of tests/, for its builders. Loaded under a name of its own: pytest
    imports (and assertion-rewrites) the module under its plain name when it collects it."""
    path = TESTS / relpath
    spec = importlib.util.spec_from_file_location('cuda_reuses_' + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


resnext_tests = cpu_test_module('models/test_resnext.py')
roi_tests = cpu_test_module('models/test_roi_extractor.py')
fast_path_tests = cpu_test_module('models/test_fast_path.py')
fast_config_tests = cpu_test_module('configs/test_fast_configs.py')
bbox_head_tests = cpu_test_module('models/test_bbox_head.py')


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@pytest.fixture
def fp32_exact(cuda_device, monkeypatch):
    """fp32 on the device means fp32: deterministic cuDNN algorithms, no TF32 in convolutions
    and matmuls (TF32 keeps 10 mantissa bits). Restored after the test."""
    for flag, value in dict(deterministic=True, benchmark=False, allow_tf32=False).items():
        monkeypatch.setattr(torch.backends.cudnn, flag, value)
    # torch.backends.cuda.matmul.allow_tf32 lives behind a __getattr__ that monkeypatch cannot
    # restore (pytest 9); 'highest' is the same switch, read and set through functions
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision('highest')
    yield cuda_device
    torch.set_float32_matmul_precision(precision)


def assert_all_close(got, expected, **tol):
    assert len(got) == len(expected) and len(got) > 0
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, **(tol or FP32))


def outputs_and_grads(model, x, mode='train'):
    """``model``'s outputs in ``mode`` and, in train mode, the gradients of a weighted sum of them
    (weights that differ per element, so a transposed layout cannot cancel out)."""
    getattr(model, mode)()
    model.zero_grad()
    with torch.set_grad_enabled(mode == 'train'):
        outs = model(x)
    if mode == 'train':
        sum((o.float() * torch.linspace(0, 1, o.numel(), device=o.device).view_as(o)).sum()
            for o in outs).backward()
    synchronize(x.device)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return outs, grads


def assert_same_outputs_and_grads(model, reference, x, modes=('train', 'eval'), **tol):
    for mode in modes:
        outs, grads = outputs_and_grads(model, x, mode)
        ref_outs, ref_grads = outputs_and_grads(reference, x, mode)
        assert_all_close(outs, ref_outs, **tol)
        assert grads.keys() == ref_grads.keys() and (grads or mode == 'eval')
        for name in ref_grads:
            torch.testing.assert_close(grads[name], ref_grads[name], msg=name, **(tol or FP32))
    return outs


def image(device, n=2, height=64, width=96):
    return torch.randn(n, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)


# a. the backbone against mmdet's, in the state dict's layout


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_backbone_matches_mmdet_on_the_device(cuda_device, fp32_exact, mode):
    ref = randomize_bn(MMDetResNeXt(depth=50, groups=32, base_width=4, norm_eval=False))
    ours = ResNeXt(depth=50, groups=32, base_width=4, norm_eval=False)
    missing, unexpected = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not missing and not unexpected
    ref, ours = ref.to(cuda_device), ours.to(cuda_device)
    x = resnext_tests.small_input().to(cuda_device)
    our_outs = assert_same_outputs_and_grads(ours, ref, x, modes=(mode,))
    assert [tuple(o.shape) for o in our_outs] == [(2, c, 64 // s, 64 // s) for c, s in
                                                  zip((256, 512, 1024, 2048), (4, 8, 16, 32))]
    if mode == 'train':  # the same BN statistics updates too
        for (name, b1), b2 in zip(ref.named_buffers(), ours.buffers()):
            torch.testing.assert_close(b2, b1, msg=name)


# b. the RoI extractor: channels_last and autocast features give mmdet's fp32 NCHW result


def roi_inputs(device):
    """The CPU test's features and boxes (every pyramid level gets some), on ``device``."""
    feats, rois = roi_tests.roi_inputs()
    return tuple(f.to(device) for f in feats), rois.to(device)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16],
                         ids=['fp32', 'fp16', 'bf16'])
def test_roi_extractor_on_channels_last_features_under_autocast(cuda_device, fp32_exact,
                                                                cuda_autocast, dtype):
    feats, rois = roi_inputs(cuda_device)
    with torch.no_grad():
        expected = MMDetExtractor(**roi_tests.CFG)(feats, rois)
    # what the FPN hands over on the fast path: channels_last maps in the autocast dtype
    feats_fast = tuple(f.to(dtype).contiguous(memory_format=torch.channels_last)
                       .requires_grad_() for f in feats)
    with cuda_autocast(dtype):
        out = SingleRoIExtractor(**roi_tests.CFG)(feats_fast, rois)
    assert out.dtype == dtype
    if dtype == torch.float32:
        torch.testing.assert_close(out, expected)
    else:  # only the features' own rounding remains: RoIAlign ran in fp32 on fp32 boxes
        torch.testing.assert_close(out.float(), expected, atol=0.03, rtol=0.02)
    out.float().sum().backward()
    synchronize(cuda_device)
    for f in feats_fast:
        assert f.grad is not None and f.grad.dtype == dtype and torch.isfinite(f.grad).all()


# c. the *_fast configs' train_step in bf16 and fp16 autocast against fp32


# each config's own cardinality; the rest is the CPU test's slim detector
FAST_CONFIG_GROUPS = {'faster_rcnn_r101_fpn_fast.py': 1, 'faster_rcnn_x101_32x4d_fpn_fast.py': 32,
                      'mask_rcnn_r101_fpn_fast.py': 1, 'mask_rcnn_x101_32x4d_fpn_fast.py': 32}


@pytest.fixture
def amp_optim_wrapper_on_device(cuda_device, monkeypatch):
    """mmengine's AmpOptimWrapper as on CUDA. On the dry run its two CUDA-only parts are patched:
    the wrapper refuses to build without a GPU, and its autocast takes the device from
    mmengine's ``get_device()`` and allows only bf16 on a CPU."""
    if cuda_device.type == 'cpu':
        monkeypatch.setattr(
            'mmengine.optim.optimizer.amp_optimizer_wrapper.is_cuda_available', lambda: True)
        monkeypatch.setattr('mmengine.runner.amp.autocast', functools.partial(torch.autocast,
                                                                              'cpu'))


def fit_bn_statistics(backbone, images):
    """Give every BN the running statistics of ``images``' own features (its affine parameters
    stay): a frozen BN that fits the data, as a pretrained backbone's does. With random
    statistics the dense slim ResNet's features grow some 100x over the stages and its losses
    (loss_cls ~150) are too ill-conditioned for a 5% comparison."""
    bns = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, that batch's statistics
        m.train()
    with torch.no_grad():
        backbone(images)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


def small_fast_detector(name, device):
    """The CPU test's slim detector of config ``name`` (depth 50, 16 base channels) with the
    config's own groups and BN statistics fitted to the batch, on ``device``, in train mode; a
    batch of two 64x64 images."""
    register_all_modules()
    torch.manual_seed(0)  # init_weights draws the weights
    # fitted unfolded: a folded BN is no BN module any more (its conv applies it)
    model = fast_config_tests.build(name, groups=FAST_CONFIG_GROUPS[name], fold_frozen_bn=False)
    randomize_bn(model.backbone)
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8)
                        for _ in range(2)],
                data_samples=fast_config_tests.samples(64))
    fit_bn_statistics(model.backbone, model.data_preprocessor(copy.copy(data), True)['inputs'])
    fast = fast_config_tests.build(name, groups=FAST_CONFIG_GROUPS[name])
    fast.load_state_dict(model.state_dict())
    return fast.to(device).train(), data


class SameProposals:
    """Hands the R-CNN the proposals of the first train step it sees in every later one (the
    RPN's own losses are still computed each time). The RPN of a detector with random weights
    scores all anchors about alike (its loss_cls is log 2), so which proposals survive the top-k
    and the NMS is decided by the last bits: bf16 rounding swaps many of them, the sampled
    positives change and loss_bbox with them (measured on the dry run: R-101 0.56 in fp32, 0.93
    in bf16; 0.56 in both with the same proposals). Fixing the proposals compares the
    arithmetic, which is what the test is about."""

    def __init__(self, model):
        self.rpn_head, self.proposals = model.rpn_head, None
        self.loss_and_predict = self.rpn_head.loss_and_predict

    def __call__(self, *args, **kwargs):
        losses, proposals = self.loss_and_predict(*args, **kwargs)
        if self.proposals is None:
            self.proposals = [p.clone() for p in proposals]
        # fresh copies: the R-CNN renames the proposals' fields in place (bboxes -> priors)
        return losses, [p.clone() for p in self.proposals]

    def __enter__(self):
        self.rpn_head.loss_and_predict = self
        return self

    def __exit__(self, *exc):
        del self.rpn_head.loss_and_predict  # the class's method again


def train_step(model, optim_wrapper_cfg, data):
    """One ``model.train_step`` (the runner's iteration) with a new optimizer wrapper: the log
    vars, and the gradients the optimizer stepped with (unscaled, after the loss scaler's
    check; none if the scaler skipped the step)."""
    wrapper = build_optim_wrapper(model, optim_wrapper_cfg)
    stepped_with = {}
    step = wrapper.optimizer.step

    def record_and_step(*args, **kwargs):
        stepped_with.update((n, p.grad.detach().clone()) for n, p in model.named_parameters()
                            if p.grad is not None)
        return step(*args, **kwargs)

    wrapper.optimizer.step = record_and_step
    torch.manual_seed(0)  # the RPN and R-CNN samplers draw random proposals
    log_vars = model.train_step(copy.copy(data), wrapper)
    synchronize(next(model.parameters()).device)
    return {k: v.float() for k, v in log_vars.items()}, stepped_with


@pytest.mark.parametrize('name', sorted(FAST_CONFIG_GROUPS))
@AMP_DTYPES
def test_fast_config_train_step_under_autocast_has_the_fp32_losses(
        cuda_device, fp32_exact, amp_optim_wrapper_on_device, name, dtype):
    model, data = small_fast_detector(name, cuda_device)
    weights = copy.deepcopy(model.state_dict())
    cfg = Config.fromfile(TESTS.parent / 'configs' / name).optim_wrapper.to_dict()
    assert (cfg['type'], cfg['dtype']) == ('AmpOptimWrapper', 'bfloat16')
    fp32_cfg = dict(type='OptimWrapper', optimizer=cfg['optimizer'])
    # bf16: the config's own wrapper (no loss scaling); fp16: with mmdet's AMP default, dynamic
    # loss scaling (fp16 has 5 exponent bits)
    amp_cfg = dict(cfg, dtype=str(dtype).split('.')[-1])
    if dtype == torch.float16:
        amp_cfg['loss_scale'] = 'dynamic'
    with SameProposals(model) as proposals:
        expected, _ = train_step(model, fp32_cfg, data)
        model.load_state_dict(weights)  # the same weights again: the step above moved them
        got, grads = train_step(model, amp_cfg, data)
    assert proposals.proposals and 'loss_and_predict' not in vars(model.rpn_head)
    assert got.keys() == expected.keys()
    assert all(torch.isfinite(v) for v in got.values()), got
    parts = [k for k in expected if k.startswith('loss_')]
    assert len(parts) == (5 if name.startswith('mask_') else 4), list(expected)
    torch.testing.assert_close(got['loss'], expected['loss'], atol=0, rtol=0.03)
    # each part within 5% of itself or 1% of the total: the RPN's losses see its features'
    # rounding (loss_rpn_bbox is ~0.01, where bf16's rounding alone moves it by 4%)
    for k in parts:
        torch.testing.assert_close(got[k], expected[k], atol=0.01 * expected['loss'].item(),
                                   rtol=0.05, msg=k)
    assert grads, 'the loss scaler skipped the step: inf or NaN gradients'
    assert all(torch.isfinite(g).all() for g in grads.values())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(grads) <= trainable and model.roi_head.bbox_head.fc_cls.weight.dtype == torch.float32


# d. the fast-path options: frozen BN folded into the convs, channels_last memory


FAST_PATHS = pytest.mark.parametrize('options', [
    dict(fold_frozen_bn=True), dict(channels_last=True),
    dict(fold_frozen_bn=True, channels_last=True)], ids=['fold', 'channels_last', 'both'])


def fast_path_pair(device, **options):
    """The CPU test's slim plain backbone and one with ``options``, same weights, on ``device``."""
    plain, fast = fast_path_tests.pair(1, **options)
    return plain.to(device), fast.to(device)


@FAST_PATHS
def test_fast_path_backbone_matches_the_plain_one(cuda_device, fp32_exact, options):
    plain, fast = fast_path_pair(cuda_device, **options)
    outs = assert_same_outputs_and_grads(fast, plain, image(cuda_device))
    if options.get('channels_last'):  # .to(device) kept the weights' layout
        assert fast.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert all(o.is_contiguous(memory_format=torch.channels_last) for o in outs)
    if options.get('fold_frozen_bn'):  # the folded weights moved with the module
        assert fast.conv1.folded_weight.device.type == cuda_device.type


@AMP_DTYPES
def test_fast_path_backbone_matches_the_plain_one_under_autocast(cuda_device, cuda_autocast,
                                                                  dtype):
    plain, fast = fast_path_pair(cuda_device, fold_frozen_bn=True, channels_last=True)
    x = image(cuda_device, n=1, height=64, width=64)
    plain.eval(), fast.eval()
    with torch.no_grad(), cuda_autocast(dtype):
        outs_p, outs_f = plain(x), fast(x)
    synchronize(cuda_device)
    assert all(o.dtype == dtype for o in outs_f)
    # folding rounds the weights once in another place than the plain path does
    assert_all_close([o.float() for o in outs_f], [o.float() for o in outs_p], **AUTOCAST[dtype])


# e. the compiled backbone (tools/benchmark.py --compile: the fast one, compiled in place)


def fast_backbone_to_compile(device):
    """The slim fast backbone (channels_last, frozen BN folded). On the dry run only its first two
    stages: inductor's C++ build of the whole backbone's backward takes minutes on a few cores,
    and stages 3 and 4 repeat stage 2's ops."""
    stages = 4 if device.type == 'cuda' else 2
    torch.manual_seed(0)
    return randomize_bn(ResNeXt(
        **fast_path_tests.SMALL, frozen_stages=1, channels_last=True, fold_frozen_bn=True,
        num_stages=stages, strides=(1, 2, 2, 2)[:stages], dilations=(1,) * stages,
        out_indices=tuple(range(stages)))).to(device)


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_compiled_fast_backbone_matches_eager(cuda_device, fp32_exact, mode):
    torch._dynamo.reset()
    eager = fast_backbone_to_compile(cuda_device)
    compiled = copy.deepcopy(eager)
    compiled.compile()  # as the detector benchmark: parameters stay the module's own
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    assert_same_outputs_and_grads(compiled, eager, image(cuda_device, height=64, width=64),
                                  modes=(mode,))
    if mode == 'train':  # BN statistics of the unfrozen stages update alike
        for (name, b1), b2 in zip(eager.named_buffers(), compiled.buffers()):
            torch.testing.assert_close(b2, b1, msg=name, **FP32)


# f. the box head's detections under autocast are the fp32 ones (mmcv's CUDA NMS)


@AMP_DTYPES
@pytest.mark.parametrize('num_rois', [200, 100], ids=['split_nms', 'one_nms'])
def test_box_head_detections_under_autocast_are_the_fp32_ones(cuda_device, cuda_autocast,
                                                              num_rois, dtype):
    """The CPU test's inputs (200 RoIs x 80 classes: mmcv's NMS class by class; 100: one NMS),
    rounded to bf16 so that both runs post-process the same numbers."""
    head = Shared2FCBBoxHead(**bbox_head_tests.HEAD).to(cuda_device)
    rois, cls_score, bbox_pred = (t.to(cuda_device)
                                  for t in bbox_head_tests.head_outputs(num_rois))

    def predict(dtype=torch.float32):  # the fcs' outputs come in the autocast dtype
        with cuda_autocast(dtype):
            return head.predict_by_feat(
                (rois, ), (cls_score.to(dtype), ), (bbox_pred.to(dtype), ),
                [bbox_head_tests.IMG_META], rcnn_test_cfg=bbox_head_tests.rcnn_test_cfg())[0]

    expected, got = predict(), predict(dtype)
    synchronize(cuda_device)
    assert len(got) == 100 and got.bboxes.dtype == got.scores.dtype == torch.float32
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(got[key], expected[key]), key
