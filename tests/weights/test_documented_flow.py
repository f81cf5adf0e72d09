"""The weight commands of README.md and docs/reproduce.md, as written there, up to training.

Every ``python tools/convert_weights.py ...`` and ``python tools/export_backbone.py ...`` line of
the two documents' bash blocks is run with its exact argument vector (a shell's glob expanded)
in an empty directory, on a small random checkpoint of the network it names. The detector that
loads the output, the config docs/reproduce.md's table lists for that path (or the documented
``tools/train.py ... --cfg-options ...init_cfg.checkpoint=PATH`` line), is then built from that
config, initialised (mmengine's ``Pretrained`` init, as training does), checked to hold every
backbone tensor of the file and to compute the source network's features, and trained one
iteration.
"""
import argparse
import glob
import math
import os
import re
import shlex
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from analysis_tools.detector_benchmark import synthetic_batch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from model_testing import randomize_bn  # tests/, on sys.path under pytest
from safetensors.torch import save_file

from resnext_det.models import builders

ROOT = Path(__file__).resolve().parents[2]
DOCS = ('README.md', 'docs/reproduce.md')
TOOLS = ('tools/convert_weights.py', 'tools/export_backbone.py')
CHECKPOINT_OPTION = 'model.backbone.init_cfg.checkpoint='


def bash_lines(doc: str):
    """The commands of a markdown file's bash blocks, continuation lines joined."""
    text = (ROOT / doc).read_text()
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        yield from block.replace('\\\n', ' ').splitlines()


def documented(prefixes):
    """Argument vectors (after ``python``) of the documented commands running ``prefixes``,
    each once, comments dropped as the shell drops them."""
    commands = []
    for doc in DOCS:
        for line in bash_lines(doc):
            tokens = shlex.split(line, comments=True)
            if tokens[:1] == ['python'] and tokens[1:2] and tokens[1] in prefixes \
                    and tokens[1:] not in commands:
                commands.append(tokens[1:])
    return commands


WEIGHT_COMMANDS = documented(TOOLS)


def config_table():
    """docs/reproduce.md's table: checkpoint path -> the configs that load it."""
    table = {}
    for configs, path in re.findall(r'^\| (`[^|]+`) \| `(checkpoints/[^`]+)` \|$',
                                    (ROOT / 'docs/reproduce.md').read_text(), flags=re.M):
        table[path] = re.findall(r'`([^`]+)`', configs)
    return table


def config_for(path):
    """The config (and --cfg-options) the docs give for training from ``path``."""
    table = config_table()
    if path in table:
        faster = [name for name in table[path] if name.startswith('faster_rcnn')]
        return Config.fromfile(str(ROOT / 'configs' / faster[0]))
    for tokens in documented(('tools/train.py',)):
        if f'{CHECKPOINT_OPTION}{path}' in tokens:
            parser = argparse.ArgumentParser()
            parser.add_argument('config')
            parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
            args, _ = parser.parse_known_args(tokens[1:])
            cfg = Config.fromfile(str(ROOT / args.config))
            cfg.merge_from_dict(args.cfg_options)
            return cfg
    pytest.fail(f'the docs write {path} but name no config that loads it (docs/reproduce.md '
                f'table) and no tools/train.py line with {CHECKPOINT_OPTION}{path}')


def small_input():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def torchvision_features(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def make_source(tool, args):
    """Write the checkpoint a documented command reads; return (output path, features of the
    source network on small_input())."""
    if tool == 'tools/export_backbone.py':
        src, out = args
        # our classifier's checkpoint, as tools/train.py configs/imagenet/... leaves it
        backbone = randomize_bn(getattr(builders, Path(out).stem)()).eval()
        state_dict = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
        state_dict['head.fc.weight'] = torch.randn(1000, backbone.feat_dim) * 0.01
        state_dict['head.fc.bias'] = torch.zeros(1000)
        checkpoint = dict(meta=dict(epoch=100), state_dict=state_dict)
        with torch.no_grad():
            features = backbone(small_input())[-1]
    else:
        source, src, out = args[:3]
        # the network the file is named after, e.g. resnext50_32x4d-7cdf4587.pth
        name = re.split(r'[-.]', Path(src).name)[0]
        if source == 'torchvision':
            model = randomize_bn(getattr(torchvision.models, name)()).eval()
            features = torchvision_features(model, small_input())
        elif source == 'timm':
            model = randomize_bn(timm.create_model(name, pretrained=False)).eval()
            with torch.no_grad():
                features = model.forward_features(small_input())
        else:
            pytest.fail(f'no test source for documented {source} weights')
        checkpoint = model.state_dict()
    src = src.replace('*', '100')  # the file the shell's glob then finds
    os.makedirs(os.path.dirname(src) or '.', exist_ok=True)
    if src.endswith('.safetensors'):
        save_file(checkpoint, src)
    else:
        torch.save(checkpoint, src)
    return out, features


def expand_globs(args):
    expanded = []
    for arg in args:
        if '*' in arg:
            matches = glob.glob(arg)
            assert len(matches) == 1, (arg, matches)
            expanded.extend(matches)
        else:
            expanded.append(arg)
    return expanded


@pytest.mark.parametrize('command', WEIGHT_COMMANDS, ids=lambda c: f'{Path(c[0]).stem}:'
                         + next(Path(a).stem for a in reversed(c) if a.endswith('.pth')))
@pytest.mark.slow
def test_documented_command_gives_a_detector_that_trains(command, tmp_path, monkeypatch,
                                                         run_cli):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import resnext_det  # noqa: F401  (registers the resnext_det scope)
    monkeypatch.chdir(tmp_path)
    tool, args = command[0], command[1:]
    out, features = make_source(tool, [a for a in args if not a.startswith('--')][:3])

    result = run_cli(Path(tool).name, *expand_globs(args))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'{out}: depth=')
    assert os.listdir('checkpoints') == [Path(out).name]  # exactly the documented path
    written = torch.load(out, map_location='cpu', weights_only=True)

    cfg = config_for(out)
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=out)
    register_all_modules()
    # the current logger; at WARNING it keeps init_weights' per-parameter report out of the way
    MMLogger.get_instance(f'test_documented_flow_{tmp_path.name}', log_level='WARNING')
    model = MODELS.build(cfg.model)
    model.init_weights()  # mmengine's Pretrained init, relative to the cwd as in training

    # every backbone tensor came from the file (Pretrained init would only log a missing one)
    loaded = model.backbone.state_dict()
    assert loaded.keys() == written['state_dict'].keys()
    for key, value in written['state_dict'].items():
        assert torch.equal(loaded[key], value), key
    model.eval()
    with torch.no_grad():
        ours = model.backbone(small_input())[-1]
    torch.testing.assert_close(ours, features, rtol=1e-4, atol=1e-4 * features.abs().max())

    # one training iteration of the detector, as the runner does it
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = synthetic_batch(1, 64, 96, boxes_per_image=1,
                            num_classes=cfg.model.roi_head.bbox_head.num_classes)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    log_vars = model.train_step(batch, optim_wrapper)
    assert log_vars['loss'] > 0
    assert all(math.isfinite(float(v.detach())) for v in log_vars.values()), log_vars
    after = model.backbone.state_dict()
    assert not torch.equal(after['layer4.2.conv3.weight'], before['layer4.2.conv3.weight'])
    stem = 'stem.0.weight' if cfg.model.backbone.get('deep_stem') else 'conv1.weight'
    assert torch.equal(after[stem], before[stem])  # frozen_stages=1 keeps the stem
