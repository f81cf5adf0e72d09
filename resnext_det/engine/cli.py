"""What tools/train.py and tools/test.py share: loading a config as mmdet's tools do, and
checking the inputs a run needs before any worker starts, so a missing file is one clear line
instead of a traceback from deep inside a dataloader worker."""
import atexit
import datetime
import os
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config, DictAction

from ..errors import UserInputError
from ..utils.safe_load import ALLOW_UNSAFE_ENV


def add_common_args(parser) -> None:
    """The flags tools/train.py and tools/test.py share with mmdet's tools."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (e.g. train_cfg.max_epochs=1)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--allow-unsafe-pickle', action='store_true',
                        help='load checkpoints that need arbitrary code to unpickle (only for '
                        'files you trust; the default loads tensors and plain data only)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_cli(parser, argv=None):
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.allow_unsafe_pickle:  # the environment reaches dataloader workers and ranks too
        os.environ[ALLOW_UNSAFE_ENV] = '1'
    return args


def load_config(path, cfg_options=None, launcher='none', work_dir=None) -> Config:
    """mmdet's config handling: CLI overrides, then work_dir from CLI > config > file name."""
    if not osp.isfile(path):
        raise UserInputError(f'config file {path} does not exist')
    try:
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    except Exception as e:  # mmengine raises many types for a bad config; all are the user's
        raise UserInputError(f'config {path}: {type(e).__name__}: {e}') from None
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def dist_timeout(cfg) -> Optional[datetime.timedelta]:
    """The collective timeout of a distributed run, `env_cfg.dist_cfg.timeout` in seconds (what
    mmengine's `init_dist` takes and converts itself), as the `timedelta` that
    `init_process_group` wants; None when the config sets none (torch's default, 30 min).

    A rank that dies, hangs or is stopped leaves the others waiting in a collective: after this
    long they raise instead of waiting, and the launcher (tools/dist_train.sh) ends the job.
    """
    timeout = ((cfg.get('env_cfg') or {}).get('dist_cfg') or {}).get('timeout')
    if timeout is None or isinstance(timeout, datetime.timedelta):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise UserInputError(f'env_cfg.dist_cfg.timeout={timeout!r}: give the collective timeout '
                             'in seconds, a number > 0 (e.g. 1800)')
    return datetime.timedelta(seconds=timeout)


def _destroy_process_group() -> None:
    # while the interpreter is whole: a gloo group left to its finalization can abort it
    # (SIGABRT, "terminate called without an active exception") after a finished run
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def end_cpu_distributed_run() -> None:
    """End a rank of a finished CPU (gloo) run at once, once every rank is done.

    The gloo group's teardown, whether by ``destroy_process_group`` or the interpreter's exit,
    can abort a rank whose peer has already gone (SIGABRT, "terminate called without an active
    exception"), which turns a finished run into a failed job. So after the last collective a
    barrier makes sure no rank still needs the others, logs and streams are flushed, and the
    process ends without the teardown. A no-op outside such a run (GPU runs: mmengine's)."""
    if not (_OWN_GLOO_GROUP and torch.distributed.is_initialized()):
        return
    import logging
    torch.distributed.barrier()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


_OWN_GLOO_GROUP = False  # set by setup_cpu_distributed: the group is ours to end


def setup_cpu_distributed(cfg) -> None:
    """Let `--launcher pytorch` run on CPU-only machines (tests, CI, laptops).

    mmengine assumes GPUs for distributed runs: it calls `torch.cuda.set_device` and hands
    `device_ids=[LOCAL_RANK]` to DDP, which refuses device ids for CPU modules. On a machine
    without CUDA we start the gloo process group ourselves (mmengine then skips its own init,
    so we pass the configured collective timeout, `env_cfg.dist_cfg.timeout`, ourselves) and ask
    for mmengine's own DDP wrapper with `device_ids=None`: the runner fills `device_ids` only
    when `model_wrapper_cfg` leaves it out.
    """
    if cfg.launcher == 'none':
        return
    timeout = dist_timeout(cfg)  # a bad value is one error line on GPUs too
    if torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise UserInputError(f'--launcher {cfg.launcher} needs GPUs; on CPU use torchrun '
                             '(tools/dist_train.sh, --launcher pytorch)')
    if not torch.distributed.is_initialized():
        kwargs = dict(timeout=timeout) if timeout is not None else {}
        torch.distributed.init_process_group(backend='gloo', **kwargs)
        global _OWN_GLOO_GROUP
        _OWN_GLOO_GROUP = True
        atexit.register(_destroy_process_group)
    cfg.setdefault('model_wrapper_cfg',
                   dict(type='MMDistributedDataParallel', device_ids=None,
                        broadcast_buffers=False,
                        find_unused_parameters=cfg.get('find_unused_parameters', False)))


def _datasets(loader_cfg):
    """The innermost dataset configs of a dataloader (through wrappers like RepeatDataset)."""
    dataset = loader_cfg.get('dataset') if loader_cfg else None
    while dataset is not None and 'dataset' in dataset:
        dataset = dataset['dataset']
    if dataset is not None and 'datasets' in dataset:  # ConcatDataset
        return [d for sub in dataset['datasets'] for d in _datasets(dict(dataset=sub))]
    return [dataset] if dataset is not None else []


def _check_data(cfg, loader_names, evaluator_names, hint):
    for loader_name in loader_names:
        for ds in _datasets(cfg.get(loader_name)):
            root = ds.get('data_root') or ''
            if root and not osp.isdir(root):
                raise UserInputError(f'{loader_name}: data root {root} does not exist. {hint}')
            ann = ds.get('ann_file')
            if ann:
                ann_path = ann if osp.isabs(ann) else osp.join(root, ann)
                if not osp.isfile(ann_path):
                    raise UserInputError(
                        f'{loader_name}: annotation file {ann_path} does not exist. {hint}')
            img_prefix = (ds.get('data_prefix') or {}).get('img')
            if img_prefix is not None:
                img_dir = img_prefix if osp.isabs(img_prefix) else osp.join(root, img_prefix)
                if not osp.isdir(img_dir):
                    raise UserInputError(
                        f'{loader_name}: image folder {img_dir} does not exist. {hint}')
    for name in evaluator_names:
        evaluator = cfg.get(name)
        for metric in evaluator if isinstance(evaluator, list) else [evaluator]:
            ann = metric.get('ann_file') if metric else None
            if ann and not osp.isfile(ann):
                raise UserInputError(f'{name}: annotation file {ann} does not exist. {hint}')


def _check_backbone(cfg):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    backbone = cfg.get('model', {}).get('backbone')
    if not backbone or MODELS.get(backbone['type']) is not None:
        return
    import mmdet.models.backbones as mmdet_backbones

    from ..registry import MODELS as OUR_MODELS
    ours = sorted(f'resnext_det.{name}' for name in OUR_MODELS.module_dict)
    raise UserInputError(
        f"model.backbone.type={backbone['type']!r} is not a registered backbone. "
        f"Registered: {', '.join(ours)} (this package); "
        f"{', '.join(sorted(mmdet_backbones.__all__))} (mmdet)")


def _pretrained_paths(cfg):
    init_cfgs = cfg.get('model', {}).get('backbone', {}).get('init_cfg')
    for init_cfg in init_cfgs if isinstance(init_cfgs, list) else [init_cfgs]:
        if init_cfg and init_cfg.get('type') == 'Pretrained':
            yield init_cfg.get('checkpoint')


def check_inputs(cfg, mode='train'):
    """Raise UserInputError naming the first missing input of a train or test run."""
    data_hint = ('Get COCO 2017 into data/coco/ (docs/reproduce.md), point the config at your '
                 'data with --cfg-options, or generate the demo set: '
                 'python tools/make_demo_data.py')
    if mode == 'train':
        _check_data(cfg, ['train_dataloader', 'val_dataloader'], ['val_evaluator'], data_hint)
    else:
        _check_data(cfg, ['test_dataloader'], ['test_evaluator'], data_hint)
    _check_backbone(cfg)
    if mode == 'train' and not cfg.get('load_from') and not cfg.get('resume'):
        for path in _pretrained_paths(cfg):
            if path and '://' not in path and not osp.isfile(path):
                raise UserInputError(
                    f'model.backbone.init_cfg: pretrained checkpoint {path} does not exist. '
                    'Pretrain one (tools/train.py configs/imagenet/...) and export it '
                    '(tools/export_backbone.py), convert one (tools/convert_weights.py), or '
                    'train from scratch with --cfg-options model.backbone.init_cfg=None')
    if cfg.get('load_from') and not osp.isfile(cfg.load_from) and '://' not in cfg.load_from:
        raise UserInputError(f'checkpoint {cfg.load_from} does not exist')
    if (mode == 'train' and cfg.get('optim_wrapper', {}).get('type') == 'AmpOptimWrapper'
            and not torch.cuda.is_available()):
        raise UserInputError(
            'mixed precision (optim_wrapper.type=AmpOptimWrapper, from --amp or a *_fast config) '
            'needs a GPU: mmengine runs AMP on CUDA only. On CPU train the plain config (the '
            'same model); channels_last and BN folding still apply with --cfg-options '
            'model.backbone.channels_last=True model.backbone.fold_frozen_bn=True')

