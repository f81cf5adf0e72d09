"""Speed measurements behind docs/benchmarks.md: ``detector`` times backbone and Faster R-CNN
train steps and inference of stock MMDetection against this package's plain and fast configs
(``tools/benchmark.py``), and ``coco_eval`` times COCO bbox evaluation with pycocotools and
faster-coco-eval on a synthetic val2017-sized set (``tools/benchmark_eval.py``). Nothing here is
imported by ``import resnext_det``: import the submodules themselves.
"""
