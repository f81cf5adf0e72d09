"""Converted weights load strictly and compute what the source network computes; bad
checkpoints are refused with the reason, and nothing is written for them."""
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from mmdet.models.backbones import ResNetV1d as MMDetResNetV1d, ResNeXt as MMDetResNeXt
from model_testing import randomize_bn  # tests/, on sys.path under pytest
from safetensors.torch import save_file

from resnext_det.models import ResNeXt, builders, resnext50_32x4d
from resnext_det.weights import (
    WeightsError,
    convert,
    file_sha256,
    infer_arch,
    read_checkpoint,
    verify_against,
    weights_sha256,
)

ROOT = Path(__file__).resolve().parents[2]
PLAIN = dict(base_channels=64, stem_channels=64, deep_stem=False, avg_down=False)
RESNET_D = dict(PLAIN, deep_stem=True, avg_down=True)
ARCHS = {
    'resnext50_32x4d': dict(depth=50, groups=32, base_width=4, **PLAIN),
    'resnet50': dict(depth=50, groups=1, base_width=64, **PLAIN),
    'resnext50d_32x4d': dict(depth=50, groups=32, base_width=4, **RESNET_D),
    'resnet50d': dict(depth=50, groups=1, base_width=64, **RESNET_D),
}


def small_input():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def reference_stages(model, x):
    """layer1..layer4 outputs of a torchvision or timm ResNet (timm's deep stem: conv1 is the
    Sequential of its three convs, bn1 the last norm)."""
    act = model.relu if hasattr(model, 'relu') else model.act1
    x = model.maxpool(act(model.bn1(model.conv1(x))))
    outs = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        outs.append(x)
    return outs


def load_ours(name, state_dict):
    ours = getattr(builders, name)()
    ours.load_state_dict(state_dict, strict=True)
    return ours.eval()


def assert_same_stages(ours, expected):
    with torch.no_grad():
        outs = ours(small_input())
    assert len(outs) == len(expected) == 4
    for o, e in zip(outs, expected):
        torch.testing.assert_close(o, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', ['resnext50_32x4d', 'resnet50'])
def test_torchvision_weights_give_torchvision_features(tmp_path, name):
    tv = randomize_bn(getattr(torchvision.models, name)()).eval()
    torch.save(tv.state_dict(), tmp_path / 'tv.pth')
    state_dict = convert('torchvision', read_checkpoint(str(tmp_path / 'tv.pth')))
    assert not any(k.startswith('fc.') for k in state_dict)
    assert infer_arch(state_dict) == ARCHS[name]
    assert_same_stages(load_ours(name, state_dict), reference_stages(tv, small_input()))


def test_timm_weights_give_timm_features():
    model = randomize_bn(timm.create_model('resnext50_32x4d', pretrained=False)).eval()
    state_dict = convert('timm', model.state_dict())
    ours = load_ours('resnext50_32x4d', state_dict)
    expected = reference_stages(model, small_input())
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(small_input()), expected[-1])
    assert_same_stages(ours, expected)


@pytest.mark.parametrize('name', ['resnet50d', 'resnext50d_32x4d'])
def test_timm_resnet_d_safetensors_give_timm_features(tmp_path, name):
    """Deep stem + avg-down shortcuts, from the .safetensors file timm's hub weights come in."""
    model = randomize_bn(timm.create_model(name, pretrained=False)).eval()
    save_file(model.state_dict(), str(tmp_path / f'{name}.safetensors'))
    state_dict = convert('timm', read_checkpoint(str(tmp_path / f'{name}.safetensors')))
    arch = infer_arch(state_dict)
    assert arch == ARCHS[name]
    assert 'stem.7.running_var' in state_dict and 'layer2.0.downsample.1.weight' in state_dict
    assert not any(k.startswith(('conv1.', 'bn1.', 'fc.')) for k in state_dict)
    ours = ResNeXt(**arch)
    ours.load_state_dict(state_dict, strict=True)
    expected = reference_stages(model, small_input())
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(small_input()), expected[-1])
    assert_same_stages(ours.eval(), expected)


def test_mmpretrain_resnet_v1d_gives_mmdets_features():
    """mmpretrain's ResNetV1d shares mmdet's keys (stem.*, downsample.1/2): backbone.* next to
    head.fc.*, as an mmpretrain classifier checkpoint holds it."""
    reference = randomize_bn(MMDetResNetV1d(depth=50))
    reference.eval()
    checkpoint = {'meta': {}, 'state_dict': {
        **{f'backbone.{k}': v for k, v in reference.state_dict().items()},
        'head.fc.weight': torch.randn(1000, 2048), 'head.fc.bias': torch.zeros(1000)}}
    state_dict = convert('mmpretrain', checkpoint)
    arch = infer_arch(state_dict)
    assert arch == ARCHS['resnet50d']
    ours = ResNeXt(**arch)
    ours.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        expected = reference(small_input())
    assert_same_stages(ours.eval(), expected)


def test_deep_stem_mismatches_are_named():
    resnet_d = timm.create_model('resnet50d').state_dict()
    with pytest.raises(WeightsError, match=r"timm's layout.*convert\('timm'"):
        infer_arch(resnet_d)  # not renamed
    state_dict = convert('timm', resnet_d)
    with pytest.raises(WeightsError) as info:
        verify_against(state_dict, dict(depth=50, groups=1, deep_stem=False, avg_down=False))
    assert str(info.value).endswith('deep_stem: checkpoint has True, config asks for False; '
                                    'avg_down: checkpoint has True, config asks for False')
    with pytest.raises(WeightsError, match='deep stem of widths 24/32/64.*tiered'):
        convert('timm', timm.create_model('resnet50t').state_dict())


def test_half_precision_weights_without_bn_counters_load_as_float32():
    """Old torchvision checkpoints lack num_batches_tracked; fp16 exports are common."""
    tv = randomize_bn(torchvision.models.resnext50_32x4d()).eval()
    old = {'model': {k: v.half() for k, v in tv.state_dict().items()
                     if not k.endswith('num_batches_tracked')}}
    state_dict = convert('torchvision', old)
    assert state_dict['layer1.0.conv2.weight'].dtype == torch.float32
    assert state_dict['layer1.0.bn2.num_batches_tracked'].dtype == torch.long
    assert state_dict.keys() == resnext50_32x4d().state_dict().keys()
    load_ours('resnext50_32x4d', state_dict)


def test_mmpretrain_layout_gives_the_backbone_back():
    backbone = randomize_bn(resnext50_32x4d())
    original = backbone.state_dict()
    checkpoint = {
        'state_dict': {**{f'backbone.{k}': v for k, v in original.items()},
                       'head.fc.weight': torch.randn(10, 2048), 'head.fc.bias': torch.zeros(10)},
        'meta': dict(epoch=1),
    }
    state_dict = convert('mmpretrain', checkpoint)
    assert list(state_dict) == list(original)
    for key, value in original.items():
        assert torch.equal(state_dict[key], value), key
        assert state_dict[key] is not value and state_dict[key].is_contiguous()


@pytest.mark.parametrize('layout', ['detector', 'backbone-only'])
def test_mmdet_weights_give_mmdets_features(layout):
    mmdet_backbone = randomize_bn(MMDetResNeXt(depth=50, groups=32, base_width=4))
    mmdet_backbone.eval()  # mmdet's ResNet.train() returns None
    backbone_sd = mmdet_backbone.state_dict()
    if layout == 'detector':
        checkpoint = {'meta': {}, 'state_dict': {
            **{f'backbone.{k}': v for k, v in backbone_sd.items()},
            'neck.lateral_convs.0.conv.weight': torch.randn(256, 256, 1, 1),
            'rpn_head.rpn_conv.weight': torch.randn(256, 256, 3, 3),
            'roi_head.bbox_head.fc_cls.weight': torch.randn(81, 1024)}}
    else:
        checkpoint = backbone_sd
    ours = load_ours('resnext50_32x4d', convert('mmdet', checkpoint))
    with torch.no_grad():
        expected = mmdet_backbone(small_input())
    assert_same_stages(ours, expected)


def test_refuses_basicblock_resnet():
    state_dict = torchvision.models.resnet18().state_dict()
    with pytest.raises(WeightsError, match='BasicBlock.*bottleneck'):
        convert('torchvision', state_dict)


def test_verify_names_the_mismatching_field():
    with torch.device('meta'):  # shapes are all it needs
        x101 = torchvision.models.resnext101_32x8d().state_dict()
    state_dict = {k: v for k, v in x101.items() if not k.startswith('fc.')}
    assert verify_against(state_dict, dict(depth=101, groups=32, base_width=8))['depth'] == 101
    with pytest.raises(WeightsError) as info:
        verify_against(state_dict, dict(depth=101, groups=32, base_width=4))
    # only the mismatching field is named
    assert str(info.value).endswith(': base_width: checkpoint has 8, config asks for 4')


def test_resnet_base_width_is_not_compared():
    """groups=1 ignores base_width (mmdet's ResNeXt(groups=1, base_width=4) is a ResNet)."""
    state_dict = convert('torchvision', torchvision.models.resnet50().state_dict())
    verify_against(state_dict, dict(depth=50, groups=1, base_width=4))


@pytest.mark.parametrize('edit,named', [
    (lambda sd: sd.pop('layer3.2.conv2.weight'), 'missing keys:.*layer3.2.conv2.weight'),
    (lambda sd: sd.update({'layer2.0.conv2.conv_offset.weight': torch.zeros(18, 256, 3, 3)}),
     'unexpected keys:.*layer2.0.conv2.conv_offset.weight'),
    (lambda sd: sd.update({'layer2.1.bn1.weight': torch.ones(3)}),
     r'wrong shapes:.*layer2.1.bn1.weight.*\(3,\) instead of \(256,\)'),
])
def test_refuses_incomplete_or_extra_keys(edit, named):
    state_dict = torchvision.models.resnext50_32x4d().state_dict()
    edit(state_dict)
    with pytest.raises(WeightsError, match=named):
        convert('torchvision', state_dict)


def test_refuses_detector_without_backbone():
    with pytest.raises(WeightsError, match='no stage keys.*neck.fpn_convs.0.conv.weight'):
        convert('mmdet', {'state_dict': {'neck.fpn_convs.0.conv.weight': torch.zeros(1)}})


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
@pytest.mark.parametrize('content', [b'not a checkpoint' * 8, 'truncated', b''])
def test_refuses_unreadable_files(tmp_path, content, suffix):
    path = tmp_path / f'bad{suffix}'
    if content == 'truncated':
        if suffix == '.pth':
            torch.save({'w': torch.zeros(100)}, path)
        else:
            save_file({'w': torch.zeros(100)}, str(path))
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    what = 'PyTorch checkpoint' if suffix == '.pth' else 'safetensors file'
    with pytest.raises(WeightsError, match=f'^{path}: not a readable {what} '):
        read_checkpoint(str(path))


def run_tools(*arg_lists):
    """Run convert_weights.py once per argument list as real processes, concurrently (each
    spends seconds importing torch and mmdet); return (process, stdout, stderr) per run."""
    tool = str(ROOT / 'tools' / 'convert_weights.py')
    procs = [subprocess.Popen([sys.executable, tool, *args], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in arg_lists]
    return [(p, *p.communicate(timeout=120)) for p in procs]


@pytest.mark.slow
def test_cli_converts_and_refuses(tmp_path):
    """As a process: exactly the path given, both hashes, and one error line for a checkpoint
    that is not the --arch asked for (here ResNet-D weights for a 7x7-stem config)."""
    src = tmp_path / 'tv.pth'
    torch.save(torchvision.models.resnext50_32x4d().state_dict(), src)
    timm_src = tmp_path / 'resnext50d_32x4d.safetensors'
    save_file(timm.create_model('resnext50d_32x4d').state_dict(), str(timm_src))
    out_dir = tmp_path / 'out'
    (ok, ok_out, ok_err), (wrong, _, wrong_err) = run_tools(
        ['torchvision', str(src), str(out_dir / 'x50.pth'), '--arch', '50,32,4'],
        ['timm', str(timm_src), str(out_dir / 'x50d_plain.pth'), '--arch', '50,32,4'])

    assert ok.returncode == 0, ok_err
    path = out_dir / 'x50.pth'
    first, second = ok_out.splitlines()
    assert first == (f'{path}: depth=50 groups=32 base_width=4 base_channels=64 '
                     f'stem_channels=64 deep_stem=False avg_down=False')
    saved = torch.load(path, map_location='cpu', weights_only=True)
    assert saved['meta']['sha256'] == weights_sha256(saved['state_dict'])
    assert second == (f"sha256: weights {saved['meta']['sha256']} (meta['sha256']), "
                      f'file {file_sha256(str(path))}')

    assert wrong.returncode == 2
    assert wrong_err.startswith('error:') and len(wrong_err.splitlines()) == 1
    assert wrong_err == ('error: checkpoint does not match the expected architecture: '
                         'deep_stem: checkpoint has True, config asks for False; '
                         'avg_down: checkpoint has True, config asks for False\n')
    assert [p.name for p in out_dir.iterdir()] == ['x50.pth']  # nothing else written


def test_cli_output_names_and_refusals(tmp_path, run_cli):
    src = tmp_path / 'tv.pth'
    tv = torchvision.models.resnext50_32x4d()
    torch.save(tv.state_dict(), src)
    timm_src = tmp_path / 'resnext50d_32x4d.safetensors'
    save_file(timm.create_model('resnext50d_32x4d').state_dict(), str(timm_src))
    out = tmp_path / 'out'

    # ResNet-D: the flags printed, and the options a config needs for them
    d = run_cli('convert_weights.py', 'timm', timm_src, out / 'x50d.pth', '--arch', '50,32,4,d')
    assert d.returncode == 0, d.stderr
    assert d.stdout.splitlines()[0] == (
        f'{out / "x50d.pth"}: depth=50 groups=32 base_width=4 base_channels=64 '
        f'stem_channels=64 deep_stem=True avg_down=True')
    assert d.stdout.splitlines()[2] == (
        "not the stem the configs here build: train with --cfg-options "
        "model.backbone.deep_stem=True model.backbone.avg_down=True (or set them in the "
        "config's backbone)")
    wrong = run_cli('convert_weights.py', 'timm', timm_src, out / 'x.pth', '--arch', '50,64,4,d')
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines() == ['error: checkpoint does not match the expected '
                                         'architecture: groups: checkpoint has 32, config asks '
                                         'for 64']
    assert run_cli('convert_weights.py', 'timm', timm_src, out / 'x.pth', '--arch',
                   '50,32,4,e').returncode == 2  # no such variant: argparse's usage error

    # the same content again is fine: nothing rewritten
    first = run_cli('convert_weights.py', 'torchvision', src, out / 'x50.pth')
    again = run_cli('convert_weights.py', 'torchvision', src, out / 'x50.pth')
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert again.stdout.splitlines()[0].endswith('(unchanged: it already held exactly this)')
    assert again.stdout.splitlines()[1] == first.stdout.splitlines()[1]

    # never over other content without --force, which replaces it
    (out / 'taken.pth').write_bytes(b'my own weights')
    taken = run_cli('convert_weights.py', 'torchvision', src, out / 'taken.pth')
    assert taken.returncode == 2 and taken.stdout == ''
    assert taken.stderr == (f'error: {out / "taken.pth"} already exists with different content; '
                            f'not overwriting it: pass --force to overwrite it, or give another '
                            f'output path\n')
    assert (out / 'taken.pth').read_bytes() == b'my own weights'
    forced = run_cli('convert_weights.py', 'torchvision', src, out / 'taken.pth', '--force')
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.splitlines()[0].endswith('(replaced the previous file)')
    assert file_sha256(str(out / 'taken.pth')) == file_sha256(str(out / 'x50.pth'))
    (out / 'dir.pth').mkdir()
    directory = run_cli('convert_weights.py', 'torchvision', src, out / 'dir.pth', '--force')
    assert directory.returncode == 2
    assert directory.stderr.startswith(f'error: {out / "dir.pth"} is a directory')

    # --publish: mmdet's publish_model name, the file's own sha256[:8]
    pub = run_cli('convert_weights.py', 'torchvision', src, out / 'pub.pth', '--publish')
    assert pub.returncode == 0, pub.stderr
    published = next(out.glob('pub-*.pth'))
    assert published.name == f'pub-{file_sha256(str(published))[:8]}.pth'
    assert pub.stdout.startswith(f'{published}: depth=50 ')

    assert sorted(p.name for p in out.iterdir()) == sorted(
        ['x50d.pth', 'x50.pth', 'taken.pth', 'dir.pth', published.name])  # no temp files
