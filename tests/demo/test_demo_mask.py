"""`tools/demo.py --mask`: the demo Mask R-CNN configs are the demo Faster R-CNN plus mmdet's
mask branch, and the demo trains, tests and draws them from the same pretrained export."""

import pytest
from mmengine.config import Config


@pytest.fixture(scope='module')
def demo(demo_cli):
    return demo_cli


@pytest.mark.parametrize('name', ['r50_slim', 'x50_8x4d_slim'])
def test_mask_config_is_the_faster_one_plus_the_mask_branch(demo, repo_root, name):
    mask = Config.fromfile(repo_root / demo.MASK[name]).to_dict()
    faster = Config.fromfile(repo_root / demo.ARCHS[name][1]).to_dict()
    assert (mask['model'].pop('type'), faster['model'].pop('type')) == ('MaskRCNN', 'FasterRCNN')
    assert mask['model']['data_preprocessor'].pop('pad_mask') is True
    mask_head = mask['model']['roi_head'].pop('mask_head')
    extractor = mask['model']['roi_head'].pop('mask_roi_extractor')
    # the mask branch at the slim FPN's width, with our fp32/NCHW RoI extractor
    neck_width = faster['model']['neck']['out_channels']
    assert mask_head['in_channels'] == extractor['out_channels'] == neck_width
    assert mask_head['num_classes'] == faster['model']['roi_head']['bbox_head']['num_classes']
    assert extractor['type'] == 'resnext_det.SingleRoIExtractor'
    assert mask['model']['train_cfg']['rcnn'].pop('mask_size') == 28
    assert mask['model']['test_cfg']['rcnn'].pop('mask_thr_binary') == 0.5
    assert mask['model'] == faster['model']  # same backbone, export, neck, heads, schedule
    for split in ('train_dataloader', 'val_dataloader'):
        loads = [t for t in mask[split]['dataset']['pipeline'] if t['type'] == 'LoadAnnotations']
        assert loads == [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    assert mask['val_evaluator']['metric'] == ['bbox', 'segm']
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'randomness'):
        assert mask[key] == faster[key]


def test_dry_run_trains_tests_and_draws_mask_rcnn_from_each_export(demo, capsys):
    demo.main(['--mask', '--compare', '--dry-run', '--work-dir', 'wd'])
    out = capsys.readouterr().out
    for name in ('r50_slim', 'x50_8x4d_slim'):
        config = demo.MASK[name]
        assert (f'tools/train.py {config} --work-dir wd/{name}_mask --cfg-options '
                f'model.backbone.init_cfg.checkpoint=wd/backbones/{name}.pth') in out
        assert f'tools/test.py {config} wd/{name}_mask/epoch_N.pth' in out
        assert f'wd/{name}_mask ' in out.split('tools/compare_results.py')[1]
    infer = next(line for line in out.splitlines() if 'tools/infer.py' in line)
    assert demo.MASK['x50_8x4d_slim'] in infer and 'wd/x50_8x4d_slim_mask/' in infer
