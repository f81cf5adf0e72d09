"""mmdet's ``CocoMetric`` with faster-coco-eval's C++ ``evaluate``/``accumulate`` in place of
pycocotools' Python ones.

On a val2017-sized result set (``tools/benchmark_eval.py``, docs/benchmarks.md) the 12 summary
stats come out bit-identical to pycocotools' (on small sets they can be 1e-16 apart, see
``benchmarks.coco_eval.compare``) and the evaluation runs 7-8x faster.
Everything else is mmdet's: the ground-truth index, ``loadRes``, the json files under
``outfile_prefix``, the classwise table, the ``proposal``/``proposal_fast`` metrics and the
output keys (``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ...).
"""
import functools
import logging
import types
from typing import Callable, Dict, Optional, Type

from mmdet.evaluation.metrics import coco_metric as mmdet_coco_metric
from mmengine.logging import print_log
from pycocotools.cocoeval import COCOeval as PycocotoolsCOCOeval

from ..registry import METRICS

BACKENDS = ('faster_coco_eval', 'pycocotools')

# The fallback is announced once per process, not once per metric (val and test build one each).
_warned_about_fallback = False
_faster_classes: Dict[Type, Type] = {}


def faster_coco_eval_class() -> Type:
    """A ``COCOeval`` for mmdet's ``CocoMetric`` on faster-coco-eval; ImportError without it.

    It keeps pycocotools' constructor (``cocoGt, cocoDt, iouType``), its console output and its
    ``summarize``: faster-coco-eval's own takes the AP stats at ``maxDets[-1]``, while
    pycocotools takes stats[0] at maxDets=100, and mmdet sets ``maxDets`` to ``proposal_nums``
    (100, 300, 1000), so the two disagree when an image has more than 100 detections.
    """
    from faster_coco_eval import COCOeval_faster

    if COCOeval_faster not in _faster_classes:  # one class per process: compute_metrics caches

        class FasterCOCOeval(COCOeval_faster):

            def __init__(self, cocoGt=None, cocoDt=None, iouType='segm'):
                super().__init__(cocoGt, cocoDt, iouType, print_function=print)

            summarize = PycocotoolsCOCOeval.summarize

        _faster_classes[COCOeval_faster] = FasterCOCOeval
    return _faster_classes[COCOeval_faster]


@functools.lru_cache(maxsize=None)
def mmdet_compute_metrics_with(coco_eval_class: Type) -> Callable:
    """mmdet's ``CocoMetric.compute_metrics``, evaluating with ``coco_eval_class``.

    mmdet has no argument to choose the evaluator: its method reads the module-level name
    ``COCOeval``. This is the same code object bound to a copy of that module's namespace in
    which the name means ``coco_eval_class``, so mmdet's 200-line method is reused as it is
    while mmdet's module, and every other ``CocoMetric``, keep their evaluator.
    """
    mmdet_method = mmdet_coco_metric.CocoMetric.compute_metrics
    namespace = dict(mmdet_method.__globals__, COCOeval=coco_eval_class)
    method = types.FunctionType(mmdet_method.__code__, namespace, mmdet_method.__name__,
                                mmdet_method.__defaults__, mmdet_method.__closure__)
    method.__kwdefaults__ = mmdet_method.__kwdefaults__
    return functools.update_wrapper(method, mmdet_method)


@METRICS.register_module()
class CocoMetric(mmdet_coco_metric.CocoMetric):
    """mmdet's ``CocoMetric`` whose bbox / segm / proposal evaluation runs on faster-coco-eval.

    Args:
        backend (str): ``'faster_coco_eval'`` (default) or ``'pycocotools'`` (mmdet's metric
            unchanged). Without faster-coco-eval installed the metric falls back to pycocotools
            and logs a warning once. With ``use_mp_eval=True`` mmdet's multi-process pycocotools
            evaluator is used, as the user asked.
        *args, **kwargs: those of ``mmdet.evaluation.CocoMetric``.
    """

    def __init__(self, *args, backend: str = 'faster_coco_eval', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        # None: mmdet's own evaluator (pycocotools' COCOeval or COCOevalMP)
        self.coco_eval_class: Optional[Type] = None
        if backend == 'faster_coco_eval' and self.use_mp_eval:
            print_log('CocoMetric: use_mp_eval=True evaluates with multi-process pycocotools, '
                      'not faster_coco_eval', logger='current', level=logging.INFO)
            backend = 'pycocotools'
        if backend == 'faster_coco_eval':
            try:
                self.coco_eval_class = faster_coco_eval_class()
            except ImportError as error:
                _warn_about_fallback(error)
                backend = 'pycocotools'
        self.backend = backend

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.coco_eval_class is None:
            return super().compute_metrics(results)
        return mmdet_compute_metrics_with(self.coco_eval_class)(self, results)


def _warn_about_fallback(error: ImportError) -> None:
    global _warned_about_fallback
    if not _warned_about_fallback:
        _warned_about_fallback = True
        print_log(f'CocoMetric: faster_coco_eval cannot be imported ({error}); evaluating with '
                  'pycocotools, which gives the same numbers, slower. '
                  '`pip install faster-coco-eval` to speed it up.',
                  logger='current', level=logging.WARNING)
