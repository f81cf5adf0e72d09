"""Report code behind docs/benchmarks.md, kept out of the installed package as OpenMMLab keeps
its own in tools/analysis_tools/: ``detector_benchmark`` times backbone and Faster R-CNN train
steps and inference of stock MMDetection against this package's plain and fast configs
(``tools/benchmark.py``), ``coco_eval_benchmark`` times COCO bbox evaluation with
pycocotools and faster-coco-eval on a synthetic val2017-sized set (``tools/benchmark_eval.py``),
``input_pipeline_benchmark`` the classification and detection input pipelines per CPU core
(``tools/benchmark_input.py``), and ``dataset_scale_benchmark`` the construction time and
memory of ImageNet- and COCO-sized datasets (``tools/benchmark_datasets.py``).
"""
import json
import os
import os.path as osp
import sys


def fill_unset(args, values: dict) -> None:
    """Set each of ``values`` on ``args`` where the command line left it None: a preset's sizes,
    with the flags given explicitly winning."""
    for key, value in values.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def log_stderr(msg: str) -> None:
    """The benchmarks' progress lines: on stderr, so that stdout holds only the report."""
    print(msg, file=sys.stderr, flush=True)


def command_line(script: str, argv=None) -> str:
    """The command that reproduces a run, for its report."""
    return ' '.join(['python', script, *(sys.argv[1:] if argv is None else argv)])


def proc_kib(path: str, keys) -> dict:
    """``{key: KiB}`` of the ``key:`` lines of a /proc file (``/proc/self/status``'s VmRSS and
    VmHWM, ``smaps_rollup``'s Rss, Pss, ...): from /proc, not ``ru_maxrss``, which survives exec,
    so a spawned child would report its parent's peak when that was higher."""
    values = {}
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in keys:
                values[key] = int(rest.split()[0])
    return values


def write_report(out: str, report: dict, table: str, md: str = None) -> None:
    """What every benchmark CLI writes: ``report`` as JSON to ``out`` (its folder made), the
    markdown ``table`` to ``md`` if given, and a line naming both."""
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=1)
    if md:
        with open(md, 'w') as f:
            f.write(table + '\n')
    print(f'\nwritten: {out}' + (f', {md}' if md else ''))
