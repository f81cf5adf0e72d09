"""Train a detector (or the companion classifier) from a config, with mmdet's tools/train.py flags.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr] [--resume [CKPT]]
                                 [--clip-grad MAX_NORM] [--allow-unsafe-pickle]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import errno

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import resnext_det.runtime  # noqa: F401  (atomic checkpoint backend, tensor-only loading)
from resnext_det.engine import (
    add_common_args,
    check_inputs,
    end_cpu_distributed_run,
    latest_complete_checkpoint,
    load_config,
    parse_cli,
    setup_cpu_distributed,
)
from resnext_det.engine.collective import exit_on_collective_failure
from resnext_det.engine.startup import rollback_unless_started
from resnext_det.errors import UserInputError, user_errors

TENSOR_ONLY_HOOK = 'resnext_det.TensorOnlyCheckpointHook'
# a full disk, a quota, a read-only or unwritable work dir: stop with one line, not a traceback
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (fp16)')
    parser.add_argument('--clip-grad', type=float, metavar='MAX_NORM',
                        help='clip the gradients\' global L2 norm to MAX_NORM (e.g. 35)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by (GPUs x batch per GPU) / '
                        'auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a path from the latest complete one in '
        'work_dir')
    add_common_args(parser)
    return parse_cli(parser, argv)


def build_train_config(args):
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.clip_grad is not None:
        if args.clip_grad <= 0:
            raise UserInputError(f'--clip-grad {args.clip_grad}: the max norm must be > 0')
        cfg.optim_wrapper.clip_grad = dict(max_norm=args.clip_grad, norm_type=2)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise UserInputError(f'--auto-scale-lr: {args.config} has no '
                                 'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        # the newest complete checkpoint: a file cut short by a kill is skipped; none found
        # means a fresh start, as with mmdet
        cfg.load_from = latest_complete_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    check_inputs(cfg, 'train')
    setup_cpu_distributed(cfg)
    # a config that overrides custom_hooks must still write checkpoints that resume
    # tensor-only; without the hook they would need --allow-unsafe-pickle
    hooks = cfg.setdefault('custom_hooks', [])
    if not any(h.get('type') in (TENSOR_ONLY_HOOK, 'TensorOnlyCheckpointHook') for h in hooks):
        hooks.append(dict(type=TENSOR_ONLY_HOOK))
    return cfg


def train(args) -> None:
    cfg = build_train_config(args)
    try:
        # a config that fails before the first iteration leaves the work dir as it was
        with rollback_unless_started(cfg.work_dir) as started:
            runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
            runner.register_hook(started)
            runner.train()
    except RuntimeError as e:
        # another rank died, hung or was stopped: this one gave up in a collective
        exit_on_collective_failure(e, 'training')
        raise
    except OSError as e:
        if e.errno not in WRITE_ERRORS:
            raise
        last = latest_complete_checkpoint(cfg.work_dir)
        kept = f'the last complete checkpoint, {last}, is intact' if last else 'no checkpoint yet'
        raise UserInputError(f'cannot write {e.filename}: {e.strerror}. Training stopped; {kept}. '
                             'Free space (or fix the folder\'s permissions), then rerun with '
                             '--resume') from None


def main(argv=None):
    args = parse_args(argv)
    with user_errors():
        train(args)
    end_cpu_distributed_run()  # a 2-process CPU run: ends without the gloo teardown


if __name__ == '__main__':
    main()
