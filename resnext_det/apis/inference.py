"""Predictions on your own images: mmdet's ``DetInferencer`` with the checks a user needs.

:func:`run_inference` writes the drawings (``OUT_DIR/vis``) and one JSON per image
(``OUT_DIR/preds``); :class:`CheckedDetInferencer` loads the checkpoint strictly. The output
format and what is added to mmdet's inferencer: docs/inference.md.
"""
import copy
import glob
import logging
import os
import os.path as osp
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import mmcv
import mmengine
import torch
from mmdet.apis import DetInferencer
from mmdet.apis.det_inferencer import IMG_EXTENSIONS  # what DetInferencer takes from a folder
from mmengine.logging import MMLogger

from ..engine.cli import load_config
from ..errors import CheckpointMismatchError, UserInputError, first_few

_GLOB_CHARS = ('*', '?', '[')

__all__ = [
    'IMG_EXTENSIONS', 'CheckedDetInferencer', 'CheckpointMismatchError', 'InferenceSummary',
    'build_inferencer', 'collect_images', 'load_state_dict_strict', 'read_image', 'resolve_device',
    'run_inference'
]


@dataclass
class InferenceSummary:
    """What :func:`run_inference` did: the images predicted, those skipped (path, reason), and
    where the outputs are."""
    done: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)
    vis_dir: str = ''
    pred_dir: str = ''


def _is_image_name(path: str) -> bool:
    return path.lower().endswith(IMG_EXTENSIONS)


def collect_images(spec: str) -> List[str]:
    """The images ``spec`` names: a file (taken as it is), a folder (its image files, sorted, not
    recursive) or a glob pattern (``**`` recurses; the matching image files, sorted).

    Raises:
        UserInputError: nothing there, an empty folder, a pattern matching no image file.
    """
    exts = ', '.join(IMG_EXTENSIONS)
    if osp.isfile(spec):
        return [spec]
    if osp.isdir(spec):
        images = sorted(osp.join(spec, name) for name in os.listdir(spec)
                        if _is_image_name(name) and osp.isfile(osp.join(spec, name)))
        if not images:
            raise UserInputError(f'folder {spec} holds no images ({exts})')
        return images
    if any(c in spec for c in _GLOB_CHARS):
        matches = [p for p in glob.glob(spec, recursive=True) if osp.isfile(p)]
        images = sorted(p for p in matches if _is_image_name(p))
        if not images:
            found = f'{len(matches)} files, none an image ({exts})' if matches else 'nothing'
            raise UserInputError(f'pattern {spec} matches {found}')
        return images
    raise UserInputError(f'{spec}: no such file or folder (IMAGES is an image file, a folder of '
                         'images or a glob pattern such as "photos/*.jpg")')


def read_image(path: str):
    """Decode ``path`` as mmdet's ``LoadImageFromFile`` does (mmcv, BGR).

    Raises:
        ValueError: the file cannot be read or is not a decodable image; the message says why.
    """
    try:
        content = mmengine.fileio.get(path)
    except OSError as e:
        raise ValueError(f'cannot be read: {e.strerror or e}') from None
    if not content:
        raise ValueError('empty file')
    try:
        img = mmcv.imfrombytes(content)
    except Exception:  # cv2/pillow/turbojpeg raise their own types for bytes they cannot decode
        img = None
    if img is None or img.size == 0:
        raise ValueError('corrupt or not an image: it cannot be decoded')
    return img


def resolve_device(device: Optional[str]) -> str:
    """``None``: CUDA when torch sees a GPU, else the CPU. Refuses a device that is not there,
    or CUDA when mmcv's ops were built without it (RoIAlign would fail mid-run)."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise UserInputError(f'--device {device}: torch sees no CUDA GPU here; use '
                                 '--device cpu')
        try:
            from mmcv.ops import get_compiling_cuda_version
            cuda_ops = get_compiling_cuda_version() not in ('not available', '', None)
        except Exception:
            cuda_ops = False
        if not cuda_ops:
            raise UserInputError(f'--device {device}: mmcv was built without CUDA ops (RoIAlign '
                                 'and NMS would fail on the GPU); rebuild it on a machine with '
                                 'nvcc (make install) or use --device cpu')
    elif device != 'cpu':
        raise UserInputError(f'--device {device}: expected cpu, cuda or cuda:N')
    return device


# what torch's strict load_state_dict reports (torch/nn/modules/module.py)
_KEYS_RE = re.compile(r'(Missing|Unexpected) key\(s\) in state_dict: (.*?)\.\s*$', re.M)
_SIZE_RE = re.compile(r'size mismatch for (\S+): copying a param with shape torch\.Size\((.*?)\) '
                      r'from checkpoint, the shape in current model is torch\.Size\((.*?)\)')


def _mismatch_message(error: RuntimeError, state_dict: dict, checkpoint_path: str,
                      config_path: str) -> str:
    """torch's strict-load error as one line: the first mismatches and what to do."""
    text = str(error)
    keys = {kind: re.findall(r'"([^"]+)"', names) for kind, names in _KEYS_RE.findall(text)}
    missing, unexpected = keys.get('Missing', []), keys.get('Unexpected', [])
    sizes = [f'{k} is {ckpt} in the checkpoint, {model} in the model'
             for k, ckpt, model in _SIZE_RE.findall(text)]
    head = f'checkpoint {checkpoint_path} does not fit config {config_path}'
    if unexpected and len(unexpected) == len(state_dict):
        backbone_only = any(k.startswith(('conv1.', 'layer1.', 'stem.')) for k in state_dict)
        hint = (' It looks like a backbone-only checkpoint (an ImageNet export, or weights '
                'converted with tools/convert_weights.py): that goes into '
                'model.backbone.init_cfg to train a detector (tools/train.py); predict with the '
                'trained detector\'s checkpoint.'
                if backbone_only else ' Pass a detector checkpoint trained with this config.')
        return (f'{head}: none of its {len(state_dict)} tensors is a tensor of this model '
                f'(first: {first_few(sorted(state_dict))}).{hint}')
    problems = []
    if sizes:
        problems.append(f'{len(sizes)} tensors have another shape (first: {sizes[0]})')
    if missing:
        problems.append(f'{len(missing)} of the model\'s tensors are missing from it '
                        f'(first: {first_few(missing)})')
    if unexpected:
        problems.append(f'{len(unexpected)} of its tensors have no place in the model '
                        f'(first: {first_few(unexpected)})')
    if not problems:  # a report torch words otherwise: pass it on, on one line
        problems.append(' '.join(text.split()))
    return (f'{head}: {"; ".join(problems)}. It was trained with another architecture (backbone '
            'depth, groups or width, neck/head sizes, number of classes): pass the config it was '
            'trained with, or a checkpoint trained with this config (for weights of another '
            'codebase, convert them with tools/convert_weights.py).')


def load_state_dict_strict(model: torch.nn.Module, checkpoint,
                           checkpoint_path: str = 'checkpoint',
                           config_path: str = 'the config') -> None:
    """Load ``checkpoint`` (a state dict, or a dict holding one under ``state_dict``) into
    ``model`` with torch's strict ``load_state_dict``, after stripping a DDP ``module.`` prefix
    as mmengine does.

    Raises:
        CheckpointMismatchError: not a state dict, or torch's error (tensors of another shape,
            model tensors it lacks, tensors the model has no place for) as one line naming the
            first mismatches and what to do.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint_path} holds a {type(checkpoint).__name__}, not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(f'checkpoint {checkpoint_path}: its state_dict is a '
                                      f'{type(state_dict).__name__}, not a dict of tensors')
    # a plain dict, without torch's per-module versions: BN then fills in the
    # num_batches_tracked that old checkpoints lack (unused at inference)
    stripped = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    try:
        model.load_state_dict(stripped, strict=True)
    except RuntimeError as e:
        raise CheckpointMismatchError(
            _mismatch_message(e, stripped, checkpoint_path, config_path)) from None


class CheckedDetInferencer(DetInferencer):
    """mmdet's ``DetInferencer`` that loads the checkpoint strictly (:func:`load_state_dict_strict`:
    one that does not fit the config is refused) and takes class names from the config's test
    dataset when the checkpoint has none; everything else is mmdet's."""

    def __init__(self, *args, checkpoint_path: str = 'checkpoint',
                 config_path: str = 'the config', **kwargs) -> None:
        # read by _load_weights_to_model, which DetInferencer.__init__ calls
        self.checkpoint_path, self.config_path = checkpoint_path, config_path
        super().__init__(*args, **kwargs)

    def _load_weights_to_model(self, model, checkpoint, cfg) -> None:
        if checkpoint is not None:
            # mmdet then loads the same tensors again (non-strict, now silent) and reads the meta
            load_state_dict_strict(model, checkpoint, self.checkpoint_path, self.config_path)
            meta = checkpoint.setdefault('meta', {})
            if 'dataset_meta' not in meta and 'CLASSES' not in meta:
                classes = _config_classes(cfg)
                if classes:
                    meta['dataset_meta'] = dict(classes=classes)
        super()._load_weights_to_model(model, checkpoint, cfg)


def _config_classes(cfg) -> Optional[tuple]:
    """The class names of the config's test dataset (its metainfo, or its class's METAINFO)."""
    from mmdet.registry import DATASETS
    try:
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        dataset_cfg['lazy_init'] = True
        classes = DATASETS.build(dataset_cfg).metainfo.get('classes')
    except Exception:  # the class names are a nicety; mmdet's fallback then applies
        return None
    return tuple(classes) if classes else None


class _DropRegistryScopeWarning(logging.Filter):
    """mmengine warns on every DetInferencer that mmdet has no 'function' registry (it looks up
    the collate function there, then uses mmengine's, correctly): noise for the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'Failed to search registry with scope' not in record.getMessage()


def build_inferencer(config: str, checkpoint: str, device: Optional[str] = None,
                     cfg_options: Optional[dict] = None):
    """An mmdet ``DetInferencer`` for ``config`` with the weights of ``checkpoint``, loaded
    strictly, in eval mode on ``device`` (default: CUDA if available).

    Raises:
        UserInputError: missing config or checkpoint, a config without a test pipeline, a
            device that is not there; CheckpointMismatchError (a UserInputError) for weights
            that do not fit.
        CheckpointLoadError: a corrupt checkpoint, or one that would run code to unpickle
            (without ``--allow-unsafe-pickle``).
    """
    cfg = load_config(config, cfg_options)
    if not osp.isfile(checkpoint):
        raise UserInputError(f'checkpoint {checkpoint} does not exist')
    if not cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline'):
        raise UserInputError(f'config {config} has no test_dataloader.dataset.pipeline: the '
                             'inferencer prepares images with the test pipeline')
    device = resolve_device(device)
    # no init_cfg: the checkpoint has every weight, and a Pretrained file need not be there
    cfg.model.get('backbone', {}).pop('init_cfg', None)
    logger = MMLogger.get_current_instance()
    quiet = _DropRegistryScopeWarning()
    logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            # the config's visualizer has a LocalVisBackend without save_dir: unused here
            warnings.filterwarnings('ignore', message='Failed to add <class')
            warnings.filterwarnings('ignore', message='palette does not exist')
            return CheckedDetInferencer(model=cfg, weights=checkpoint, device=device,
                                        show_progress=False, checkpoint_path=checkpoint,
                                        config_path=config)
    finally:
        logger.removeFilter(quiet)


def _check_unique_stems(images: Sequence[str]) -> None:
    seen = {}
    for path in images:
        stem = osp.splitext(osp.basename(path))[0]
        if stem in seen:
            raise UserInputError(
                f'{seen[stem]} and {path} would write the same outputs (vis/{stem}.*, '
                f'preds/{stem}.json): run them separately, or with separate --out-dir')
        seen[stem] = path


def _prediction_json(inferencer, sample, image: str, score_thr: float) -> dict:
    instances = sample.pred_instances
    sample.pred_instances = instances[instances.scores > score_thr]  # as the drawing does
    result = inferencer.pred2dict(sample)  # labels, scores, bboxes, masks as COCO RLE
    classes = inferencer.model.dataset_meta.get('classes') or ()
    names = [classes[i] if 0 <= i < len(classes) else str(i) for i in result.get('labels', [])]
    height, width = sample.metainfo['ori_shape'][:2]
    out = dict(image=image, height=int(height), width=int(width))
    out['labels'] = result.get('labels', [])
    out['label_names'] = names
    out.update((k, v) for k, v in result.items() if k != 'labels')
    return out


def run_inference(images, config: str, checkpoint: str, out_dir: str = 'work_dirs/infer',
                  score_thr: float = 0.3, device: Optional[str] = None, batch_size: int = 1,
                  cfg_options: Optional[dict] = None,
                  progress: Optional[Callable[[int, int, str, int], None]] = None,
                  ) -> InferenceSummary:
    """Predict on ``images`` (a path, folder or glob pattern; or a list of paths) and write the
    drawings and JSON files under ``out_dir`` (the format: docs/inference.md).

    Images that cannot be decoded are skipped and listed in the summary's ``failed``; the
    others are predicted. ``progress(i, n, path, num_detections)`` is called after each image
    predicted (``i``: its place among the ``n`` inputs, skipped ones included).

    Raises:
        UserInputError: no images (missing path, empty folder, pattern matching nothing), a bad
            argument, or any error of :func:`build_inferencer`; nothing is written then.
        CheckpointLoadError: see :func:`build_inferencer`.
    """
    if batch_size < 1:
        raise UserInputError(f'--batch-size {batch_size}: must be at least 1')
    if not 0 <= score_thr <= 1:
        raise UserInputError(f'--score-thr {score_thr}: must be between 0 and 1')
    paths = collect_images(images) if isinstance(images, str) else list(images)
    if not paths:
        raise UserInputError('no images given')
    _check_unique_stems(paths)
    inferencer = build_inferencer(config, checkpoint, device, cfg_options)

    summary = InferenceSummary(vis_dir=osp.join(out_dir, 'vis'),
                               pred_dir=osp.join(out_dir, 'preds'))
    for start in range(0, len(paths), batch_size):
        # decode each image first (once more than the pipeline does): one that cannot be is
        # skipped and reported instead of stopping the run from inside the pipeline
        chunk, numbers = [], []
        for number, path in enumerate(paths[start:start + batch_size], start + 1):
            try:
                read_image(path)
            except ValueError as e:
                summary.failed.append((path, str(e)))
            else:
                chunk.append(path)
                numbers.append(number)
        if not chunk:
            continue
        os.makedirs(summary.pred_dir, exist_ok=True)
        with warnings.catch_warnings():
            # mmengine's visualizer on a box or mask reaching past the image: it is clipped
            warnings.filterwarnings('ignore', message=r'Warning: The \w+ is out of bounds')
            # mmdet's visualizer hands torch tensors to np.clip (numpy 2 deprecation)
            warnings.filterwarnings('ignore', message='__array_wrap__ must accept context',
                                    category=DeprecationWarning)
            results = inferencer(chunk, batch_size=batch_size, out_dir=out_dir,
                                 pred_score_thr=score_thr, return_datasamples=True,
                                 no_save_pred=True)
        for number, path, sample in zip(numbers, chunk, results['predictions']):
            pred = _prediction_json(inferencer, sample, path, score_thr)
            stem = osp.splitext(osp.basename(path))[0]
            mmengine.dump(pred, osp.join(summary.pred_dir, f'{stem}.json'))
            summary.done.append(path)
            if progress is not None:
                progress(number, len(paths), path, len(pred['scores']))
    return summary
