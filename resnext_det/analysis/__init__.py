"""Numbers to set beside the paper's: ``complexity`` counts the classifiers' parameters and
FLOPs next to the paper's tables (``tools/model_stats.py``), and ``results`` reads the reports
that ``tools/train.py`` and ``tools/test.py`` leave in work dirs, for comparing runs
(``tools/compare_results.py``); ``cardinality`` gives the paper's Table 2 group widths at fixed
complexity (and counts a backbone's parameters and FLOPs), ``statistics`` the mean/sd over
seeds, the paired X - R difference with its t interval, and how many seeds an effect needs.
Nothing here is imported by ``import resnext_det``: import the submodules themselves.
"""
