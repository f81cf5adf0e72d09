"""Interrupted training loses nothing: atomic checkpoint writes, partial files skipped, and a
run killed with SIGKILL resumes to exactly the weights of an uninterrupted run."""
import os
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend

import resnext_det.runtime  # noqa: F401  (the switch under test: registers the atomic backend)
from resnext_det.engine import ATOMIC_BACKEND, AtomicLocalBackend, latest_complete_checkpoint
from resnext_det.utils.safe_load import load_checkpoint_file

ROOT = Path(__file__).resolve().parents[2]


def test_our_runtime_selects_the_atomic_backend_and_leaves_local_alone(tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'faster_rcnn_r50_fpn.py'))
    backend_args = cfg.default_hooks.checkpoint.backend_args
    assert backend_args == dict(backend=ATOMIC_BACKEND)
    assert isinstance(get_file_backend(str(tmp_path), backend_args=backend_args),
                      AtomicLocalBackend)
    assert type(get_file_backend(str(tmp_path))) is LocalBackend  # mmengine's, unchanged
    cls_cfg = Config.fromfile(str(ROOT / 'configs' / 'imagenet' / 'resnet50_8xb32_in1k.py'))
    assert cls_cfg.default_hooks.checkpoint.backend_args == backend_args


@pytest.mark.parametrize('method', ['put', 'put_text'])
def test_atomic_backend_keeps_the_old_file_when_killed_mid_write(tmp_path, monkeypatch, method):
    target = tmp_path / 'epoch_1.pth'
    backend = get_file_backend(str(target), backend_args=dict(backend=ATOMIC_BACKEND))
    data = b'old checkpoint' if method == 'put' else 'old pointer'
    getattr(backend, method)(data, target)
    old_bytes = target.read_bytes()
    assert old_bytes == (data if method == 'put' else data.encode())

    def crash(fd):  # the process dies after writing, before the file is committed
        raise KeyboardInterrupt
    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        getattr(backend, method)(data * 3, target)
    assert target.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']


def test_auto_resume_skips_a_partial_checkpoint(tmp_path):
    good = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}}, good)
    partial = tmp_path / 'epoch_2.pth'
    partial.write_bytes(good.read_bytes()[:-40])  # killed while writing (non-atomic writer)
    os.utime(partial, (good.stat().st_mtime + 5, ) * 2)
    (tmp_path / 'last_checkpoint').write_text(str(partial))
    assert latest_complete_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / 'last_checkpoint').write_text('')  # killed while writing the pointer
    assert latest_complete_checkpoint(str(tmp_path)) == str(good)
    assert latest_complete_checkpoint(str(tmp_path / 'empty')) is None


KILL_HOOK = '''
import os, signal
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterFirstEpochHook(Hook):
    priority = 'LOWEST'  # after CheckpointHook has written epoch_1.pth

    def after_train_epoch(self, runner):
        if runner.epoch == 0 and os.environ.get('KILL_AFTER_FIRST_EPOCH'):  # 0-based
            os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, small_demo_data, run_tool):
    data_root = small_demo_data(num_train=8, num_val=2)
    (tmp_path / 'kill_hook.py').write_text(KILL_HOOK)
    config = tmp_path / 'resume_demo.py'
    coco = f'{data_root}/coco/'
    config.write_text(f"""
_base_ = '{ROOT}/configs/demo/faster_rcnn_r50_slim_demo.py'
custom_imports = dict(imports=['resnext_det', 'kill_hook'])
custom_hooks = [dict(type='resnext_det.RandomStateHook'), dict(type='KillAfterFirstEpochHook')]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root='{coco}'))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root='{coco}'))
val_evaluator = dict(ann_file='{coco}annotations/instances_val.json')
train_cfg = dict(max_epochs=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1))
randomness = dict(seed=0, deterministic=True)
""")
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}:{ROOT}')

    def train(work_dir, *extra, **env_extra):
        return run_tool('train.py', config, '--work-dir', work_dir, *extra,
                        env=dict(env, **env_extra))

    straight = train(tmp_path / 'straight')
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = train(tmp_path / 'killed', KILL_AFTER_FIRST_EPOCH='1')
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / 'killed' / 'epoch_1.pth').exists()
    assert not (tmp_path / 'killed' / 'epoch_2.pth').exists()
    resumed = train(tmp_path / 'killed', '--resume')
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    final = [load_checkpoint_file(str(tmp_path / d / 'epoch_2.pth'))['state_dict']
             for d in ('straight', 'killed')]
    assert final[0].keys() == final[1].keys()
    for key, value in final[0].items():
        torch.testing.assert_close(final[1][key], value, rtol=0, atol=0, msg=key)
