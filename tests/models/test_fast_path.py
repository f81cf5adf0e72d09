"""Backbone fast-path options: each gives the plain fp32 path's numbers (CPU)."""
import copy
import pickle

import pytest
import torch
from model_testing import randomize_bn  # tests/, on sys.path under pytest

from resnext_det.models import ResNeXt
from resnext_det.models.resnext import FoldedConv2d, FoldedNorm

SMALL = dict(depth=50, groups=8, base_width=4, base_channels=16)
CL = torch.channels_last


def pair(frozen_stages=1, **options):
    """A plain backbone and one with ``options``, holding the same (non-trivial) weights."""
    torch.manual_seed(0)
    plain = randomize_bn(ResNeXt(**SMALL, frozen_stages=frozen_stages, **{
        k: v for k, v in options.items() if k in ('deep_stem', 'avg_down')}))
    fast = ResNeXt(**SMALL, frozen_stages=frozen_stages, **options)
    fast.load_state_dict(plain.state_dict())
    return plain, fast


def run_and_grads(model, x):
    outs = model(x)
    sum((o * torch.linspace(0, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return outs, grads


def assert_same(plain, fast, x, atol=2e-5):
    for mode in ('train', 'eval'):
        getattr(plain, mode)(), getattr(fast, mode)()
        plain.zero_grad(), fast.zero_grad()
        outs_p, grads_p = run_and_grads(plain, x)
        outs_f, grads_f = run_and_grads(fast, x)
        for a, b in zip(outs_p, outs_f):
            torch.testing.assert_close(b, a, atol=atol, rtol=1e-4)
        assert grads_p.keys() == grads_f.keys() and grads_p
        for name in grads_p:
            torch.testing.assert_close(grads_f[name], grads_p[name], atol=atol, rtol=1e-4,
                                       msg=name)
    return outs_f


@pytest.mark.parametrize('frozen_stages', [1, 3])
def test_folded_frozen_bn_gives_the_unfolded_outputs_and_grads(frozen_stages):
    plain, fast = pair(frozen_stages, fold_frozen_bn=True)
    assert_same(plain, fast, torch.randn(2, 3, 64, 96))
    # the frozen stem and blocks do fold, the trainable ones do not
    assert type(fast.conv1) is FoldedConv2d and type(fast.norm1) is FoldedNorm
    assert all(type(b.conv2) is FoldedConv2d for b in fast.layer1)
    assert not any(isinstance(m, (FoldedConv2d, FoldedNorm)) for m in fast.layer4.modules())
    # a structural change: the state dict is the plain one, the folded weights are buffers
    # outside it
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert 'conv1.folded_weight' in dict(fast.named_buffers())


def test_folding_covers_deep_stem_and_avg_down_shortcuts():
    plain, fast = pair(2, fold_frozen_bn=True, deep_stem=True, avg_down=True)
    assert_same(plain, fast, torch.randn(1, 3, 64, 64))
    assert type(fast.stem[0]) is FoldedConv2d and type(fast.stem[1]) is FoldedNorm
    assert type(fast.layer2[0].downsample[1]) is FoldedConv2d


def test_folded_weights_follow_a_new_checkpoint():
    plain, fast = pair(1, fold_frozen_bn=True)
    x = torch.randn(1, 3, 64, 64)
    fast.eval(), plain.eval()
    fast(x)
    other = randomize_bn(ResNeXt(**SMALL, frozen_stages=1), seed=3)
    fast.load_state_dict(other.state_dict())  # refolds (a post hook)
    other.eval()
    torch.testing.assert_close(fast(x)[0], other(x)[0], atol=2e-5, rtol=1e-4)


def test_folded_model_takes_a_pretrained_init_cfg(tmp_path):
    """init_cfg Pretrained loads through mmengine's loader after construction: the folded
    weights are made from the checkpoint's, not from the construction-time ones."""
    plain, _ = pair(1)
    path = tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=plain.state_dict()), path)
    fast = ResNeXt(**SMALL, frozen_stages=1, fold_frozen_bn=True,
                   init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    fast.init_weights()
    assert_same(plain, fast, torch.randn(1, 3, 64, 64))


def test_folded_weights_follow_direct_edits_dtype_moves_and_copies():
    plain, fast = pair(1, fold_frozen_bn=True)
    # BN tensors replaced in place (as randomize_bn does): the next train()/eval() folds them
    randomize_bn(plain, seed=5), randomize_bn(fast, seed=5)
    plain.eval(), fast.eval()
    plain.double(), fast.double()  # refolds in float64
    assert fast.conv1.folded_weight.dtype == torch.float64
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    for model in (fast, copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        torch.testing.assert_close(model(x)[3], plain(x)[3], atol=1e-10, rtol=1e-10)


def test_channels_last_gives_the_same_numbers_in_channels_last_memory():
    plain, fast = pair(1, channels_last=True)
    assert fast.conv1.weight.is_contiguous(memory_format=CL)
    outs = assert_same(plain, fast, torch.randn(2, 3, 64, 96))
    assert all(o.is_contiguous(memory_format=CL) for o in outs)
    # layout is not part of the state dict: a channels_last model's checkpoint loads anywhere
    reloaded = ResNeXt(**SMALL, frozen_stages=1)
    reloaded.load_state_dict(fast.state_dict())
    torch.testing.assert_close(reloaded.state_dict()['layer1.0.conv2.weight'],
                               plain.state_dict()['layer1.0.conv2.weight'])


def test_all_options_together_match_under_autocast():
    plain, fast = pair(1, channels_last=True, fold_frozen_bn=True)
    x = torch.randn(1, 3, 64, 64)
    plain.eval(), fast.eval()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs_p, outs_f = plain(x), fast(x)
    for a, b in zip(outs_p, outs_f):
        assert b.dtype == torch.bfloat16
        # bf16 keeps 8 mantissa bits; folding rounds the weights once in a different place
        torch.testing.assert_close(b.float(), a.float(), atol=0.1, rtol=0.05)


@pytest.mark.parametrize('kwargs, message', [
    (dict(fold_frozen_bn=True, norm_cfg=dict(type='GN', num_groups=4)), 'needs BatchNorm'),
    (dict(fold_frozen_bn=1), 'fold_frozen_bn=1 must be True or False'),
    (dict(channels_last='yes'), "channels_last='yes' must be True or False"),
])
def test_bad_fast_path_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResNeXt(**SMALL, **kwargs)


def test_fold_matches_torch_fusion():
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    from resnext_det.models.resnext import fold_bn_into_conv
    conv = torch.nn.Conv2d(4, 6, 3, bias=True)
    bn = randomize_bn(torch.nn.Sequential(torch.nn.BatchNorm2d(6)))[0].eval()
    expected = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                    bn.eps, bn.weight, bn.bias)
    for got, want in zip(fold_bn_into_conv(conv, bn), expected):
        torch.testing.assert_close(got, want)


def test_folded_and_channels_last_backbone_compiles_without_graph_breaks():
    torch._dynamo.reset()
    plain, fast = pair(1, channels_last=True, fold_frozen_bn=True)
    plain.eval(), fast.eval()
    x = torch.randn(1, 3, 32, 32)
    explanation = torch._dynamo.explain(fast)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    torch.testing.assert_close(torch.compile(fast)(x)[3], plain(x)[3], atol=2e-5, rtol=1e-4)
