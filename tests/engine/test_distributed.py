"""Two CPU processes under torchrun (gloo) train the demo detector and classifier in sync, as
8 GPUs would.

Checks what multi-GPU training relies on: identical weights on every rank after the steps,
only rank 0 writing checkpoints and logs, and the effective batch and auto-scaled lr that the
config promises (lr x total_batch / auto_scale_lr.base_batch_size).
"""
import glob
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_dist_configs import TASKS  # tests/engine/, on sys.path under pytest

pytestmark = pytest.mark.slow  # 2-process torchrun trainings
ROOT = Path(__file__).resolve().parents[2]
DUMP_HOOK = '''
import os.path as osp
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        group = runner.optim_wrapper.optimizer.param_groups[0]
        torch.save(dict(params={k: v.detach().clone() for k, v in model.named_parameters()},
                        initial_lr=group['initial_lr'], world_size=get_world_size(),
                        batch_size=runner.cfg.train_dataloader.batch_size, iters=runner.iter),
                   osp.join(runner.work_dir, f'rank{get_rank()}_state.pt'))
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


COMMON = """
custom_imports = dict(imports=['resnext_det', 'dump_rank_state_hook'])
custom_hooks = [dict(type='DumpRankStateHook')]
train_cfg = dict(max_epochs=1, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=1))
randomness = dict(seed=0)
"""


# 16 images / (2 processes x 4 per process) = 2 iterations; the lr scales with the total batch
# of 8: detection 0.02 x 8 / 4, classification 0.1 x 8 / 32.
@pytest.mark.parametrize('task,config_text,expected_lr', [
    ('detection', TASKS['detection'], 0.04),
    ('classification', TASKS['classification'], 0.025),
])
def test_two_process_training_stays_in_sync(tmp_path, small_demo_data, task, config_text,
                                            expected_lr):
    data_root = small_demo_data(num_train=16, num_val=4, num_cls_per_class=4)
    (tmp_path / 'dump_rank_state_hook.py').write_text(DUMP_HOOK)
    work_dir = tmp_path / 'work'
    config = tmp_path / f'ddp_{task}.py'
    config.write_text(config_text.format(root=ROOT, data=data_root) + COMMON)
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=f'{tmp_path}:{ROOT}',
               OMP_NUM_THREADS='1', PORT=str(free_port()))
    cmd = ['bash', str(ROOT / 'tools' / 'dist_train.sh'),
           str(config), '2', '--work-dir', str(work_dir), '--auto-scale-lr']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    states = [torch.load(work_dir / f'rank{r}_state.pt', weights_only=True) for r in (0, 1)]
    for s in states:
        assert (s['world_size'], s['batch_size'], s['iters']) == (2, 4, 2)
        assert s['initial_lr'] == pytest.approx(expected_lr)
    assert states[0]['params'].keys() == states[1]['params'].keys()
    for name, p0 in states[0]['params'].items():
        torch.testing.assert_close(states[1]['params'][name], p0, rtol=0, atol=0, msg=name)

    # only rank 0 writes: one checkpoint, one log, no per-rank files
    checkpoints = [p.name for p in work_dir.glob('*.pth')]
    assert 'epoch_1.pth' in checkpoints and not any('rank' in c for c in checkpoints)
    logs = glob.glob(str(work_dir / '*' / '*.log'))
    assert len(logs) == 1 and 'rank' not in os.path.basename(logs[0])
    assert not list(work_dir.rglob('*rank1*.log'))
