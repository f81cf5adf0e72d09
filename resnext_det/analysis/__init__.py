"""Numbers to set beside the paper's: ``complexity`` counts the classifiers' parameters and
FLOPs next to the paper's tables (``tools/model_stats.py``), and ``results`` reads the reports
that ``tools/train.py`` and ``tools/test.py`` leave in work dirs, for comparing runs
(``tools/compare_results.py``). Nothing here is imported by ``import resnext_det``: import the
submodules themselves.
"""
