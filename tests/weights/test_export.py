"""Exported backbone checkpoints: at the path given (or a hashed name with publish), backbone
only, never over other content, and loadable by mmdet configs."""
import hashlib
import re

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

from resnext_det.engine import TensorOnlyCheckpointHook
from resnext_det.models import ResNeXt, resnext50_32x4d
from resnext_det.weights import (
    OutputExistsError,
    WeightsError,
    export_classifier,
    file_sha256,
    read_checkpoint,
    save_backbone_checkpoint,
    weights_sha256,
)

X50_ARCH = dict(depth=50, groups=32, base_width=4, base_channels=64, stem_channels=64,
                deep_stem=False, avg_down=False)


def random_backbone():
    """Random convs (PyTorch's default init) and non-trivial BN affine/statistics."""
    model = resnext50_32x4d()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.weight.data = torch.rand(m.num_features) + 0.5
            m.running_mean = torch.randn(m.num_features) * 0.1
    return model


def classification_checkpoint(backbone, top1_in='meta'):
    """A checkpoint as mmengine's runner saves our classifier: backbone.* + head.fc.*, with
    optimizer state and the best top-1 in meta or only in the logged validation history."""
    meta = dict(epoch=3, iter=300, cfg='model = dict(...)')
    hub = MessageHub('test_export')
    for top1 in (61.0, 65.5, 64.0):
        hub.update_scalar('val/accuracy/top1', top1)
    if top1_in == 'meta':
        meta['best_top1'] = 65.5
    state_dict = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state_dict.update({'head.fc.weight': torch.randn(10, 2048), 'head.fc.bias': torch.zeros(10)})
    checkpoint = {
        'meta': meta,
        'state_dict': state_dict,
        'optimizer': {'state': {0: {'momentum_buffer': torch.zeros(3)}},
                      'param_groups': [dict(lr=0.1, params=[0])]},
        'message_hub': hub.state_dict(),
    }
    TensorOnlyCheckpointHook().before_save_checkpoint(None, checkpoint)  # as our runtime does
    return checkpoint


@pytest.mark.parametrize('top1_in', ['meta', 'message_hub'])
def test_export_writes_a_backbone_only_checkpoint_at_the_path_given(tmp_path, top1_in):
    backbone = random_backbone()
    src = tmp_path / 'epoch_3.pth'
    torch.save(classification_checkpoint(backbone, top1_in), src)

    saved = export_classifier(str(src), str(tmp_path / 'ckpt' / 'x50_cls.pth'))

    assert saved.path == str(tmp_path / 'ckpt' / 'x50_cls.pth') and saved.status == 'written'
    with open(saved.path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == saved.sha256
    exported = torch.load(saved.path, map_location='cpu', weights_only=True)
    assert set(exported) == {'state_dict', 'meta'}
    assert exported['state_dict'].keys() == backbone.state_dict().keys()
    assert exported['meta'] == dict(arch=X50_ARCH, epoch=3, top1=65.5, source=str(src),
                                    sha256=weights_sha256(backbone.state_dict()))
    assert saved.meta == exported['meta'] and saved.weights_sha256 == exported['meta']['sha256']
    assert [p.name for p in (tmp_path / 'ckpt').iterdir()] == ['x50_cls.pth']


def test_publish_names_the_file_after_its_sha256(tmp_path):
    torch.save(classification_checkpoint(random_backbone()), tmp_path / 'cls.pth')
    saved = export_classifier(str(tmp_path / 'cls.pth'), str(tmp_path / 'x50.pth'), publish=True)
    match = re.fullmatch(r'x50-([0-9a-f]{8})\.pth', saved.path.split('/')[-1])
    assert match, saved.path
    assert file_sha256(saved.path)[:8] == match.group(1) == saved.sha256[:8]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(['cls.pth', match.group(0)])


def test_weights_sha256_covers_the_tensors_only():
    state_dict = random_backbone().state_dict()
    digest = weights_sha256(state_dict)
    assert digest == weights_sha256({k: v.clone() for k, v in state_dict.items()})
    changed = dict(state_dict)
    changed['layer4.2.bn3.running_var'] = changed['layer4.2.bn3.running_var'].clone()
    changed['layer4.2.bn3.running_var'][0] += 1e-3
    assert weights_sha256(changed) != digest
    assert weights_sha256({k: v.double() if v.is_floating_point() else v
                           for k, v in state_dict.items()}) != digest  # dtype counts
    assert weights_sha256(dict(reversed(list(state_dict.items())))) != digest  # key order too


def test_export_without_recorded_top1(tmp_path):
    checkpoint = classification_checkpoint(random_backbone())
    del checkpoint['meta']['best_top1'], checkpoint['message_hub']
    torch.save(checkpoint, tmp_path / 'cls.pth')
    saved = export_classifier(str(tmp_path / 'cls.pth'), str(tmp_path / 'x50.pth'))
    assert read_checkpoint(saved.path)['meta']['top1'] is None


def test_exported_checkpoint_loads_through_init_cfg_with_nothing_missing(tmp_path):
    source = random_backbone()
    torch.save(classification_checkpoint(source), tmp_path / 'cls.pth')
    path = export_classifier(str(tmp_path / 'cls.pth'), str(tmp_path / 'x50.pth')).path

    # what a detection config's backbone=dict(init_cfg=dict(type='Pretrained', ...)) does
    model = ResNeXt(depth=50, groups=32, base_width=4,
                    init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    for (key, loaded), expected in zip(model.state_dict().items(), source.state_dict().values()):
        assert torch.equal(loaded, expected), key
    # Pretrained init loads with strict=False and only logs problems; strict=True raises on
    # any missing or unexpected key
    load_checkpoint(resnext50_32x4d(), path, map_location='cpu', strict=True)


@pytest.mark.parametrize('publish', [False, True])
def test_same_content_reuses_the_file_and_different_content_is_not_overwritten(tmp_path,
                                                                               publish):
    state_dict = random_backbone().state_dict()

    def save(force=False):
        return save_backbone_checkpoint(state_dict, str(tmp_path / 'x50.pth'), dict(source='a'),
                                        publish=publish, force=force)

    first = save()
    assert first.status == 'written'
    again = save()
    assert (again.path, again.sha256, again.status) == (first.path, first.sha256, 'unchanged')
    with open(first.path, 'ab') as f:  # the file under that name no longer has that content
        f.write(b'tampered')
    with pytest.raises(OutputExistsError, match=re.escape(first.path)):
        save()
    assert file_sha256(first.path) != first.sha256  # left as it was
    forced = save(force=True)
    assert (forced.path, forced.status) == (first.path, 'overwritten')
    assert file_sha256(first.path) == first.sha256
    assert [p.name for p in tmp_path.iterdir()] == [first.path.split('/')[-1]]  # no temp files


def test_export_cli(tmp_path, run_cli):
    torch.save(classification_checkpoint(random_backbone()), tmp_path / 'cls.pth')
    out = tmp_path / 'checkpoints' / 'x50.pth'
    ok = run_cli('export_backbone.py', tmp_path / 'cls.pth', out)
    assert ok.returncode == 0, ok.stderr
    meta = read_checkpoint(str(out))['meta']
    assert ok.stdout.splitlines() == [
        f'{out}: depth=50 groups=32 base_width=4 base_channels=64 stem_channels=64 '
        f'deep_stem=False avg_down=False epoch=3 top1=65.5',
        f"sha256: weights {meta['sha256']} (meta['sha256']), file {file_sha256(str(out))}"]

    other = classification_checkpoint(random_backbone())
    torch.save(other, tmp_path / 'other.pth')
    refused = run_cli('export_backbone.py', tmp_path / 'other.pth', out)
    assert refused.returncode == 2 and refused.stdout == ''
    assert refused.stderr == (f'error: {out} already exists with different content; not '
                              f'overwriting it: pass --force to overwrite it, or give another '
                              f'output path\n')
    assert read_checkpoint(str(out))['meta']['sha256'] == meta['sha256']
    forced = run_cli('export_backbone.py', tmp_path / 'other.pth', out, '--force')
    assert forced.returncode == 0, forced.stderr
    assert read_checkpoint(str(out))['meta']['sha256'] != meta['sha256']
    published = run_cli('export_backbone.py', tmp_path / 'other.pth', out, '--publish')
    assert published.returncode == 0, published.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        ['x50.pth', f'x50-{file_sha256(str(out))[:8]}.pth'])  # --publish: the same bytes


def test_refused_exports_write_nothing(tmp_path):
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x00garbage' * 64)
    with pytest.raises(WeightsError, match=f'{garbage}: not a readable PyTorch checkpoint'):
        export_classifier(str(garbage), str(tmp_path / 'out' / 'x.pth'))

    checkpoint = classification_checkpoint(random_backbone())
    del checkpoint['state_dict']['backbone.layer4.2.conv3.weight']
    torch.save(checkpoint, tmp_path / 'cls.pth')
    with pytest.raises(WeightsError, match='missing keys:.*layer4.2.conv3.weight'):
        export_classifier(str(tmp_path / 'cls.pth'), str(tmp_path / 'out' / 'x.pth'))
    assert not (tmp_path / 'out').exists()
