"""The safe loader: mmengine runner checkpoints load and resume under torch's
`weights_only=True` default, through the explicit `resnext_det.runtime` switch."""
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import resnext_det.runtime  # noqa: F401  (the switch under test: mmengine loads through ours)
from resnext_det.errors import NonFiniteLossError
from resnext_det.utils.safe_load import (
    ALLOW_UNSAFE_ENV,
    CheckpointLoadError,
    load_checkpoint_file,
    mmengine_checkpoint_globals,
)


class ToyData(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g), target=torch.randn(1, generator=g))


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - target)**2).mean())
        return out


def make_runner(work_dir, max_epochs, custom_hooks=(), **kwargs):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1, 2], gamma=0.1),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[*custom_hooks, dict(type='resnext_det.TensorOnlyCheckpointHook')],
        randomness=dict(seed=0), **kwargs)


def test_runner_checkpoint_loads_weights_only_and_resumes(tmp_path):
    make_runner(tmp_path / 'a', max_epochs=1).train()
    ckpt = tmp_path / 'a' / 'epoch_1.pth'
    # The checkpoint really holds non-tensor objects (so this test can fail), all of them in
    # the loader's list, and no `getattr` (which would make any allowlist moot) ...
    raw = ckpt.read_bytes()
    assert b'HistoryBuffer' in raw and b'getattr' not in raw
    with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
        assert not torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt))
    # ... nothing was added to torch's process-wide list ...
    assert HistoryBuffer not in torch.serialization.get_safe_globals()
    # ... and it loads tensor-only, with working statistics, and resumes where it stopped.
    state = load_checkpoint_file(str(ckpt), map_location='cpu')
    assert state['meta']['epoch'] == 1
    loss = state['message_hub']['log_scalars']['train/loss']
    assert loss.mean() == pytest.approx(loss.data[0].sum() / loss.data[1].sum())
    runner = make_runner(tmp_path / 'a', max_epochs=2, resume=True, load_from=str(ckpt))
    runner.train()
    assert runner.epoch == 2 and runner.iter == 8
    assert (tmp_path / 'a' / 'epoch_2.pth').exists()


def test_without_the_hook_mmengine_checkpoints_need_the_opt_in(tmp_path):
    runner = make_runner(tmp_path, max_epochs=1)
    runner._hooks = [h for h in runner._hooks if type(h).__name__ != 'TensorOnlyCheckpointHook']
    runner.train()
    ckpt = tmp_path / 'epoch_1.pth'
    assert b'getattr' in ckpt.read_bytes()  # mmengine pickles HistoryBuffer.mean by getattr
    with pytest.raises(CheckpointLoadError, match='--allow-unsafe-pickle'):
        load_checkpoint_file(str(ckpt))
    assert load_checkpoint_file(str(ckpt), allow_unsafe=True)['meta']['epoch'] == 1


class DivergingModel(ToyModel):
    """Its second loss term turns NaN at the 6th training step."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def forward(self, inputs, target=None, mode='tensor'):
        out = super().forward(inputs, target, mode)
        if mode != 'loss':
            return out
        self.steps += 1
        bad = float('nan') if self.steps >= 6 else 0.0
        return dict(loss_a=out['loss'], loss_b=out['loss'] * 0 + bad)


def test_non_finite_loss_stops_naming_iteration_and_term(tmp_path):
    runner = make_runner(tmp_path, max_epochs=3,
                         custom_hooks=[dict(type='resnext_det.NonFiniteLossHook')])
    runner.model = DivergingModel()  # before train(): the runner wraps it then
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    message = str(err.value)
    assert 'iteration 6 (epoch 2)' in message and 'loss_b=nan' in message
    assert 'loss_a' not in message and 'epoch_1.pth' in message
    # the last good checkpoint survives and nothing was written after the divergence
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_1.pth']


class Arbitrary:
    """Stands for any object whose unpickling would import and run code."""


def test_code_bearing_checkpoint_is_refused_unless_opted_in(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'stranger.pth'
    torch.save({'state_dict': {}, 'payload': Arbitrary()}, path)
    with pytest.raises(CheckpointLoadError) as err:
        _load_checkpoint(str(path), map_location='cpu')  # mmengine's own entry point
    assert str(path) in str(err.value) and '--allow-unsafe-pickle' in str(err.value)
    monkeypatch.setenv(ALLOW_UNSAFE_ENV, '1')
    assert isinstance(_load_checkpoint(str(path), map_location='cpu')['payload'], Arbitrary)


def test_truncated_checkpoint_names_the_file(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(100)}}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointLoadError, match=r'cut\.pth: truncated or corrupt'):
        _load_checkpoint(str(cut), map_location='cpu')
