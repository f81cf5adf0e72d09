"""Report code behind docs/benchmarks.md, kept out of the installed package as OpenMMLab keeps
its own in tools/analysis_tools/: ``detector_benchmark`` times backbone and Faster R-CNN train
steps and inference of stock MMDetection against this package's plain and fast configs
(``tools/benchmark.py``), ``coco_eval_benchmark`` times COCO bbox evaluation with
pycocotools and faster-coco-eval on a synthetic val2017-sized set (``tools/benchmark_eval.py``),
``input_pipeline_benchmark`` the classification and detection input pipelines per CPU core
(``tools/benchmark_input.py``), and ``dataset_scale_benchmark`` the construction time and
memory of ImageNet- and COCO-sized datasets (``tools/benchmark_datasets.py``).
"""
