"""Faults that lose long runs, met by tools/train.py: a disk that fills while a checkpoint is
written, and bad data. Each ends with one `error:` line (exit status 2), no traceback, and the
previous checkpoint intact."""
import json
import os

import pytest

from resnext_det.utils.safe_load import load_checkpoint_file

FULL_DISK_HOOK = '''
import errno
import os

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DiskFullsAtSecondCheckpointHook(Hook):
    def before_save_checkpoint(self, runner, checkpoint):
        if runner.epoch == 1:  # 0-based: while epoch_2.pth is written
            def no_space(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync = no_space
'''


def demo_config(tmp_path, repo_root, data_root, extra='',
                train_ann='annotations/instances_train.json'):
    coco = f'{data_root}/coco/'
    config = tmp_path / 'config.py'
    config.write_text(f"""
_base_ = '{repo_root}/configs/demo/faster_rcnn_r50_slim_demo.py'
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root='{coco}', ann_file='{train_ann}'))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root='{coco}'))
val_evaluator = dict(ann_file='{coco}annotations/instances_val.json')
train_cfg = dict(max_epochs=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1))
{extra}""")
    return config


def one_error_line(proc):
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


@pytest.mark.slow
def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(tmp_path, small_demo_data,
                                                                  run_tool, repo_root):
    (tmp_path / 'full_disk_hook.py').write_text(FULL_DISK_HOOK)
    config = demo_config(tmp_path, repo_root, small_demo_data(num_train=4, num_val=2), """
custom_imports = dict(imports=['resnext_det', 'resnext_det.runtime', 'full_disk_hook'])
custom_hooks = [dict(type='DiskFullsAtSecondCheckpointHook')]
""")
    work_dir = tmp_path / 'work'
    proc = run_tool('train.py', config, '--work-dir', work_dir,
                    env=dict(os.environ, PYTHONPATH=f'{tmp_path}:{repo_root}'))
    line = one_error_line(proc)
    assert f'cannot write {work_dir}/epoch_2.pth: No space left on device' in line
    assert f'{work_dir}/epoch_1.pth, is intact' in line and '--resume' in line
    # the previous checkpoint and the pointer to it are intact; nothing partial anywhere
    assert load_checkpoint_file(str(work_dir / 'epoch_1.pth'))['meta']['epoch'] == 1
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / 'epoch_1.pth')
    files = sorted(p.name for p in work_dir.iterdir() if p.is_file())
    assert files == ['config.py', 'epoch_1.pth', 'last_checkpoint'], files


@pytest.mark.slow
def test_annotation_file_that_is_not_json_stops_before_training(tmp_path, small_demo_data,
                                                                 run_tool, repo_root):
    data_root = small_demo_data(num_train=4, num_val=2)
    broken = tmp_path / 'instances_train.json'
    text = (data_root / 'coco' / 'annotations' / 'instances_train.json').read_text()
    broken.write_text(text[:len(text) // 2])  # cut off, as by a full disk or a bad download
    config = demo_config(tmp_path, repo_root, data_root, train_ann=str(broken))
    line = one_error_line(run_tool('train.py', config, '--work-dir', tmp_path / 'work'))
    assert f'{broken}: not valid JSON' in line and 'line 1, column' in line
    assert not list((tmp_path / 'work').glob('*.pth'))


@pytest.mark.slow
def test_classifier_folder_with_an_empty_class_is_one_line(tmp_path, small_demo_data, run_tool,
                                                           repo_root):
    data_root = small_demo_data(num_train=4, num_val=2)
    train = tmp_path / 'train'
    os.symlink(data_root / 'imagenet' / 'train', tmp_path / 'real', target_is_directory=True)
    train.mkdir()
    for class_dir in (tmp_path / 'real').iterdir():
        os.symlink(class_dir, train / class_dir.name, target_is_directory=True)
    (train / 'zz_empty').mkdir()
    config = tmp_path / 'cls.py'
    config.write_text(f"""
_base_ = '{repo_root}/configs/demo/resnext50_8x4d_slim_cls_demo.py'
train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root='{train}'))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{data_root}/imagenet/val'))
""")
    line = one_error_line(run_tool('train.py', config, '--work-dir', tmp_path / 'work'))
    assert str(train) in line and 'zz_empty' in line
    json.dumps(line)  # one printable line
