"""Evaluate a checkpoint with the config's COCO metric (bbox AP, AP@0.5, AP@0.75, S/M/L; segm).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show] [--show-dir DIR] [--cfg-options k=v ...] [--launcher ...]

Metrics are also written to WORK_DIR/test_results.json, which tools/compare_results.py reads.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import json
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import resnext_det.runtime  # noqa: F401  (tensor-only checkpoint loading)
from resnext_det.engine import (
    add_common_args,
    check_inputs,
    end_cpu_distributed_run,
    load_config,
    parse_cli,
    setup_cpu_distributed,
)
from resnext_det.engine.collective import exit_on_collective_failure
from resnext_det.errors import UserInputError, user_errors
from resnext_det.utils.atomic import atomic_write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where test_results.json and logs are written')
    parser.add_argument('--out', help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save images with predictions drawn, under '
                        'work_dir/TIMESTAMP/SHOW_DIR')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    add_common_args(parser)
    return parse_cli(parser, argv)


def test(args) -> None:
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if not osp.isfile(args.checkpoint):
        raise UserInputError(f'checkpoint {args.checkpoint} does not exist')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise UserInputError(f'--out {args.out}: the dump file must end in .pkl')
    cfg.load_from = args.checkpoint
    check_inputs(cfg, 'test')
    setup_cpu_distributed(cfg)
    if args.show or args.show_dir:
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        cfg = trigger_visualization_hook(cfg, args)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.out is not None:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    try:
        metrics = runner.test()
    except RuntimeError as e:
        # another rank died, hung or was stopped: this one gave up in a collective
        exit_on_collective_failure(e, 'evaluation')
        raise
    if is_main_process():
        path = osp.join(cfg.work_dir, 'test_results.json')
        atomic_write(path, json.dumps(dict(config=args.config, checkpoint=args.checkpoint,
                                           metrics={k: float(v) for k, v in metrics.items()}),
                                      indent=2))
        print(f'metrics written to {path}')


def main(argv=None):
    args = parse_args(argv)
    with user_errors():
        test(args)
    end_cpu_distributed_run()  # a 2-process CPU run: ends without the gloo teardown


if __name__ == '__main__':
    main()
