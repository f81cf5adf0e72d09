"""Statistics for comparing backbones over seeds: is X better than R, by how much, how sure?

Plain functions on lists of numbers (one number per run), on Python's ``statistics`` and
``scipy.stats``:

* :func:`mean`, :func:`sample_sd` (n - 1 in the denominator), :func:`describe`;
* :func:`paired_difference`: X - R seed by seed (the same seed trains both models on the same
  data order, so the pairs share part of their noise), with the paired t-test
  (``scipy.stats.ttest_rel``): confidence interval ``mean(diff) +- t_{1-alpha/2, n-1} *
  sd(diff) / sqrt(n)`` and two-sided p-value;
* :func:`paired_power` / :func:`seeds_needed`: the exact (noncentral t) power of that test, and
  how many paired seeds a given effect needs at a measured spread;
* :func:`summarize` / :func:`format_markdown`: per-metric mean/sd per model and the paired
  differences against a baseline, from per-seed metric dicts (:func:`normalize_metrics`
  turns a work dir's ``coco/bbox_mAP*`` into ``AP``/``AP50``/... in percent).

Worked example (the demo's two seeds, X - R AP@0.5 = +4.9 and +1.0): mean 2.95, sd 2.758,
95% CI 2.95 +- 12.706 * 2.758 / sqrt(2) = [-21.8, 27.7]: two seeds say nothing about the
sign. At that spread, +2 AP@0.5 needs ``seeds_needed(2.0, 2.758) == 17`` paired seeds for 80%
power at alpha = 0.05.
"""
import math
import statistics as _stats
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from scipy import stats as _scipy_stats

ONE_SEED = ('one seed: the spread of the difference is unknown, so there is no confidence '
            'interval (run at least 2 seeds per model)')
ZERO_SPREAD = ('zero spread: every seed gave the same difference, so the interval has zero '
               'width; with few seeds that is luck, not certainty')


def _values(values: Iterable[float], name: str = 'values') -> List[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f'{name}: no runs given')
    if any(math.isnan(v) for v in out):
        raise ValueError(f'{name}: {out} contains nan (a missing metric?)')
    return out


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean of the runs (ValueError for none, or for a nan)."""
    return _stats.fmean(_values(values))


def sample_sd(values: Iterable[float]) -> float:
    """Sample standard deviation (n - 1 denominator); ``nan`` for a single run."""
    values = _values(values)
    return _stats.stdev(values) if len(values) > 1 else float('nan')


def describe(values: Iterable[float]) -> Dict[str, float]:
    """``dict(n, mean, sd)`` of the runs (sd is ``nan`` for one run)."""
    values = _values(values)
    return dict(n=len(values), mean=mean(values), sd=sample_sd(values))


# ---------------------------------------------------------------------------------------------
# paired comparison

@dataclass
class PairedDifference:
    """X - R over paired seeds, with the paired t-test.

    ``ci`` is ``(low, high)`` at ``confidence``, or None when it is undefined (one seed: see
    ``reason``). ``p_value`` is the two-sided p of "mean difference = 0" (None with one seed).
    ``t_crit`` is the t quantile used, ``sem`` = sd / sqrt(n).
    """
    n: int
    mean: float
    sd: float
    sem: float
    confidence: float
    t_crit: Optional[float]
    ci: Optional[Tuple[float, float]]
    p_value: Optional[float]
    diffs: List[float] = field(default_factory=list)
    reason: Optional[str] = None

    @property
    def half_width(self) -> Optional[float]:
        return None if self.ci is None else (self.ci[1] - self.ci[0]) / 2


def paired_difference(x: Sequence[float], r: Sequence[float],
                      confidence: float = 0.95) -> PairedDifference:
    """X - R run by run (``x[i]`` and ``r[i]`` from the same seed), with a t confidence interval.

    Args:
        x: the metric of model X per seed (e.g. ResNeXt AP@0.5).
        r: the metric of model R for the same seeds, in the same order.
        confidence: of the two-sided interval (0.95: ``t_{0.975, n-1}``).

    Returns:
        :class:`PairedDifference`. One seed: ``sd``/``sem`` nan, ``ci``/``p_value`` None and
        ``reason`` saying why (no crash). Zero spread (all differences equal, n >= 2): ``ci`` is
        ``(mean, mean)``, ``p_value`` 0 (or 1 when the mean is 0 too) and ``reason`` warns that
        this is luck at few seeds (``ttest_rel`` would give nan there).

    Raises:
        ValueError: different lengths, no runs, nan values or a confidence outside (0, 1).
    """
    x, r = _values(x, 'x'), _values(r, 'r')
    if len(x) != len(r):
        raise ValueError(f'x has {len(x)} runs and r {len(r)}: a paired comparison needs one '
                         f'run of each model per seed')
    if not 0.0 < confidence < 1.0:
        raise ValueError(f'confidence={confidence!r} must be in (0, 1)')
    diffs = [a - b for a, b in zip(x, r)]
    n, m, sd = len(diffs), mean(diffs), sample_sd(diffs)
    if n < 2:
        return PairedDifference(n=n, mean=m, sd=sd, sem=float('nan'), confidence=confidence,
                                t_crit=None, ci=None, p_value=None, diffs=diffs,
                                reason=ONE_SEED)
    t_crit = float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))
    sem = sd / math.sqrt(n)
    # rounding: equal differences like 4.9 - 1.0 and 5.0 - 1.1 give sd ~1e-16, not 0
    if sd <= 1e-12 * max(1.0, abs(m)):
        return PairedDifference(n=n, mean=m, sd=0.0, sem=0.0, confidence=confidence,
                                t_crit=t_crit, ci=(m, m), p_value=1.0 if m == 0 else 0.0,
                                diffs=diffs, reason=ZERO_SPREAD)
    p_value = float(_scipy_stats.ttest_rel(x, r).pvalue)
    return PairedDifference(n=n, mean=m, sd=sd, sem=sem, confidence=confidence, t_crit=t_crit,
                            ci=(m - t_crit * sem, m + t_crit * sem), p_value=p_value,
                            diffs=diffs)


def paired_power(n: int, effect: float, sd_diff: float, alpha: float = 0.05) -> float:
    """The power of the two-sided paired t-test at level ``alpha`` with ``n`` paired seeds when
    the true mean difference is ``effect`` and the per-seed difference has sd ``sd_diff``.

    Exact: under the effect, ``t`` follows the noncentral t with ``n - 1`` degrees of freedom
    and noncentrality ``effect / sd_diff * sqrt(n)`` (``scipy.stats.nct``).
    """
    if n < 2:
        raise ValueError(f'n={n!r}: a paired t-test needs at least 2 seeds')
    df, nc = n - 1, abs(effect) / sd_diff * math.sqrt(n)
    t_crit = _scipy_stats.t.ppf(1 - alpha / 2, df)
    return float(_scipy_stats.nct.sf(t_crit, df, nc) + _scipy_stats.nct.cdf(-t_crit, df, nc))


def seeds_needed(effect: float, sd_diff: float, alpha: float = 0.05, power: float = 0.8,
                 max_n: int = 100000) -> int:
    """Paired seeds for a two-sided paired t-test at level ``alpha`` to detect ``effect``.

    Args:
        effect: the true mean difference X - R to detect (e.g. 2.0 for +2 AP@0.5; the sign
            does not matter).
        sd_diff: the standard deviation of the per-seed difference X - R (e.g. the ``sd`` of
            :func:`paired_difference` from a pilot run), in the units of ``effect``.
        alpha: two-sided significance level.
        power: probability of a significant result when the effect is real.

    Returns:
        The smallest n >= 2 whose exact power (:func:`paired_power`) reaches ``power``, searched
        from the normal approximation ``((z_{1-alpha/2} + z_{power}) * sd_diff / effect)^2``.
        Zero spread gives 2, the fewest a t-test can use.

    Raises:
        ValueError: zero/nan effect, negative or nan sd, alpha or power outside (0, 1), or
        more than ``max_n`` seeds needed.
    """
    effect = abs(float(effect))
    sd_diff = float(sd_diff)
    if not effect > 0 or math.isinf(effect):
        raise ValueError(f'effect={effect!r} must be a non-zero finite difference')
    if not sd_diff >= 0 or math.isinf(sd_diff):
        raise ValueError(f'sd_diff={sd_diff!r} must be a finite number >= 0 (two or more seeds '
                         f'are needed to measure it)')
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f'alpha={alpha!r} and power={power!r} must be in (0, 1)')
    if sd_diff == 0:
        return 2
    too_many = ValueError(f'more than max_n={max_n} seeds needed for effect {effect} at sd '
                          f'{sd_diff}')
    z = _scipy_stats.norm.ppf(1 - alpha / 2) + _scipy_stats.norm.ppf(power)
    n = max(2, math.ceil((z * sd_diff / effect) ** 2)) if z > 0 else 2
    if n > max_n:  # the t-test needs at least as many seeds as the normal approximation
        raise too_many
    # the power grows with n: step from the approximation to the smallest n that reaches it
    while n > 2 and paired_power(n - 1, effect, sd_diff, alpha) >= power:
        n -= 1
    while paired_power(n, effect, sd_diff, alpha) < power:
        n += 1
        if n > max_n:
            raise too_many
    return n


# ---------------------------------------------------------------------------------------------
# per-seed metric dicts of several models

# work-dir metric -> short name; COCO's are fractions in [0, 1] (-1: no such objects)
COCO_KEYS = {
    'coco/bbox_mAP': 'AP', 'coco/bbox_mAP_50': 'AP50', 'coco/bbox_mAP_75': 'AP75',
    'coco/bbox_mAP_s': 'APs', 'coco/bbox_mAP_m': 'APm', 'coco/bbox_mAP_l': 'APl',
    'coco/segm_mAP': 'mask_AP', 'coco/segm_mAP_50': 'mask_AP50', 'coco/segm_mAP_75': 'mask_AP75',
}
# the classifier's accuracy, already in percent
ACCURACY_KEYS = {'accuracy/top1': 'top1', 'accuracy/top5': 'top5'}
METRIC_ORDER = ('top1', 'top5', 'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'mask_AP',
                'mask_AP50', 'mask_AP75')
LABELS = {'top1': 'top-1', 'top5': 'top-5', 'AP50': 'AP@0.5', 'AP75': 'AP@0.75', 'APs': 'AP_S',
          'APm': 'AP_M', 'APl': 'AP_L', 'mask_AP': 'mask AP', 'mask_AP50': 'mask AP@0.5',
          'mask_AP75': 'mask AP@0.75'}


def normalize_metrics(metrics: Mapping[str, float]) -> Dict[str, float]:
    """A work dir's metrics as short names in percent.

    ``coco/bbox_mAP``, ``coco/bbox_mAP_50``, ``coco/bbox_mAP_75``, ``..._s/_m/_l`` (fractions,
    as ``tools/test.py`` writes them to ``test_results.json``) become ``AP``, ``AP50``,
    ``AP75``, ``APs``, ``APm``, ``APl`` x 100 (COCO's -1 "no objects of that size" becomes nan);
    ``accuracy/top1``/``top5`` (already percent) become ``top1``/``top5``. Short names already
    there (``AP``, ``top1``, ...) are kept as they are; other keys are dropped.
    """
    out = {}
    for key, value in metrics.items():
        if key in COCO_KEYS:
            value = float(value)
            out[COCO_KEYS[key]] = float('nan') if value < 0 else 100.0 * value
        elif key in ACCURACY_KEYS:
            out[ACCURACY_KEYS[key]] = float(value)
        elif key in METRIC_ORDER:
            out[key] = float(value)
    return out


def metrics_from_work_dir(work_dir: str) -> Dict[str, float]:
    """:func:`normalize_metrics` of a detection work dir's ``test_results.json``.

    Uses :func:`resnext_det.analysis.results.load_run` (FileNotFoundError naming the fix when
    ``tools/test.py`` has not been run there).
    """
    from .results import load_run
    return normalize_metrics(load_run(work_dir)['metrics'])


Runs = Union[Sequence[Mapping[str, float]], Mapping[object, Mapping[str, float]]]


@dataclass
class Summary:
    """What :func:`summarize` returns.

    ``stats[metric][model]``: ``dict(n, mean, sd, values)``; ``diffs[metric][model]``: the
    :class:`PairedDifference` model - baseline (every model but the baseline); ``seeds``: the
    seeds used (indices for lists); ``metrics``/``models`` in table order.
    """
    baseline: str
    models: List[str]
    metrics: List[str]
    seeds: List[object]
    confidence: float
    stats: Dict[str, Dict[str, Dict]]
    diffs: Dict[str, Dict[str, PairedDifference]]
    dropped_seeds: Dict[str, List[object]] = field(default_factory=dict)


def _by_seed(runs: Runs) -> Dict[object, Mapping[str, float]]:
    if isinstance(runs, Mapping):
        return dict(runs)
    return dict(enumerate(runs))


def summarize(runs: Mapping[str, Runs], baseline: Optional[str] = None,
              metrics: Optional[Sequence[str]] = None, confidence: float = 0.95) -> Summary:
    """Per-metric mean/sd of each model and the paired difference of each model to a baseline.

    Args:
        runs: ``{model name: per-seed results}``; per-seed results are either a list of metric
            dicts (paired by position: the i-th dict of every model is seed i) or a dict
            ``{seed: metric dict}`` (paired by seed; seeds missing for some model are dropped
            from all and listed in ``Summary.dropped_seeds``). Metric dicts may hold short names
            (``top1``, ``AP``, ``AP50``, ``AP75``, in percent) or a work dir's raw metrics
            (``coco/bbox_mAP_50`` ..., fractions), see :func:`normalize_metrics`.
        baseline: the model the others are compared against (R); default the first in
            ``runs``.
        metrics: which metrics, default every metric all runs have, in :data:`METRIC_ORDER`.
        confidence: of the paired t intervals.

    Example::

        summarize({'R-50': [{'AP50': 88.3}, {'AP50': 90.0}],
                   'X-50': [{'AP50': 93.2}, {'AP50': 91.0}]})
        # .stats['AP50']['X-50'] == dict(n=2, mean=92.1, sd=1.556, values=[93.2, 91.0])
        # .diffs['AP50']['X-50'].mean == 2.95, .ci == (-21.8, 27.7)
    """
    if len(runs) < 2:
        raise ValueError(f'summarize: need two or more models, got {list(runs)}')
    models = list(runs)
    baseline = models[0] if baseline is None else baseline
    if baseline not in runs:
        raise ValueError(f'summarize: baseline {baseline!r} is not one of {models}')
    models = [baseline] + [m for m in models if m != baseline]
    per_model = {m: {s: normalize_metrics(v) for s, v in _by_seed(runs[m]).items()}
                 for m in models}
    if any(not isinstance(runs[m], Mapping) for m in models):
        lengths = {m: len(per_model[m]) for m in models}
        if len(set(lengths.values())) != 1:
            raise ValueError(f'summarize: lists of runs are paired by position and must have '
                             f'the same length, got {lengths}; pass {{seed: metrics}} dicts to '
                             f'pair by seed instead')
    seeds = [s for s in per_model[baseline] if all(s in per_model[m] for m in models)]
    if not seeds:
        raise ValueError('summarize: no seed has results for every model')
    dropped = {m: [s for s in per_model[m] if s not in seeds] for m in models}
    dropped = {m: s for m, s in dropped.items() if s}
    if metrics is None:
        common = set.intersection(*(set(per_model[m][s]) for m in models for s in seeds))
        # COCO's -1 (no objects of that size) became nan: such a metric has nothing to compare
        metrics = [k for k in METRIC_ORDER if k in common
                   and not any(math.isnan(per_model[m][s][k]) for m in models for s in seeds)]
    else:
        for k in metrics:
            missing = [(m, s) for m in models for s in seeds if k not in per_model[m][s]]
            if missing:
                raise ValueError(f'summarize: metric {k!r} is missing for (model, seed) '
                                 f'{missing}')
    stats, diffs = {}, {}
    for k in metrics:
        values = {m: [per_model[m][s][k] for s in seeds] for m in models}
        stats[k] = {m: dict(describe(v), values=v) for m, v in values.items()}
        diffs[k] = {m: paired_difference(values[m], values[baseline], confidence)
                    for m in models[1:]}
    return Summary(baseline=baseline, models=models, metrics=list(metrics), seeds=seeds,
                   confidence=confidence, stats=stats, diffs=diffs, dropped_seeds=dropped)


def _fmt(value: float, digits: int, sign: bool = False) -> str:
    if value is None or math.isnan(value):
        return '-'
    return f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def format_markdown(summary: Summary, digits: int = 1) -> str:
    """A markdown table of a :class:`Summary`: one row per metric.

    Columns: ``mean ± sd`` of each model (sd ``-`` with one seed), then for each model but the
    baseline ``X − R`` (mean paired difference), its confidence interval (``undefined (1
    seed)`` with one seed) and the two-sided p-value. The header states n and the confidence.
    """
    others = summary.models[1:]
    pct = f'{100 * summary.confidence:g}%'
    header = ['metric'] + [f'{m} (mean ± sd)' for m in summary.models]
    for m in others:
        header += [f'{m} − {summary.baseline}', f'{pct} CI', 'p']
    lines = [f'n = {len(summary.seeds)} paired seed(s); {pct} CI of the paired t-test',
             '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for k in summary.metrics:
        row = [LABELS.get(k, k)]
        for m in summary.models:
            s = summary.stats[k][m]
            sd = _fmt(s['sd'], digits)
            row.append(_fmt(s['mean'], digits) + ('' if sd == '-' else f' ± {sd}'))
        for m in others:
            d = summary.diffs[k][m]
            row.append(_fmt(d.mean, digits, sign=True))
            if d.ci is None:
                row += ['undefined (1 seed)', '-']
            else:
                row.append(f'[{_fmt(d.ci[0], digits, True)}, {_fmt(d.ci[1], digits, True)}]')
                row.append(f'{d.p_value:.3g}')
        lines.append('| ' + ' | '.join(row) + ' |')
    if summary.dropped_seeds:
        lines += ['', f'seeds left out (not run for every model): {summary.dropped_seeds}']
    return '\n'.join(lines)
