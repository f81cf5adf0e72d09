"""Two CPU processes under torchrun (gloo) train the demo detector in sync, as 8 GPUs would.

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

from resnext_det.datasets.demo_data import make_demo_data

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
                        batch_size=runner.train_dataloader.batch_size, iters=runner.iter),
                   osp.join(runner.work_dir, f'rank{get_rank()}_state.pt'))
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_training_stays_in_sync(tmp_path):
    data = make_demo_data(tmp_path / 'demo', num_train=16, num_val=4, num_cls_per_class=1,
                          num_cls_val_per_class=1)
    coco = Path(data['out_dir']) / 'coco'
    (tmp_path / 'dump_rank_state_hook.py').write_text(DUMP_HOOK)
    work_dir = tmp_path / 'work'
    config = tmp_path / 'ddp_demo.py'
    config.write_text(f"""
_base_ = '{ROOT / 'configs' / 'demo' / 'faster_rcnn_r50_slim_demo.py'}'
custom_imports = dict(imports=['resnext_det', 'dump_rank_state_hook'])
custom_hooks = [dict(type='DumpRankStateHook')]
data_root = '{coco}/'
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=1))
randomness = dict(seed=0)
""")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=f'{tmp_path}:{ROOT}',
               OMP_NUM_THREADS='1', PORT=str(free_port()))
    cmd = ['bash', str(ROOT / 'tools' / 'dist_train.sh'),
           str(config), '2', '--work-dir', str(work_dir), '--auto-scale-lr']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    states = [torch.load(work_dir / f'rank{r}_state.pt', weights_only=True) for r in (0, 1)]
    for s in states:
        # 16 images / (2 processes x 4 per process) = 2 iterations
        assert (s['world_size'], s['batch_size'], s['iters']) == (2, 4, 2)
        # base lr 0.02 for base_batch_size 4, effective batch 8 -> 0.04
        assert s['initial_lr'] == pytest.approx(0.04)
    assert states[0]['params'].keys() == states[1]['params'].keys()
    for name, p0 in states[0]['params'].items():
        torch.testing.assert_close(states[1]['params'][name], p0, rtol=0, atol=0, msg=name)
    assert not torch.equal(states[0]['params']['backbone.conv1.weight'],
                           torch.zeros_like(states[0]['params']['backbone.conv1.weight']))

    # only rank 0 writes: one checkpoint, one log, no per-rank files
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth']
    logs = glob.glob(str(work_dir / '*' / '*.log'))
    assert len(logs) == 1 and 'rank' not in os.path.basename(logs[0])
    assert not list(work_dir.rglob('*rank1*.log'))
