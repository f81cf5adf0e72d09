"""mmdet 3.3's own backbone unit tests, ported to our ``ResNeXt`` and ``Bottleneck``.

Origin: ``tests/test_models/test_backbones/test_resnet.py`` and ``test_renext.py`` (sic) of
open-mmlab/mmdetection 3.x. Every case that applies to a Bottleneck network (depth 50/101/152)
is here, run against our classes (``ResNetV1d`` is ``deep_stem=True, avg_down=True``; mmdet's
``ResLayer`` is built with our ``Bottleneck``). Each test names the mmdet test it comes from.

Not ported, because our class is bottleneck-only (depths 18/34 use mmdet's ``BasicBlock``):
``test_resnet_basic_block``, ``test_simplied_basic_block`` (``SimplifiedBasicBlock``), the
``ResLayer`` case built from ``BasicBlock`` with ``downsample_first=False``, and the ResNet-18
forward / ``with_cp`` cases of ``test_resnet_backbone``.

Our classes subclass mmdet's, so a ``Bottleneck`` built on its own behaves as mmdet's (its
asserts included). Deliberate differences, asserted explicitly here:

* where mmdet's backbone raises ``AssertionError`` (or ``KeyError`` for an unknown depth) on a
  bad argument, ours raises one ``ValueError`` naming every bad argument and the allowed values;
* ``zero_init_residual=True`` (the default) zeroes the last norm of every ResNeXt block; mmdet
  3.3's ``ResNeXt`` silently skips it (its check compares block classes by identity). It also
  applies with a custom non-checkpoint ``init_cfg``, where mmdet's does not;
* ``dcn=dict(..., fallback_on_stride=True)`` gives a plain 3x3 in the strided blocks only (mmdet
  3.3 pops the key from the dict shared by all blocks: only its first DCN block falls back).

Unchanged from mmdet: an unknown plugin type is a ``KeyError`` and a non-str ``pretrained`` a
``TypeError``. Inputs are 32x32 (mmdet's backbone size) and 16x16 for single blocks (mmdet: 56).
"""
import pytest
import torch
from mmcv.ops import DeformConv2dPack
from mmdet.models.backbones import ResNeXt as MMDetResNeXt
from mmdet.models.layers import ResLayer
from mmengine.testing import assert_params_all_zeros
from torch.nn.modules import AvgPool2d, GroupNorm
from torch.nn.modules.batchnorm import _BatchNorm

from resnext_det.models import Bottleneck, ResNeXt

DCN = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
CONTEXT_BLOCK = dict(type='ContextBlock', ratio=1. / 16)
GEN_ATTENTION = dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8,
                     attention_type='0010', kv_stride=2)


def is_block(module):
    return isinstance(module, Bottleneck)


def is_norm(module):
    return isinstance(module, (GroupNorm, _BatchNorm))


def check_norm_state(modules, train_state):
    return all(m.training == train_state for m in modules if isinstance(m, _BatchNorm))


def resnet_v1d(**kwargs):
    """mmdet's ``ResNetV1d``: deep stem and average-pool downsampling."""
    return ResNeXt(deep_stem=True, avg_down=True, **kwargs)


def block_input(channels=64, size=16):
    return torch.randn(1, channels, size, size)


def image():
    return torch.randn(1, 3, 32, 32)


def assert_feature_shapes(feats, channels, sizes=(8, 4, 2, 1)):
    assert len(feats) == len(channels)
    for feat, c, s in zip(feats, channels, sizes):
        assert feat.shape == torch.Size([1, c, s, s])


# --- test_resnet.py::test_resnet_bottleneck and test_renext.py::test_renext_bottleneck --------

@pytest.mark.parametrize('groups,base_width', [(1, 4), (32, 4)])
def test_bottleneck_rejects_unknown_style(groups, base_width):
    with pytest.raises(AssertionError):
        Bottleneck(64, 64, stride=2, groups=groups, base_width=base_width, style='tensorflow')


def test_bottleneck_rejects_unknown_plugin_position():
    with pytest.raises(AssertionError):
        Bottleneck(64, 16, plugins=[dict(cfg=CONTEXT_BLOCK, position='after_conv4')])


def test_bottleneck_rejects_duplicate_plugin_names():
    plugins = [dict(cfg=CONTEXT_BLOCK, position='after_conv3'),
               dict(cfg=CONTEXT_BLOCK, position='after_conv3')]
    with pytest.raises(AssertionError, match='duplicate plugin'):
        Bottleneck(64, 16, plugins=plugins)


def test_bottleneck_unknown_plugin_type_is_a_key_error():
    """Same as mmdet: ``KeyError``."""
    with pytest.raises(KeyError):
        Bottleneck(64, 16, plugins=[dict(cfg=dict(type='WrongPlugin'), position='after_conv3')])


def test_bottleneck_with_cp_forward():
    block = Bottleneck(64, 16, with_cp=True)
    assert block.with_cp
    assert block(block_input()).shape == torch.Size([1, 64, 16, 16])


@pytest.mark.parametrize('style,conv1_stride,conv2_stride', [('pytorch', 1, 2), ('caffe', 2, 1)])
def test_bottleneck_style(style, conv1_stride, conv2_stride):
    block = Bottleneck(64, 64, stride=2, style=style)
    assert block.conv1.stride == (conv1_stride, conv1_stride)
    assert block.conv2.stride == (conv2_stride, conv2_stride)


def test_resnext_bottleneck_structure():
    """test_renext.py: the grouped 3x3 of a 32x4d block."""
    block = Bottleneck(64, 64, groups=32, base_width=4, stride=2, style='pytorch')
    assert block.conv2.stride == (2, 2)
    assert block.conv2.groups == 32
    assert block.conv2.out_channels == 128


@pytest.mark.parametrize('groups,base_width', [(1, 4), (32, 4)])
def test_bottleneck_dcn_refuses_conv_cfg(groups, base_width):
    with pytest.raises(AssertionError, match='conv_cfg must be None for DCN'):
        Bottleneck(64, 64, groups=groups, base_width=base_width, dcn=DCN,
                   conv_cfg=dict(type='Conv'))


def test_bottleneck_dcn():
    block = Bottleneck(64, 64, dcn=DCN)
    assert isinstance(block.conv2, DeformConv2dPack)
    assert DCN['fallback_on_stride'] is False  # the config passed in is left as it was
    # mmcv's DeformConv2d has a CPU kernel: a DCN block runs too
    block = Bottleneck(256, 64, dcn=DCN).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 256, 8, 8)).shape == torch.Size([1, 256, 8, 8])


def test_bottleneck_forward():
    assert Bottleneck(64, 16)(block_input()).shape == torch.Size([1, 64, 16, 16])


def test_resnext_bottleneck_forward():
    block = Bottleneck(64, 16, groups=32, base_width=4)
    assert block(block_input()).shape == torch.Size([1, 64, 16, 16])


def test_resnext_bottleneck_plugin_ignores_stages():
    """test_renext.py: a block-level plugin may carry the backbone's 'stages' key."""
    plugins = [dict(cfg=GEN_ATTENTION, stages=(False, False, True, True), position='after_conv2')]
    block = Bottleneck(64, 16, groups=32, base_width=4, plugins=plugins)
    assert block.gen_attention_block.in_channels == 32
    assert block(block_input()).shape == torch.Size([1, 64, 16, 16])


@pytest.mark.parametrize('plugins,expected', [
    ([dict(cfg=CONTEXT_BLOCK, position='after_conv3')], dict(context_block=64)),
    ([dict(cfg=GEN_ATTENTION, position='after_conv2')], dict(gen_attention_block=16)),
    ([dict(cfg=GEN_ATTENTION, position='after_conv2'),
      dict(cfg=dict(type='NonLocal2d'), position='after_conv2'),
      dict(cfg=CONTEXT_BLOCK, position='after_conv3')],
     dict(gen_attention_block=16, nonlocal_block=16, context_block=64)),
    ([dict(cfg=dict(CONTEXT_BLOCK, postfix=1), position='after_conv2'),
      dict(cfg=dict(CONTEXT_BLOCK, postfix=2), position='after_conv3'),
      dict(cfg=dict(CONTEXT_BLOCK, postfix=3), position='after_conv3')],
     dict(context_block1=16, context_block2=64, context_block3=64)),
], ids=['context', 'gen_attention', 'three_kinds', 'postfixes'])
def test_bottleneck_plugins(plugins, expected):
    block = Bottleneck(64, 16, plugins=plugins)
    for name, in_channels in expected.items():
        assert getattr(block, name).in_channels == in_channels
    assert block(block_input()).shape == torch.Size([1, 64, 16, 16])


# --- test_resnet.py::test_resnet_res_layer (mmdet's ResLayer, our Bottleneck) ----------------

def test_res_layer_without_downsample():
    layer = ResLayer(Bottleneck, 64, 16, 3)
    assert len(layer) == 3
    for block in layer:
        assert block.conv1.in_channels == 64
        assert block.conv1.out_channels == 16
        assert block.downsample is None
    assert layer(block_input()).shape == torch.Size([1, 64, 16, 16])


@pytest.mark.parametrize('stride,avg_down', [(1, False), (2, False), (2, True)])
def test_res_layer_with_downsample(stride, avg_down):
    layer = ResLayer(Bottleneck, 64, 64, 3, stride=stride, avg_down=avg_down)
    if avg_down:
        assert isinstance(layer[0].downsample[0], AvgPool2d)
        conv = layer[0].downsample[1]
        assert conv.stride == (1, 1)
    else:
        conv = layer[0].downsample[0]
        assert conv.stride == (stride, stride)
    assert conv.out_channels == 256
    assert all(layer[i].downsample is None for i in range(1, len(layer)))
    size = 16 // stride
    assert layer(block_input()).shape == torch.Size([1, 256, size, size])


# --- test_resnet.py::test_resnest_stem (sic: it tests ResNet's stem) -------------------------

@pytest.mark.parametrize('kwargs,stem', [
    (dict(), 64),
    (dict(base_channels=3), 3),
    (dict(stem_channels=3), 3),
    (dict(stem_channels=3, base_channels=2), 3),
])
def test_stem_channels(kwargs, stem):
    model = ResNeXt(50, **kwargs)
    assert model.stem_channels == stem
    assert model.conv1.out_channels == stem
    assert model.norm1.num_features == stem
    assert model.layer1[0].conv1.in_channels == stem


def test_v1d_stem_channels():
    model = resnet_v1d(depth=50, stem_channels=6)
    model.train()
    assert [model.stem[i].out_channels for i in (0, 3, 6)] == [3, 3, 6]
    assert [model.stem[i].num_features for i in (1, 4, 7)] == [3, 3, 6]
    assert model.layer1[0].conv1.in_channels == 6


# --- test_resnet.py::test_resnet_backbone and test_renext.py::test_resnext_backbone ----------

@pytest.mark.parametrize('kwargs,names', [
    # mmdet: KeyError for the depths
    (dict(depth=20), ['depth', '50, 101, 152']),
    (dict(depth=18), ['depth', '50, 101, 152']),  # test_renext.py
    # mmdet: AssertionError for the rest
    (dict(depth=50, num_stages=0), ['num_stages']),
    (dict(depth=50, num_stages=5), ['num_stages']),
    (dict(depth=50, dcn=DCN, stage_with_dcn=(True, )), ['stage_with_dcn', 'num_stages=4']),
    (dict(depth=50, plugins=[dict(cfg=CONTEXT_BLOCK, stages=(False, True, True),
                                  position='after_conv3')]), ['stages', 'num_stages=4']),
    (dict(depth=50, strides=(1, ), dilations=(1, 1), num_stages=3), ['strides']),
    (dict(depth=50, style='tensorflow'), ['style', "'pytorch'", "'caffe'"]),
    # from mmdet's ResNet.__init__ / Bottleneck rather than its tests
    (dict(depth=50, pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
     ['pretrained=', 'init_cfg=']),
    (dict(depth=50, dcn=DCN, stage_with_dcn=(False, True, True, True),
          conv_cfg=dict(type='Conv')), ['dcn=', 'conv_cfg=', 'conv_cfg must be None for DCN']),
    (dict(depth=50, plugins=[dict(cfg=CONTEXT_BLOCK, position='after_conv4')]),
     ['position', "'after_conv4'", "'after_conv1'", "'after_conv2'", "'after_conv3'"]),
    (dict(depth=50, plugins=[dict(cfg=CONTEXT_BLOCK, position='after_conv3'),
                             dict(cfg=CONTEXT_BLOCK, position='after_conv2')]),
     ['plugins', 'postfix']),  # mmdet: AssertionError in the block ('duplicate plugin')
    # one message names every bad argument
    (dict(depth=50, style='tf', dcn=DCN, stage_with_dcn=(False, True, True, True),
          conv_cfg=dict(type='Conv'), plugins=[dict(cfg=CONTEXT_BLOCK, position='after_conv4')]),
     ['style=', 'dcn=', 'conv_cfg=', 'position=']),
], ids=['depth20', 'depth18', 'num_stages0', 'num_stages5', 'stage_with_dcn', 'plugin_stages',
        'strides', 'style', 'pretrained_and_init_cfg', 'dcn_and_conv_cfg', 'plugin_position',
        'plugin_duplicate', 'several'])
def test_backbone_rejects_bad_arguments(kwargs, names):
    with pytest.raises(ValueError) as err:
        ResNeXt(**kwargs)
    for name in names:
        assert name in str(err.value)


def test_backbone_pretrained_must_be_a_string():
    """Same as mmdet: ``TypeError``."""
    with pytest.raises(TypeError, match='pretrained must be a str or None'):
        ResNeXt(50, pretrained=0)


def test_norm_eval():
    model = ResNeXt(50, norm_eval=True, base_channels=1)
    model.train()
    assert check_norm_state(model.modules(), False)


def test_deprecated_pretrained_becomes_init_cfg():
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        model = ResNeXt(depth=50, norm_eval=True, pretrained='torchvision://resnet50')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='torchvision://resnet50')
    # as in mmdet, no zero-init of the last norms on top of loaded weights
    assert all(block.init_cfg is None for block in model.modules() if is_block(block))
    model.train()
    assert check_norm_state(model.modules(), False)


def test_deprecated_pretrained_loads_the_checkpoint(tmp_path):
    src = ResNeXt(50, base_channels=2)
    with torch.no_grad():
        for p in src.parameters():
            p.uniform_(-1, 1)
    path = tmp_path / 'r50.pth'
    torch.save(dict(state_dict=src.state_dict()), path)
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        model = ResNeXt(50, base_channels=2, pretrained=str(path))
    model.init_weights()
    for (name, expected), actual in zip(src.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(actual, expected, msg=name)


def test_frozen_stages():
    frozen_stages = 1
    model = ResNeXt(50, frozen_stages=frozen_stages, base_channels=1)
    model.train()
    assert model.norm1.training is False
    for layer in [model.conv1, model.norm1]:
        assert all(p.requires_grad is False for p in layer.parameters())
    for i in range(1, frozen_stages + 1):
        layer = getattr(model, f'layer{i}')
        assert check_norm_state(layer.modules(), False)
        assert all(p.requires_grad is False for p in layer.parameters())


def test_v1d_frozen_stages():
    frozen_stages = 1
    model = resnet_v1d(depth=50, frozen_stages=frozen_stages, base_channels=2)
    assert len(model.stem) == 9
    model.train()
    assert check_norm_state(model.stem, False)
    assert all(p.requires_grad is False for p in model.stem.parameters())
    for i in range(1, frozen_stages + 1):
        layer = getattr(model, f'layer{i}')
        assert check_norm_state(layer.modules(), False)
        assert all(p.requires_grad is False for p in layer.parameters())


def test_batchnorm_forward():
    model = ResNeXt(50, base_channels=1)
    assert all(isinstance(m, _BatchNorm) for m in model.modules() if is_norm(m))
    model.train()
    assert_feature_shapes(model(image()), (4, 8, 16, 32))


def test_out_indices_forward():
    model = ResNeXt(50, out_indices=(0, 1, 2), base_channels=1)
    model.train()
    assert_feature_shapes(model(image()), (4, 8, 16))


def test_with_cp_forward():
    model = ResNeXt(50, with_cp=True, base_channels=1)
    blocks = [m for m in model.modules() if is_block(m)]
    assert len(blocks) == 16 and all(m.with_cp for m in blocks)
    model.train()
    assert_feature_shapes(model(image()), (4, 8, 16, 32))


def test_group_norm_forward():
    model = ResNeXt(50, base_channels=4, norm_cfg=dict(type='GN', num_groups=2,
                                                       requires_grad=True))
    assert all(isinstance(m, GroupNorm) for m in model.modules() if is_norm(m))
    model.train()
    assert_feature_shapes(model(image()), (16, 32, 64, 128))


def test_plugins_per_stage():
    plugins = [
        dict(cfg=GEN_ATTENTION, stages=(False, True, True, True), position='after_conv2'),
        dict(cfg=dict(type='NonLocal2d'), position='after_conv2'),
        dict(cfg=CONTEXT_BLOCK, stages=(False, True, True, False), position='after_conv3'),
    ]
    model = ResNeXt(50, plugins=plugins, base_channels=8)
    # per stage: NonLocal2d / GeneralizedAttention (after conv2) and ContextBlock (after conv3)
    # input channels, None where the stage has none
    expected = {1: (8, None, None), 2: (16, 16, 64), 3: (32, 32, 128), 4: (64, 64, None)}
    for stage, (nonlocal_c, attention_c, context_c) in expected.items():
        for m in getattr(model, f'layer{stage}'):
            assert m.nonlocal_block.in_channels == nonlocal_c
            for name, c in (('gen_attention_block', attention_c), ('context_block', context_c)):
                if c is None:
                    assert not hasattr(m, name)
                else:
                    assert getattr(m, name).in_channels == c
    model.train()
    assert_feature_shapes(model(image()), (32, 64, 128, 256))


def test_two_context_blocks_with_postfixes():
    plugins = [
        dict(cfg=dict(CONTEXT_BLOCK, postfix=1), stages=(False, True, True, False),
             position='after_conv3'),
        dict(cfg=dict(CONTEXT_BLOCK, postfix=2), stages=(False, True, True, False),
             position='after_conv3'),
    ]
    model = ResNeXt(50, plugins=plugins, base_channels=8)
    expected = {1: None, 2: 64, 3: 128, 4: None}
    for stage, c in expected.items():
        for m in getattr(model, f'layer{stage}'):
            assert not hasattr(m, 'context_block')
            for name in ('context_block1', 'context_block2'):
                if c is None:
                    assert not hasattr(m, name)
                else:
                    assert getattr(m, name).in_channels == c
    model.train()
    assert_feature_shapes(model(image()), (32, 64, 128, 256))


def test_zero_init_residual():
    model = ResNeXt(50, zero_init_residual=True, base_channels=1)
    model.init_weights()
    blocks = [m for m in model.modules() if is_block(m)]
    assert len(blocks) == 16
    assert all(assert_params_all_zeros(m.norm3) for m in blocks)
    model.train()
    assert_feature_shapes(model(image()), (4, 8, 16, 32))


def test_v1d_forward():
    model = resnet_v1d(depth=50, base_channels=2)
    model.train()
    assert_feature_shapes(model(image()), (8, 16, 32, 64))


def test_resnext_backbone():
    """test_renext.py: groups=32, base_width=4, then init_weights with the default
    ``zero_init_residual=True``."""
    model = ResNeXt(depth=50, groups=32, base_width=4)
    blocks = [m for m in model.modules() if is_block(m)]
    assert len(blocks) == 16 and all(m.conv2.groups == 32 for m in blocks)
    model.init_weights()
    # deliberate difference: ours zeroes the last norms, mmdet 3.3's ResNeXt does not
    assert all(assert_params_all_zeros(m.norm3) for m in blocks)
    stock = MMDetResNeXt(depth=50, groups=32, base_width=4)
    stock.init_weights()
    assert not assert_params_all_zeros(stock.layer1[0].norm3)
    model.train()
    assert_feature_shapes(model(image()), (256, 512, 1024, 2048))


# --- DCN in the backbone (mmdet: dcn + stage_with_dcn, conv_cfg must be None) ----------------

def test_backbone_dcn_stages():
    model = ResNeXt(50, groups=4, base_width=4, base_channels=16, dcn=DCN,
                    stage_with_dcn=(False, True, True, True))
    assert not any(isinstance(m.conv2, DeformConv2dPack) for m in model.layer1)
    for stage in (2, 3, 4):
        assert all(isinstance(m.conv2, DeformConv2dPack) for m in getattr(model, f'layer{stage}'))
    assert model.layer2[0].conv2.groups == 4
    model.eval()
    # mmcv's deform conv refuses inputs smaller than its kernel (padding aside): 96x96 keeps
    # the last stage at 3x3
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 96, 96))
    assert_feature_shapes(feats, (64, 128, 256, 512), sizes=(24, 12, 6, 3))


def test_backbone_dcn_with_conv_cfg_but_no_dcn_stage_builds():
    """Like mmdet, which checks in the blocks that actually get the DCN."""
    model = ResNeXt(50, base_channels=1, dcn=DCN, conv_cfg=dict(type='Conv'))
    assert not any(isinstance(m, DeformConv2dPack) for m in model.modules())


def test_dcn_fallback_on_stride_only_in_strided_blocks():
    """Deliberate difference: mmdet 3.3 pops 'fallback_on_stride' from the dcn dict shared by all
    blocks, so only the first DCN block falls back (whatever its stride) and the caller's dict
    loses the key. Ours: a plain 3x3 in every strided block, DCN elsewhere, the dict untouched."""
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=True)
    model = ResNeXt(50, base_channels=1, dcn=dcn, stage_with_dcn=(False, True, True, True))
    for stage in (2, 3, 4):
        layer = getattr(model, f'layer{stage}')
        assert [isinstance(m.conv2, DeformConv2dPack) for m in layer] == [False] + [True] * (
            len(layer) - 1)
    assert dcn == dict(type='DCN', deform_groups=1, fallback_on_stride=True)


def test_zero_init_residual_with_a_custom_init_cfg():
    """Deliberate difference: mmdet zero-inits only when neither init_cfg nor pretrained is
    given; ours whenever no checkpoint is loaded."""
    model = ResNeXt(50, base_channels=1, init_cfg=dict(type='Kaiming', layer='Conv2d'))
    model.init_weights()
    assert all(assert_params_all_zeros(m.norm3) for m in model.modules() if is_block(m))
