"""Bad input to the train/test CLIs: one clear line naming the problem and the fix."""
from pathlib import Path

import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules

from resnext_det.engine import check_inputs, load_config
from resnext_det.errors import UserInputError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'configs' / 'demo' / 'faster_rcnn_x50_8x4d_slim_demo.py'


@pytest.fixture
def demo_data(small_demo_data):
    return small_demo_data()


def demo_config(demo_data):
    root = f'{demo_data}/coco/'
    return load_config(str(DEMO), {
        'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json'})


def test_demo_config_passes_the_checks(demo_data):
    check_inputs(demo_config(demo_data), 'train')


def test_missing_data_root_names_the_path_and_the_way_out(tmp_path):
    cfg = load_config(str(ROOT / 'configs' / 'faster_rcnn_r50_fpn.py'),
                      {'train_dataloader.dataset.data_root': f'{tmp_path}/coco/'})
    with pytest.raises(UserInputError) as err:
        check_inputs(cfg, 'train')
    assert f'{tmp_path}/coco/' in str(err.value) and 'make_demo_data' in str(err.value)


def test_missing_annotation_file_is_named(demo_data):
    cfg = demo_config(demo_data)
    cfg.train_dataloader.dataset.ann_file = 'annotations/missing.json'
    with pytest.raises(UserInputError, match='missing.json does not exist'):
        check_inputs(cfg, 'train')


def test_backbone_typo_lists_registered_names(demo_data):
    cfg = demo_config(demo_data)
    cfg.model.backbone.type = 'resnext_det.ResNext'
    with pytest.raises(UserInputError) as err:
        check_inputs(cfg, 'train')
    assert "'resnext_det.ResNext'" in str(err.value)
    assert 'resnext_det.ResNeXt' in str(err.value) and 'ResNet' in str(err.value)


def test_missing_pretrained_checkpoint_says_how_to_get_one(demo_data, tmp_path):
    cfg = demo_config(demo_data)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'no.pth'))
    with pytest.raises(UserInputError) as err:
        check_inputs(cfg, 'train')
    assert 'no.pth' in str(err.value) and 'export_backbone' in str(err.value)


def test_cli_prints_one_line_without_traceback(tmp_path, run_tool):
    proc = run_tool('train.py', 'configs/faster_rcnn_r50_fpn.py', '--work-dir', tmp_path / 'w',
                    '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}/',
                    timeout=120)
    assert proc.returncode == 2  # user errors: argparse's status, as the CLIs promise
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in proc.stderr
    assert 'Warning' not in proc.stderr, proc.stderr  # no dependency noise around the line
    assert not (tmp_path / 'w').exists(), 'a failed check must not create the work dir'


def test_undecodable_image_is_reported_by_file_name(demo_data, tmp_path):
    register_all_modules()
    cfg = demo_config(demo_data)
    ds_cfg = cfg.val_dataloader.dataset
    images = tmp_path / 'val'
    images.mkdir()
    for f in (demo_data / 'coco' / 'val').iterdir():
        (images / f.name).write_bytes(f.read_bytes())
    broken = sorted(images.iterdir())[0]
    broken.write_bytes(b'\xff\xd8 this is not a jpeg')
    ds_cfg.data_prefix = dict(img=str(images) + '/')
    dataset = DATASETS.build(ds_cfg)
    with pytest.raises(Exception, match=broken.name):
        dataset[0]


def test_broken_config_is_one_clear_error(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text(f"_base_ = '{DEMO}'\n"
                      "model = dict(backbone=dict(init_cfg=dict(type='Pretrained')))\n")
    with pytest.raises(UserInputError, match='broken.py.*init_cfg'):
        load_config(str(config))
    with pytest.raises(UserInputError, match='does not exist'):
        load_config(str(tmp_path / 'nope.py'))


@pytest.mark.slow
def test_corrupt_checkpoint_given_to_test_py_is_one_error_line(demo_data, tmp_path, run_tool):
    ckpt = tmp_path / 'epoch_12.pth'
    ckpt.write_bytes(b'PK\x03\x04 not really a checkpoint')
    root = f'{demo_data}/coco/'
    proc = run_tool('test.py', DEMO, ckpt, '--work-dir', tmp_path / 'w',
                    '--cfg-options', f'test_dataloader.dataset.data_root={root}',
                    f'test_evaluator.ann_file={root}annotations/instances_val.json', timeout=120)
    assert proc.returncode == 2  # user errors: argparse's status, as the CLIs promise
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'epoch_12.pth' in errors[0] and 'corrupt' in errors[0]
    assert 'Traceback' not in proc.stderr


def test_train_flags_set_amp_clipping_resume_and_lr_scaling(demo_data, tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_cli', ROOT / 'tools' / 'train.py')
    train_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_cli)
    root = f'{demo_data}/coco/'
    data = ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'val_evaluator.ann_file={root}annotations/instances_val.json']
    args = train_cli.parse_args([str(DEMO), '--work-dir', str(tmp_path), '--amp',
                                 '--clip-grad', '35', '--auto-scale-lr', '--resume', *data])
    # mmengine's AMP runs on CUDA only: without a GPU --amp is refused with the way out
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    with pytest.raises(UserInputError, match='needs a GPU.*train the plain config'):
        train_cli.build_train_config(args)
    monkeypatch.setattr('torch.cuda.is_available', lambda: True)
    cfg = train_cli.build_train_config(args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35.0, norm_type=2)
    assert cfg.auto_scale_lr.enable
    assert cfg.resume is False and cfg.load_from is None  # nothing to resume in a new work dir
    with pytest.raises(UserInputError, match='--clip-grad'):
        train_cli.build_train_config(train_cli.parse_args(
            [str(DEMO), '--work-dir', str(tmp_path), '--clip-grad', '0', *data]))
