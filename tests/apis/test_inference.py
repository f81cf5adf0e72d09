"""tools/infer.py and resnext_det.apis.inference: predictions on a folder, a glob or a file,
drawn and saved as JSON with class names (and COCO RLE masks for Mask R-CNN); corrupt images
skipped and named; a checkpoint that does not fit the config refused; one `error:` line and exit
status 2 for what the user must fix. Random weights on the demo configs (score threshold 0, so
there are predictions)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from resnext_det.apis import (
    CheckpointMismatchError,
    collect_images,
    load_state_dict_strict,
    run_inference,
)
from resnext_det.demo import CLASSES, make_demo_data
from resnext_det.errors import UserInputError
from resnext_det.utils.safe_load import CheckpointLoadError

ROOT = Path(__file__).resolve().parents[2]
R50_SLIM = ROOT / 'configs/demo/faster_rcnn_r50_slim_demo.py'
X50_SLIM = ROOT / 'configs/demo/faster_rcnn_x50_8x4d_slim_demo.py'
X50_SLIM_FAST = ROOT / 'configs/demo/faster_rcnn_x50_8x4d_slim_pretrained_fast_demo.py'
BASE = ROOT / 'configs/_base_'
# the slim demo detector's sizes on mmdet's Mask R-CNN (what configs/demo/*.py do for Faster)
MASK_DEMO_CONFIG = f"""
_base_ = ['{BASE}/models/mask_rcnn_fpn.py', '{BASE}/datasets/demo_detection.py',
          '{BASE}/default_runtime.py']
model = dict(
    backbone=dict(base_channels=16, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=4),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=4)),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300), rcnn=dict(max_per_img=20)))
"""


def save_random_checkpoint(config, path):
    """A checkpoint as the runner writes it, minus dataset_meta (the names then come from the
    config's test dataset)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile(str(config))  # its custom_imports register resnext_det
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 12}}, path)
    return str(path)


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp('infer')
    demo = make_demo_data(root / 'demo', num_train=4, num_val=3, num_cls_per_class=1,
                          num_cls_val_per_class=1)
    images = root / 'images'
    images.mkdir()
    good = sorted(Path(demo['val_img_dir']).glob('*.jpg'))
    for path in good:
        shutil.copy(path, images / path.name)
    (images / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg' * 8)
    (images / 'notes.txt').write_text('not an image, not picked up from a folder')
    (root / 'empty').mkdir()
    return dict(root=root, images=images, good=[p.name for p in good],
                r50=save_random_checkpoint(R50_SLIM, root / 'r50_slim.pth'),
                x50=save_random_checkpoint(X50_SLIM, root / 'x50_slim.pth'))


def infer_cli(*args):
    return subprocess.run([sys.executable, 'tools/infer.py', *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def assert_one_error_line(proc, *words):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def load_pred(pred_dir, stem):
    return json.loads((Path(pred_dir) / f'{stem}.json').read_text())


def check_prediction(pred, image, masks=False):
    n = len(pred['scores'])
    assert n > 0
    assert pred['image'] == str(image) and (pred['height'], pred['width']) == (192, 192)
    expected = {'image', 'height', 'width', 'labels', 'label_names', 'scores', 'bboxes'}
    assert set(pred) == expected | ({'masks'} if masks else set())
    assert len(pred['labels']) == len(pred['label_names']) == n
    assert pred['label_names'] == [CLASSES[i] for i in pred['labels']]
    boxes = np.array(pred['bboxes'])
    assert boxes.shape == (n, 4)
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()  # xyxy
    assert all(0 < s <= 1 for s in pred['scores'])


@pytest.mark.slow
def test_folder_with_a_corrupt_image(assets, tmp_path):
    out = tmp_path / 'out'
    proc = infer_cli(assets['images'], R50_SLIM, assets['r50'], '--out-dir', out,
                     '--score-thr', 0, '--batch-size', 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the others are processed; the corrupt one is named in one final warning line
    warnings = [line for line in proc.stderr.splitlines() if line.startswith('warning: ')]
    assert len(warnings) == 1 and 'broken.jpg' in warnings[0], proc.stderr[-3000:]
    assert '1 of 4 images' in warnings[0] and 'notes.txt' not in proc.stderr
    assert f'{len(assets["good"])} images: drawn in {out / "vis"}' in proc.stdout
    assert sorted(p.name for p in (out / 'vis').iterdir()) == assets['good']
    assert sorted(p.name for p in (out / 'preds').iterdir()) == [
        name.replace('.jpg', '.json') for name in assets['good']]
    for name in assets['good']:
        check_prediction(load_pred(out / 'preds', name[:-4]), assets['images'] / name)


@pytest.mark.slow
def test_empty_folder_is_an_error(assets, tmp_path):
    proc = infer_cli(assets['root'] / 'empty', R50_SLIM, assets['r50'], '--out-dir', tmp_path)
    assert_one_error_line(proc, 'holds no images', str(assets['root'] / 'empty'))


@pytest.mark.slow
def test_checkpoint_of_another_backbone_is_refused(assets, tmp_path):
    out = tmp_path / 'out'
    proc = infer_cli(assets['images'], R50_SLIM, assets['x50'], '--out-dir', out)
    error = assert_one_error_line(proc, assets['x50'], 'does not fit config', 'another shape',
                                  'backbone.layer1.0.conv1.weight', 'pass the config')
    assert '[32, 16, 1, 1] in the checkpoint, [16, 16, 1, 1] in the model' in error
    assert not out.exists()


@pytest.mark.slow
def test_glob_single_file_and_threshold(assets, tmp_path):
    summary = run_inference(str(assets['images'] / '00000[12].jpg'), str(R50_SLIM),
                            assets['r50'], out_dir=str(tmp_path / 'glob'), score_thr=0,
                            device='cpu')
    assert [Path(p).name for p in summary.done] == assets['good'][:2] and not summary.failed
    single = assets['images'] / assets['good'][2]
    summary = run_inference(str(single), str(R50_SLIM), assets['r50'],
                            out_dir=str(tmp_path / 'one'), score_thr=0, device='cpu')
    assert summary.done == [str(single)]
    everything = load_pred(summary.pred_dir, single.stem)
    check_prediction(everything, single)
    assert (Path(summary.vis_dir) / single.name).is_file()
    # the threshold applies to the JSON as to the drawing: the same predictions above it
    thr = float(np.median(everything['scores']))
    summary = run_inference(str(single), str(R50_SLIM), assets['r50'],
                            out_dir=str(tmp_path / 'thr'), score_thr=thr, device='cpu')
    kept = load_pred(summary.pred_dir, single.stem)
    above = [i for i, s in enumerate(everything['scores']) if s > thr]
    assert kept['scores'] == [everything['scores'][i] for i in above]
    assert kept['bboxes'] == [everything['bboxes'][i] for i in above]


def test_mask_rcnn_writes_coco_rle(assets, tmp_path):
    from pycocotools import mask as mask_utils
    config = tmp_path / 'mask_rcnn_r50_slim_demo.py'
    config.write_text(MASK_DEMO_CONFIG)
    checkpoint = save_random_checkpoint(config, tmp_path / 'mask.pth')
    image = assets['images'] / assets['good'][0]
    summary = run_inference(str(image), str(config), checkpoint, out_dir=str(tmp_path / 'out'),
                            score_thr=0, device='cpu')
    pred = load_pred(summary.pred_dir, image.stem)
    check_prediction(pred, image, masks=True)
    assert len(pred['masks']) == len(pred['scores'])
    for rle in pred['masks']:
        assert rle['size'] == [192, 192] and isinstance(rle['counts'], str)
        decoded = mask_utils.decode(dict(size=rle['size'], counts=rle['counts'].encode()))
        assert decoded.shape == (192, 192) and decoded.dtype == np.uint8


def test_fast_config_runs_on_cpu_in_fp32(assets, tmp_path):
    """The *_fast settings (AMP bf16 optimizer, fp16 test loop, channels_last, folded BN) on
    CPU: the same predictions as the plain config with the same checkpoint."""
    image = str(assets['images'] / assets['good'][0])
    plain = run_inference(image, str(X50_SLIM), assets['x50'], out_dir=str(tmp_path / 'plain'),
                          score_thr=0, device='cpu')
    fast = run_inference(image, str(X50_SLIM_FAST), assets['x50'],
                         out_dir=str(tmp_path / 'fast'), score_thr=0, device='cpu',
                         cfg_options={'optim_wrapper.type': 'AmpOptimWrapper',
                                      'optim_wrapper.dtype': 'bfloat16',
                                      'test_cfg.fp16': True})
    stem = Path(image).stem
    a, b = load_pred(plain.pred_dir, stem), load_pred(fast.pred_dir, stem)
    n = min(len(a['scores']), len(b['scores']), 10)
    assert n > 0
    np.testing.assert_allclose(a['scores'][:n], b['scores'][:n], atol=1e-3)
    np.testing.assert_allclose(a['bboxes'][:n], b['bboxes'][:n], atol=0.1)


def test_only_unreadable_images(assets, tmp_path):
    """Nothing predicted, nothing written: the CLI turns this into an error and exit 2."""
    broken = str(assets['images'] / 'broken.jpg')
    summary = run_inference([broken], str(R50_SLIM), assets['r50'],
                            out_dir=str(tmp_path / 'out'), device='cpu')
    assert summary.done == [] and summary.failed == [
        (broken, 'corrupt or not an image: it cannot be decoded')]
    assert not (tmp_path / 'out').exists()


def test_corrupt_checkpoint_is_named(assets, tmp_path):
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(Path(assets['r50']).read_bytes()[:4096])
    with pytest.raises(CheckpointLoadError, match='truncated.pth'):
        run_inference(str(assets['images']), str(R50_SLIM), str(truncated),
                      out_dir=str(tmp_path / 'out'), device='cpu')
    assert not (tmp_path / 'out').exists()


def test_input_errors(assets, tmp_path):
    with pytest.raises(UserInputError, match='no such file or folder'):
        collect_images(str(tmp_path / 'missing'))
    with pytest.raises(UserInputError, match='matches nothing'):
        collect_images(str(tmp_path / '*.jpg'))
    with pytest.raises(UserInputError, match='none an image'):
        collect_images(str(assets['images'] / '*.txt'))
    with pytest.raises(UserInputError, match='config file .* does not exist'):
        run_inference(str(assets['images']), str(tmp_path / 'nope.py'), assets['r50'])
    with pytest.raises(UserInputError, match='checkpoint .* does not exist'):
        run_inference(str(assets['images']), str(R50_SLIM), str(tmp_path / 'nope.pth'))
    # two inputs whose outputs would overwrite each other
    other = tmp_path / 'other'
    other.mkdir()
    shutil.copy(assets['images'] / assets['good'][0], other / assets['good'][0])
    with pytest.raises(UserInputError, match='would write the same outputs'):
        run_inference([str(assets['images'] / assets['good'][0]), str(other / assets['good'][0])],
                      str(R50_SLIM), assets['r50'], out_dir=str(tmp_path / 'out'))


def test_load_state_dict_strict():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    source = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    state = source.state_dict()
    # a DDP prefix, and BN counters old checkpoints lack, are fine; the weights are loaded
    load_state_dict_strict(model, {'state_dict': {f'module.{k}': v for k, v in state.items()
                                                  if not k.endswith('num_batches_tracked')}})
    assert torch.equal(model[0].weight, source[0].weight)
    with pytest.raises(CheckpointMismatchError, match=r'1 of the model.s tensors are missing '
                                                      r'from it \(first: 1\.bias\)'):
        load_state_dict_strict(model, {k: v for k, v in state.items() if k != '1.bias'})
    with pytest.raises(CheckpointMismatchError, match='1 of its tensors have no place'):
        load_state_dict_strict(model, dict(state, extra=torch.zeros(1)))
    # torch's three reports at once, summarised on one line
    bad = dict(state, extra=torch.zeros(1), **{'0.weight': torch.zeros(5, 3, 3, 3)})
    del bad['1.bias']
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(model, bad, 'x.pth', 'cfg.py')
    message = str(info.value)
    assert '\n' not in message and message.startswith('checkpoint x.pth does not fit config cfg.py')
    assert ('1 tensors have another shape (first: 0.weight is [5, 3, 3, 3] in the checkpoint, '
            '[4, 3, 3, 3] in the model); 1 of the model\'s tensors are missing from it (first: '
            '1.bias); 1 of its tensors have no place in the model (first: extra)') in message
    assert 'pass the config it was trained with' in message
    assert 'tools/convert_weights.py' in message
    with pytest.raises(CheckpointMismatchError, match='backbone-only'):
        load_state_dict_strict(model, {'conv1.weight': torch.zeros(1), 'layer1.0.bn1.bias': 0})
    with pytest.raises(CheckpointMismatchError, match='holds a list, not a state dict'):
        load_state_dict_strict(model, [1, 2])


def test_mask_rcnn_json_masks_are_the_predicted_and_drawn_masks(assets, tmp_path):
    """The RLE masks of preds/<stem>.json decode to the model's own masks at the image's size,
    and they are what vis/<name> shows: the drawing differs from the same drawing without
    masks on the masks (and their 1-2 px outlines) only, and from the input inside them."""
    import cv2
    from mmengine.structures import InstanceData
    from pycocotools import mask as mask_utils

    from resnext_det.apis import build_inferencer
    config = tmp_path / 'mask_rcnn_r50_slim_demo.py'
    config.write_text(MASK_DEMO_CONFIG)
    checkpoint = save_random_checkpoint(config, tmp_path / 'mask.pth')
    # a PNG input: the drawing is then written losslessly and compares pixel for pixel
    image = tmp_path / 'input.png'
    original = cv2.imread(str(assets['images'] / assets['good'][0]))  # BGR
    cv2.imwrite(str(image), original)

    inferencer = build_inferencer(str(config), checkpoint, 'cpu')

    def predict():
        return inferencer(str(image), return_datasamples=True, no_save_vis=True,
                          no_save_pred=True)['predictions'][0]

    # a random mask head draws no shapes: its deconvolution's 2x2 kernels print a checkerboard,
    # and its logits sit in a narrow band below 0 (near-empty masks). One weight per input and
    # output channel upsamples as 'nearest' does, and logits centred on each class's median
    # leave about half of each RoI's mask on: blobs that follow the image's features.
    mask_head = inferencer.model.roi_head.mask_head
    mask_head.upsample.weight.data[:] = mask_head.upsample.weight.data.mean((2, 3), keepdim=True)
    conv_logits = mask_head.conv_logits
    logits = []
    hook = conv_logits.register_forward_hook(lambda module, args, out: logits.append(out))
    predict()
    hook.remove()
    conv_logits.bias.data -= logits[0].detach().transpose(0, 1).flatten(1).median(1).values
    torch.save({'state_dict': inferencer.model.state_dict()}, checkpoint)
    sample = predict()
    scores = sample.pred_instances.scores.sort(descending=True).values
    assert len(scores) > 6 and scores[5] < scores[4]
    thr = float(scores[4] + scores[5]) / 2  # keeps the five best detections
    expected = sample.pred_instances[sample.pred_instances.scores > thr]

    summary = run_inference(str(image), str(config), checkpoint, out_dir=str(tmp_path / 'out'),
                            score_thr=thr, device='cpu')
    pred = load_pred(summary.pred_dir, image.stem)
    assert len(pred['masks']) == len(pred['scores']) == 5
    np.testing.assert_allclose(pred['scores'], expected.scores.numpy(), rtol=1e-6)
    masks = np.stack([mask_utils.decode(dict(size=rle['size'], counts=rle['counts'].encode()))
                      for rle in pred['masks']])
    assert masks.shape == (5, *original.shape[:2]) and masks.dtype == np.uint8
    np.testing.assert_array_equal(masks.astype(bool), expected.masks.numpy())
    boxes = np.array(pred['bboxes'])
    box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    # masks of a shape of their own: neither empty nor their whole box
    areas = masks.sum((1, 2))
    assert (areas > 0.2 * box_areas).all() and (areas < 0.8 * box_areas).all()

    drawn = cv2.imread(str(Path(summary.vis_dir) / image.name))  # BGR
    assert drawn.shape == original.shape
    # what the boxes and labels of the drawing cover: the same visualizer draws them alone.
    # mmengine blends the masks into a raster of the figure and then renders the boxes and
    # label boxes over it once more, so there the two drawings differ whatever the masks.
    no_masks = sample.clone()
    no_masks.pred_instances = InstanceData(**{k: v for k, v in sample.pred_instances.items()
                                              if k != 'masks'})
    inferencer.visualizer.add_datasample('boxes', original[:, :, ::-1].copy(), no_masks,
                                         draw_gt=False, pred_score_thr=thr)
    decorated = (inferencer.visualizer.get_image()[:, :, ::-1] != original).any(2)
    union = masks.any(0)
    assert (union & ~decorated).sum() > 0.25 * union.sum()  # not all hidden by the labels
    changed = (drawn != original).any(2)
    assert changed[union].all(), 'a mask of the JSON is not drawn'  # its colour blended in
    # elsewhere only the white outline mmdet draws along each mask's contour (2 pt wide)
    distance = cv2.distanceTransform((~union).astype(np.uint8), cv2.DIST_L2, 5)
    stray = changed & ~decorated & (distance > 3)
    assert not stray.any(), f'{stray.sum()} pixels drawn away from the JSON masks'
