"""Time stock MMDetection against resnext_det: backbone, Faster and Mask R-CNN, train and inference.

    python tools/benchmark.py [--device cuda] [--archs x101_32x4d r101 mask_x101_32x4d mask_r101]
                              [--parts backbone detector] [--modes train infer] [--isolate]
                              [--batch 2] [--size 800 1216] [--iters 10] [--warmup 3] [--compile]
                              [--out work_dirs/benchmark/DEVICE.json] [--md FILE.md]
                              [--profile [--profile-steps 3] [--profile-trace DIR]]
    python tools/benchmark.py --ci        # CI size: depth 50, batch 1, 224x320, 3 steps
    python tools/benchmark.py --cpu-full  # real size on CPU: time and peak RSS of a train step

Prints a markdown table (median ms per train step, images/s, speed-ups against stock fp32,
X-101/R-101 step ratios, peak GPU memory; with --isolate the peak resident set of each variant's
own process) and writes everything, raw times included, as JSON. docs/benchmarks.md records the
measured tables.

--cpu-full: Faster R-CNN and Mask R-CNN X-101-32x4d FPN, stock mmdet against ours, fp32, batch 2
of 800x1333 (mmdet's 1333x800 resize of a COCO image, landscape), the detector's train step
only, each variant in its own process (--isolate) for a clean peak RSS, 1 warm-up + 2 timed
steps: a step at this size takes minutes on 2 cores (75-160 s, about 23 min for the whole
preset on a shared machine), the first step is the slowest, and the interleaving keeps the
stock/ours ratio when the load drifts. Any flag given explicitly wins over the preset's.

--profile: after each detector case's timed steps, a few more steps of every variant under
torch.profiler (analysis_tools/step_profile.py), the timings untouched: a table per
architecture and case of the ms per step in each stage (data preprocessor, backbone, neck, RPN
head, RoI head, backward, optimizer step, the rest), on a GPU also how much of the step the GPU
was busy; the JSON gets them, and each case's top ops, under 'profile'.
"""
import quiet_third_party  # noqa: F401  (first: silences third-party import noise)

import argparse
import os.path as osp
import time

import torch
from analysis_tools import command_line, fill_unset, log_stderr, write_report
from analysis_tools.detector_benchmark import ARCHS, markdown, run, summarize, to_json
from analysis_tools.step_profile import StepProfiler, markdown as profile_markdown

from resnext_det.utils.collect_env import collect_env, cpu_name

# the repository's configs/, found from this file (the package is not told where it lives)
CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


# the Faster R-CNN pair by default, as the documented runs were made; Mask R-CNN on request
DEFAULT_ARCHS = ['x101_32x4d', 'r101']
PRESETS = dict(
    ci=dict(depth=50, batch=1, size=[224, 320], warmup=2, iters=3),
    cpu_full=dict(device='cpu', archs=['x101_32x4d', 'mask_x101_32x4d'], parts=['detector'],
                  modes=['train'], variants=['stock', 'ours'], isolate=True, batch=2,
                  size=[800, 1333], warmup=1, iters=2),
    default=dict(archs=DEFAULT_ARCHS, parts=['backbone', 'detector'], modes=['train', 'infer'],
                 batch=2, size=[800, 1216], warmup=3, iters=10))


def config_paths(arch):
    """(stock, ours, fast) for ``arch``: mmdet's by its ``mmdet::`` name, ours as paths; fast
    is None while the repository has no such config (that architecture then has no fast
    variant)."""
    stock, ours, fast = ARCHS[arch]
    fast = osp.join(CONFIGS, fast)
    return stock, osp.join(CONFIGS, ours), fast if osp.isfile(fast) else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        help='(cuda where torch sees one, else cpu)')
    parser.add_argument('--archs', nargs='+', choices=list(ARCHS),
                        help=f"({' '.join(DEFAULT_ARCHS)})")
    parser.add_argument('--parts', nargs='+', choices=['backbone', 'detector'],
                        help='(backbone detector)')
    parser.add_argument('--modes', nargs='+', choices=['train', 'infer'],
                        help='train steps, inference or both (both)')
    parser.add_argument('--variants', nargs='+', metavar='NAME',
                        help="only these variants ('stock', 'stock --amp', 'ours', 'fast', "
                        "'fast fp16')")
    parser.add_argument('--isolate', action='store_true', default=None,
                        help='each variant in a fresh process of its own, stepped interleaved '
                        "from this one: adds each train case's peak resident set (RSS)")
    parser.add_argument('--batch', type=int, help='images per step (2)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'), help='(800 1216)')
    parser.add_argument('--depth', type=int, choices=[50, 101],
                        help='override the depth of every variant (50: X-50-32x4d and R-50)')
    parser.add_argument('--iters', type=int, help='timed steps per case (10)')
    parser.add_argument('--warmup', type=int, help='untimed steps first (3)')
    parser.add_argument('--compile', action='store_true',
                        help="add 'fast compiled': the fast path with torch.compile(backbone)")
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument('--ci', action='store_true',
                        help='CI size: depth 50, batch 1, 224x320, 2 warm-up + 3 steps')
    preset.add_argument('--cpu-full', action='store_true',
                        help='real size on CPU: Faster and Mask R-CNN X-101-32x4d, stock and '
                        'ours, batch 2 of 800x1333, train step time and peak RSS, --isolate, '
                        '1 warm-up + 2 steps')
    parser.add_argument('--profile', action='store_true',
                        help='after the timed steps, profile a few more of each detector case '
                        '(torch.profiler, ranges per stage): ms per stage, GPU busy share, top '
                        'ops; in this process only, so not with --isolate (--cpu-full: '
                        'turns its --isolate off)')
    parser.add_argument('--profile-steps', type=int, default=3, metavar='N',
                        help='profiled steps per case, after 1 with the ranges in (3)')
    parser.add_argument('--profile-trace', metavar='DIR',
                        help='with --profile: also a Chrome trace per case in DIR')
    parser.add_argument('--out', help='JSON file (default work_dirs/benchmark/<device>.json)')
    parser.add_argument('--md', help='also write the markdown table here')
    args = parser.parse_args(argv)
    if args.profile and args.isolate:
        parser.error('--profile profiles the models in this process and cannot reach the worker '
                     'processes of --isolate: drop --isolate (it measures the peak RSS), or run '
                     'the two separately')
    if args.profile_trace and not args.profile:
        parser.error('--profile-trace needs --profile')
    if args.profile:
        args.isolate = False  # explicit flags win over the preset: --cpu-full's isolate off
    # explicit flags win over the preset, the preset over the defaults
    chosen = PRESETS['ci'] if args.ci else PRESETS['cpu_full'] if args.cpu_full else {}
    fill_unset(args, {**PRESETS['default'], **chosen})
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    args.isolate = bool(args.isolate)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is visible to torch')
    if min(args.batch, args.iters, args.profile_steps, *args.size) < 1 or args.warmup < 0:
        parser.error('--batch, --size, --iters and --profile-steps must be >= 1, --warmup >= 0')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = args.size
    configs = {arch: config_paths(arch) for arch in args.archs}
    profiler = (StepProfiler(args.device, args.profile_steps, trace_dir=args.profile_trace,
                             log=log_stderr) if args.profile else None)
    start = time.perf_counter()
    results = run(configs, args.parts, args.device, args.batch, height, width, args.depth,
                  args.warmup, args.iters, args.variants, args.compile, log=log_stderr,
                  isolate=args.isolate, modes=args.modes, profiler=profiler)
    wall_s = time.perf_counter() - start
    summary = summarize(results, args.batch)
    device = (torch.cuda.get_device_name() if args.device == 'cuda'
              else f'{cpu_name()} CPU, {torch.get_num_threads()} threads')
    # the versions a reader needs to compare runs (docs/benchmarks/<gpu>.json keeps them)
    settings = dict(vars(args), device_name=device, torch=torch.__version__, wall_s=wall_s,
                    environment={k: v if isinstance(v, (bool, int, float)) else str(v)
                                 for k, v in collect_env().items()},
                    command=command_line('tools/benchmark.py', argv))
    table = markdown(summary)
    isolated = '; each variant in its own process' if args.isolate else ''
    print(f"{device}; batch {args.batch}, {height}x{width}, median of {args.iters} steps after "
          f"{args.warmup} warm-up; depth {args.depth or 'as configured'}{isolated}; "
          f"wall time {wall_s:.0f} s\n\n{table}")
    report = to_json(results, summary, settings)
    if profiler is not None:
        profile = profile_markdown(profiler.reports) or 'Profile: no detector case was run.'
        print(f'\n{profile}')
        table += f'\n\n{profile}'
        report['profile'] = profiler.reports
    out = args.out or osp.join('work_dirs', 'benchmark', f'{args.device}.json')
    write_report(out, report, table, args.md)


if __name__ == '__main__':
    main()
