"""Property-based: random `--cfg-options` mutations of the detection and classification configs
(wrong types, missing values, negative sizes, unknown types) either start training or stop with
one `error:` line, exit status 2, in bounded time, leaving an existing work dir as it was."""
import importlib.util
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class StartedTraining(BaseException):
    """Raised after the first iteration: the mutated config trains, which is all we ask."""


@HOOKS.register_module(force=True)
class FuzzStopAfterFirstIterationHook(Hook):
    priority = 'LOWEST'  # after TrainingStartedHook has seen the iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        raise StartedTraining


# wrong types, missing values, negative or huge sizes, unknown types, and valid ones (2)
VALUES = st.sampled_from([-1, 0, 2, 3.5, 'abc', 'None', '[]', '{}', 'UnknownType', '1e9'])
DETECTION_KEYS = [
    'train_dataloader.batch_size', 'train_dataloader.dataset.type',
    'train_dataloader.dataset.pipeline', 'train_dataloader.sampler.type', 'model.type',
    'model.backbone.depth', 'model.backbone.groups', 'model.backbone.base_channels',
    'model.backbone.frozen_stages', 'model.neck.type', 'model.neck.out_channels',
    'model.rpn_head.type', 'model.roi_head.bbox_head.num_classes',
    'model.data_preprocessor.mean', 'optim_wrapper.optimizer.type', 'optim_wrapper.optimizer.lr',
    'param_scheduler', 'train_cfg.val_interval', 'default_hooks.checkpoint.interval',
    'val_evaluator.type',
]
CLASSIFICATION_KEYS = [
    'train_dataloader.batch_size', 'train_dataloader.dataset.crop_size',
    'train_dataloader.dataset.crop_scale', 'model.num_classes', 'model.backbone.base_width',
    'model.backbone.num_stages', 'optim_wrapper.optimizer.momentum', 'val_evaluator.topk',
]


@pytest.fixture(scope='module')
def train_main(repo_root):
    spec = importlib.util.spec_from_file_location('train_cli', repo_root / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope='module')
def configs(repo_root, small_demo_data, tmp_path_factory):
    data = small_demo_data(num_train=4, num_val=2)
    folder = tmp_path_factory.mktemp('fuzz_configs')
    common = ("custom_hooks = [dict(type='FuzzStopAfterFirstIterationHook')]\n"
              'train_cfg = dict(max_epochs=1)\n')
    detection = folder / 'det.py'
    detection.write_text(f"""
_base_ = '{repo_root}/configs/demo/faster_rcnn_r50_slim_demo.py'
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root='{data}/coco/'))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{data}/coco/'))
val_evaluator = dict(ann_file='{data}/coco/annotations/instances_val.json')
""" + common)
    classification = folder / 'cls.py'
    classification.write_text(f"""
_base_ = '{repo_root}/configs/demo/resnext50_8x4d_slim_cls_demo.py'
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root='{data}/imagenet/train'))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{data}/imagenet/val'))
""" + common)
    return dict(detection=(detection, DETECTION_KEYS),
                classification=(classification, CLASSIFICATION_KEYS))


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob('*') if p.is_file()}


@pytest.mark.parametrize('task', ['detection', 'classification'])
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@pytest.mark.slow
@given(data=st.data())
def test_mutated_configs_start_or_stop_with_one_line(task, data, configs, train_main, tmp_path,
                                                     capsys, monkeypatch):
    config, keys = configs[task]
    mutations = data.draw(st.dictionaries(st.sampled_from(keys), VALUES, min_size=1, max_size=2))
    work_dir = tmp_path / f'work_{time.monotonic_ns()}'
    work_dir.mkdir()
    (work_dir / 'epoch_3.pth').write_bytes(b'a previous run, to keep')
    before = snapshot(work_dir)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    # one runner per example in this process: a unique experiment name keeps mmengine's
    # per-name logger and visualizer instances apart (a user's process runs one)
    argv = [str(config), '--work-dir', str(work_dir), '--cfg-options',
            f'experiment_name={work_dir.name}', f'visualizer.name={work_dir.name}',
            *[f'{key}={value}' for key, value in mutations.items()]]
    start = time.monotonic()
    try:
        train_main(argv)
        outcome = 'finished'
    except StartedTraining:
        outcome = 'started'
    except SystemExit as e:
        outcome = f'exit {e.code}'
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert elapsed < 120, (mutations, elapsed)
    if outcome in ('started', 'finished'):
        return
    assert outcome == 'exit 2', (mutations, outcome, err[-2000:])
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'Traceback' not in err, (mutations, err[-2000:])
    assert snapshot(work_dir) == before, (mutations, errors[0])
    assert not os.environ.get('RESNEXT_DET_TRACEBACK')
