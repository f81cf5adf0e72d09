"""Report code behind docs/benchmarks.md, kept out of the installed package as OpenMMLab keeps
its own in tools/analysis_tools/: ``detector_benchmark`` times backbone and Faster R-CNN train
steps and inference of stock MMDetection against this package's plain and fast configs
(``tools/benchmark.py``), and ``coco_eval_benchmark`` times COCO bbox evaluation with
pycocotools and faster-coco-eval on a synthetic val2017-sized set (``tools/benchmark_eval.py``).
"""
