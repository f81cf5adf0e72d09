"""The backbone against mmdet's and torchvision's reference classes, and its own guarantees."""
import copy

import pytest
import torch
import torch.nn as nn
from mmdet.models.backbones import ResNet as MMDetResNet, ResNeXt as MMDetResNeXt
from mmdet.registry import MODELS as MMDET_MODELS
from model_testing import randomize_bn  # tests/, on sys.path under pytest

import resnext_det  # noqa: F401
from resnext_det.models import Bottleneck, ResNeXt, resnext50_32x4d


def small_input(n=2, size=64, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_registered_in_own_scope_next_to_mmdets():
    ours = MMDET_MODELS.build(dict(type='resnext_det.ResNeXt', depth=50, groups=32, base_width=4))
    assert type(ours) is ResNeXt
    stock = MMDET_MODELS.build(dict(type='ResNeXt', depth=50, groups=32, base_width=4))
    assert type(stock) is MMDetResNeXt, 'mmdet.ResNeXt must not be shadowed'


@pytest.mark.parametrize('groups,base_width', [(32, 4), (1, 64)])
@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_state_dict_and_outputs_match_mmdet(groups, base_width, mode):
    ref_cls = MMDetResNeXt if groups > 1 else MMDetResNet
    kwargs = dict(groups=groups, base_width=base_width) if groups > 1 else {}
    ref = randomize_bn(ref_cls(depth=50, norm_eval=False, **kwargs))
    ours = ResNeXt(depth=50, groups=groups, base_width=base_width, norm_eval=False)
    missing, unexpected = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not missing and not unexpected
    assert ours.state_dict().keys() == ref.state_dict().keys()
    getattr(ref, mode)()
    getattr(ours, mode)()
    x = small_input()
    with torch.no_grad():
        ref_out, our_out = ref(x), ours(x)
    assert len(our_out) == 4
    for r, o, c, s in zip(ref_out, our_out, (256, 512, 1024, 2048), (4, 8, 16, 32)):
        assert o.shape == (2, c, 64 // s, 64 // s)
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-5)
    if mode == 'train':  # identical BN statistics updates too
        for (name, b1), b2 in zip(ref.named_buffers(), ours.buffers()):
            torch.testing.assert_close(b1, b2, msg=name)


def test_loads_torchvision_resnext50_and_matches_its_features():
    import torchvision
    tv = randomize_bn(torchvision.models.resnext50_32x4d()).eval()
    ours = resnext50_32x4d().eval()
    sd = {k: v for k, v in tv.state_dict().items() if not k.startswith('fc.')}
    ours.load_state_dict(sd, strict=True)
    x = small_input()
    with torch.no_grad():
        y = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        expected = []
        for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            y = layer(y)
            expected.append(y)
        for e, o in zip(expected, ours(x)):
            torch.testing.assert_close(o, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('depth,groups,base_width,expected', [
    (50, 32, 4, 22_979_904),
    (101, 32, 4, 42_128_704),
    (101, 64, 4, 81_406_272),
    (101, 32, 8, 86_742_336),
    (50, 1, 64, 23_508_032),
    (101, 1, 64, 42_500_160),
])
def test_parameter_counts_match_mmdet_model_zoo(depth, groups, base_width, expected):
    model = ResNeXt(depth=depth, groups=groups, base_width=base_width)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_stage_widths_follow_the_template():
    model = resnext50_32x4d()
    widths = [getattr(model, f'layer{i}')[0].conv2.out_channels for i in range(1, 5)]
    assert widths == [128, 256, 512, 1024]
    assert all(getattr(model, f'layer{i}')[0].conv2.groups == 32 for i in range(1, 5))
    assert model.out_channels == (256, 512, 1024, 2048)


@pytest.mark.parametrize('style,conv1_stride,conv2_stride', [('pytorch', 1, 2), ('caffe', 2, 1)])
def test_style_places_the_stride(style, conv1_stride, conv2_stride):
    block = resnext50_32x4d(style=style).layer2[0]
    assert block.conv1.stride == (conv1_stride, conv1_stride)
    assert block.conv2.stride == (conv2_stride, conv2_stride)


def test_zero_init_residual_zeroes_every_last_norm():
    model = resnext50_32x4d(zero_init_residual=True)
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16
    assert all(torch.count_nonzero(b.norm3.weight) == 0 for b in blocks)
    # each block then starts as relu(shortcut(x))
    block = model.layer1[1].eval()
    x = torch.rand(1, 256, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))

    # mmdet 3.3's own flag does nothing for ResNeXt: the defect this class fixes
    stock = MMDetResNeXt(depth=50, groups=32, base_width=4, zero_init_residual=True)
    stock.init_weights()
    assert torch.count_nonzero(stock.layer1[0].norm3.weight) > 0

    plain = resnext50_32x4d(zero_init_residual=False)
    plain.init_weights()
    assert all(torch.count_nonzero(m.norm3.weight) > 0
               for m in plain.modules() if isinstance(m, Bottleneck))


def test_zero_init_does_not_overwrite_pretrained_weights(tmp_path):
    src = randomize_bn(resnext50_32x4d())
    path = tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=src.state_dict()), path)
    model = resnext50_32x4d(zero_init_residual=True,
                            init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    torch.testing.assert_close(model.layer1[0].norm3.weight, src.layer1[0].norm3.weight)


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages_freeze_stem_and_stages(frozen_stages):
    model = resnext50_32x4d(frozen_stages=frozen_stages, norm_eval=False)
    model.train()
    frozen = ['conv1', 'bn1'] + [f'layer{i}' for i in range(1, frozen_stages + 1)]
    for name, p in model.named_parameters():
        assert p.requires_grad == (not any(name.startswith(f + '.') for f in frozen)), name
    assert not model.bn1.training
    assert model.layer3.training
    if frozen_stages == 2:
        assert not model.layer2[0].bn2.training


def test_norm_eval_keeps_statistics_fixed_in_train_mode():
    model = resnext50_32x4d(norm_eval=True)
    model.train()
    before = copy.deepcopy(model.layer3[0].bn2.running_mean)
    model(small_input())
    assert model.training and not model.layer3[0].bn2.training
    torch.testing.assert_close(model.layer3[0].bn2.running_mean, before)

    free = resnext50_32x4d(norm_eval=False)
    free.train()
    free(small_input())
    assert not torch.equal(free.layer3[0].bn2.running_mean, before)


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = resnext50_32x4d(norm_eval=False, frozen_stages=1)
    ckpt = resnext50_32x4d(norm_eval=False, frozen_stages=1, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.train()
    ckpt.train()
    x = small_input()
    sum(o.float().pow(2).mean() for o in plain(x)).backward()
    sum(o.float().pow(2).mean() for o in ckpt(x)).backward()
    for (name, p1), p2 in zip(plain.named_parameters(), ckpt.parameters()):
        if p1.requires_grad:
            torch.testing.assert_close(p2.grad, p1.grad, rtol=1e-4, atol=1e-6, msg=name)
        else:
            assert p2.grad is None


@pytest.mark.parametrize('form', ['SplitTransformMerge', 'EarlyConcatenation'])
@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_the_three_forms_are_equivalent(form, mode):
    # tests/models/, on sys.path when pytest collects this folder (not when the CUDA tests
    # load this module for its builders: so imported here)
    import aggregated_forms
    form = getattr(aggregated_forms, form)
    model = randomize_bn(ResNeXt(depth=50, groups=8, base_width=4, num_stages=2, strides=(1, 2),
                                 dilations=(1, 1), out_indices=(0, 1)))
    block = model.layer2[0]  # stride 2, projection shortcut
    reference = form(block)
    assert len(reference.paths) == 8
    getattr(block, mode)()
    getattr(reference, mode)()
    x = torch.randn(2, 256, 16, 16)
    torch.testing.assert_close(reference(x), block(x), rtol=1e-5, atol=1e-5)


def test_channels_last_and_autocast_match_fp32():
    model = randomize_bn(resnext50_32x4d()).eval()
    x = small_input()
    with torch.no_grad():
        ref = model(x)
        model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        out_cl = model_cl(x.to(memory_format=torch.channels_last))
        for r, o in zip(ref, out_cl):
            torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast('cpu', dtype=dtype):
                out = model(x)
            for r, o in zip(ref, out):
                assert o.dtype == dtype
                err = (o.float() - r).norm() / r.norm()
                assert err < 0.05, (dtype, err)


def test_torch_compile_matches_eager():
    model = randomize_bn(ResNeXt(depth=50, groups=8, base_width=4, num_stages=2, strides=(1, 2),
                                 dilations=(1, 1), out_indices=(0, 1))).eval()
    x = small_input(size=32)
    compiled = torch.compile(model)
    with torch.no_grad():
        for r, o in zip(model(x), compiled(x)):
            torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)


def test_out_indices_select_stages():
    outs = resnext50_32x4d(out_indices=(1, 3)).eval()(small_input())
    assert [o.shape[1] for o in outs] == [512, 2048]


@pytest.mark.parametrize('kwargs,names', [
    (dict(depth=34), ['depth', '50, 101, 152']),
    (dict(depth=50, groups=0), ['groups']),
    (dict(depth=50, groups=32, base_width=0), ['base_width', 'positive']),
    (dict(depth=50, groups=32, base_width=2.5), ['base_width', 'integer']),
    (dict(depth=50, out_indices=(0, 4)), ['out_indices', '0..3']),
    (dict(depth=50, num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(2,)),
     ['out_indices', '0..1']),
    (dict(depth=50, frozen_stages=5), ['frozen_stages', '-1..4']),
    (dict(depth=50, style='tf'), ['style', "'pytorch'", "'caffe'"]),
    (dict(depth=50, strides=(1, 2)), ['strides']),
    (dict(depth=50, num_stages=5), ['num_stages']),
])
def test_bad_configuration_names_the_argument(kwargs, names):
    with pytest.raises(ValueError) as err:
        ResNeXt(**kwargs)
    for name in names:
        assert name in str(err.value)


def test_wrong_input_channels_at_forward():
    with pytest.raises(ValueError, match=r'in_channels=3.*got \(1, 1, 32, 32\)'):
        resnext50_32x4d()(torch.zeros(1, 1, 32, 32))


def test_plugins_and_gn_build_and_run():
    model = ResNeXt(
        depth=50, groups=32, base_width=4, norm_cfg=dict(type='GN', num_groups=32),
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 4), position='after_conv3',
                      stages=(False, True, True, True))])
    assert isinstance(model.layer1[0].norm1, nn.GroupNorm)
    assert hasattr(model.layer2[0], 'context_block') and not hasattr(model.layer1[0],
                                                                     'context_block')
    assert model.eval()(small_input(n=1))[3].shape == (1, 2048, 2, 2)
