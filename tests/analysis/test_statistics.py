"""Statistics over seeds, against hand-computed and textbook numbers."""
import math

import pytest

from resnext_det.analysis.statistics import (
    ONE_SEED,
    ZERO_SPREAD,
    describe,
    format_markdown,
    mean,
    metrics_from_work_dir,
    normalize_metrics,
    paired_difference,
    paired_power,
    sample_sd,
    seeds_needed,
    summarize,
)


def test_mean_and_sample_sd():
    assert mean([1.0, 2.0, 6.0]) == 3.0
    # sum of squares 4 + 1 + 9 = 14 over n - 1 = 2
    assert sample_sd([1.0, 2.0, 6.0]) == pytest.approx(math.sqrt(7))
    assert math.isnan(sample_sd([5.0]))
    assert describe([2, 4]) == dict(n=2, mean=3.0, sd=pytest.approx(math.sqrt(2)))
    with pytest.raises(ValueError, match='no runs'):
        mean([])
    with pytest.raises(ValueError, match='nan'):
        sample_sd([1.0, float('nan')])


def test_the_issues_two_seeds():
    # X - R AP@0.5: +4.9 and +1.0
    d = paired_difference([93.2, 91.0], [88.3, 90.0])
    assert d.n == 2 and d.mean == pytest.approx(2.95)
    assert d.sd == pytest.approx(3.9 / math.sqrt(2)) and d.sd == pytest.approx(2.758, abs=1e-3)
    assert d.sem == pytest.approx(1.95)
    assert d.t_crit == pytest.approx(12.706205, abs=1e-6)  # t_{0.975,1} (tables)
    half = 12.706205 * 1.95  # t_{0.975,1} * sd / sqrt(2)
    assert d.ci == (pytest.approx(2.95 - half), pytest.approx(2.95 + half))
    assert (round(d.ci[0], 1), round(d.ci[1], 1)) == (-21.8, 27.7)
    assert d.half_width == pytest.approx(half)
    # t = 2.95 / 1.95 with 1 df (a Cauchy): p = 1 - 2 atan(t) / pi
    assert d.p_value == pytest.approx(1 - 2 * math.atan(2.95 / 1.95) / math.pi)
    assert d.reason is None


def test_paired_difference_three_seeds_by_hand():
    # differences 1, 2, 6: mean 3, sd sqrt(7), t_{0.975,2} = 4.302653
    d = paired_difference([11.0, 12.0, 16.0], [10.0, 10.0, 10.0])
    half = 4.302653 * math.sqrt(7) / math.sqrt(3)
    assert d.ci == (pytest.approx(3 - half, abs=1e-5), pytest.approx(3 + half, abs=1e-5))
    # t = 3 / (sqrt(7) / sqrt(3)) = 1.9640 with 2 df: p = 1 - t / sqrt(2 + t^2) (closed form)
    t = 3 / math.sqrt(7 / 3)
    assert d.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t))
    d90 = paired_difference([11.0, 12.0, 16.0], [10.0, 10.0, 10.0], confidence=0.9)
    assert d90.t_crit == pytest.approx(2.919986, abs=1e-6)  # t_{0.95,2}


def test_one_seed_has_no_interval():
    d = paired_difference([93.2], [88.3])
    assert d.mean == pytest.approx(4.9) and d.n == 1
    assert d.ci is None and d.p_value is None and d.half_width is None
    assert math.isnan(d.sd) and d.reason == ONE_SEED and 'one seed' in d.reason


def test_zero_spread():
    d = paired_difference([5.0, 6.0, 7.0], [3.0, 4.0, 5.0])
    assert d.sd == 0 and d.ci == (pytest.approx(2.0), pytest.approx(2.0))
    assert d.p_value == 0.0 and d.reason == ZERO_SPREAD
    same = paired_difference([1.0, 2.0], [1.0, 2.0])
    assert same.ci == (0.0, 0.0) and same.p_value == 1.0


def test_paired_difference_errors():
    with pytest.raises(ValueError, match='paired'):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match='no runs'):
        paired_difference([], [])
    with pytest.raises(ValueError, match='confidence'):
        paired_difference([1.0, 2.0], [0.0, 0.0], confidence=95)


def test_paired_power_textbook_values():
    # Cohen's d = effect / sd = 1 at n = 10, alpha 0.05 two-sided: power 0.8031 (G*Power);
    # d = 0.5 at n = 34: 0.8078
    assert paired_power(10, 1.0, 1.0) == pytest.approx(0.8031, abs=1e-4)
    assert paired_power(34, 0.5, 1.0) == pytest.approx(0.8078, abs=1e-4)
    assert paired_power(34, -0.5, 1.0) == paired_power(34, 0.5, 1.0)
    # no effect at all: the test rejects at its level
    assert paired_power(5, 1e-12, 1.0) == pytest.approx(0.05)
    with pytest.raises(ValueError, match='at least 2'):
        paired_power(1, 1.0, 1.0)


def test_seeds_needed_for_two_points_at_the_issues_spread():
    # normal approximation: ((1.960 + 0.842) * 2.758 / 2)^2 = 14.9 seeds; the t-test needs 17
    assert seeds_needed(2.0, 2.758) == 17
    assert seeds_needed(-2.0, 2.758) == 17  # the sign does not matter
    assert paired_power(17, 2.0, 2.758) >= 0.8 > paired_power(16, 2.0, 2.758)


@pytest.mark.parametrize('effect, sd, expected', [
    # the textbook paired-t sample sizes (G*Power, Cohen's d, alpha 0.05 two-sided, power 0.8)
    (1.0, 1.0, 10), (0.5, 1.0, 34), (0.8, 1.0, 15), (0.2, 1.0, 199)])
def test_seeds_needed_textbook_sizes(effect, sd, expected):
    assert seeds_needed(effect, sd) == expected


def test_seeds_needed_is_the_smallest_n_with_the_power():
    for effect, sd, alpha, power in ((2.0, 2.758, 0.05, 0.8), (1.0, 3.0, 0.05, 0.8),
                                     (1.0, 1.0, 0.01, 0.9), (3.0, 1.0, 0.05, 0.8),
                                     (1.0, 1.0, 0.05, 0.3)):
        n = seeds_needed(effect, sd, alpha=alpha, power=power)
        assert paired_power(n, effect, sd, alpha) >= power
        assert n == 2 or paired_power(n - 1, effect, sd, alpha) < power


def test_seeds_needed_edges():
    assert seeds_needed(1.0, 1.0, power=0.9) > 10 and seeds_needed(1.0, 1.0, alpha=0.01) > 10
    assert seeds_needed(2.0, 0.0) == 2  # zero spread: the fewest a t-test can use
    assert seeds_needed(100.0, 1.0) == 2  # a huge effect: still the fewest a t-test can use
    with pytest.raises(ValueError, match='effect'):
        seeds_needed(0.0, 1.0)
    with pytest.raises(ValueError, match='sd_diff'):
        seeds_needed(1.0, float('nan'))
    with pytest.raises(ValueError, match='alpha'):
        seeds_needed(1.0, 1.0, power=1.0)
    with pytest.raises(ValueError, match='max_n'):
        seeds_needed(0.001, 10.0, max_n=1000)
    with pytest.raises(ValueError, match='max_n'):
        seeds_needed(0.3, 1.0, max_n=88)  # the normal approximation (88) fits, not the exact


def test_normalize_metrics():
    raw = {'coco/bbox_mAP': 0.725, 'coco/bbox_mAP_50': 0.903, 'coco/bbox_mAP_75': 0.84,
           'coco/bbox_mAP_l': -1.0, 'accuracy/top1': 92.5, 'step': 3}
    out = normalize_metrics(raw)
    assert out['AP'] == pytest.approx(72.5) and out['AP50'] == pytest.approx(90.3)
    assert out['AP75'] == pytest.approx(84.0) and out['top1'] == 92.5
    assert math.isnan(out['APl']) and 'step' not in out
    assert normalize_metrics({'AP50': 90.3}) == {'AP50': 90.3}


def _summary():
    return summarize({
        'R-50': [{'coco/bbox_mAP': 0.715, 'coco/bbox_mAP_50': 0.883, 'coco/bbox_mAP_l': -1},
                 {'coco/bbox_mAP': 0.705, 'coco/bbox_mAP_50': 0.900, 'coco/bbox_mAP_l': -1}],
        'X-50': [{'AP': 75.2, 'AP50': 93.2, 'APl': float('nan')},
                 {'AP': 74.0, 'AP50': 91.0, 'APl': float('nan')}],
    })


def test_summarize_two_models():
    s = _summary()
    assert s.baseline == 'R-50' and s.models == ['R-50', 'X-50'] and s.seeds == [0, 1]
    assert s.metrics == ['AP', 'AP50']  # APl is nan everywhere (no large objects): left out
    x = s.stats['AP50']['X-50']
    assert x['n'] == 2 and x['mean'] == pytest.approx(92.1) and x['values'] == [93.2, 91.0]
    assert x['sd'] == pytest.approx(2.2 / math.sqrt(2))
    d = s.diffs['AP50']['X-50']
    assert d.mean == pytest.approx(2.95) and (round(d.ci[0], 1), round(d.ci[1], 1)) == \
        (-21.8, 27.7)
    assert s.diffs['AP']['X-50'].mean == pytest.approx((3.7 + 3.5) / 2)
    table = format_markdown(s)
    assert 'n = 2 paired seed(s); 95% CI' in table
    assert '| metric | R-50 (mean ± sd) | X-50 (mean ± sd) | X-50 − R-50 | 95% CI | p |' in table
    row = next(line for line in table.splitlines() if line.startswith('| AP@0.5 '))
    assert row.startswith('| AP@0.5 | 89.2 ± 1.2 | 92.1 ± 1.6 | +') and '[-21.8, +27.7]' in row


def test_summarize_by_seed_baseline_and_three_models():
    runs = {
        'X-50': {0: {'AP50': 93.0}, 1: {'AP50': 92.0}, 2: {'AP50': 95.0}},
        'R-50': {0: {'AP50': 90.0}, 1: {'AP50': 91.0}, 2: {'AP50': 90.0}, 3: {'AP50': 89.0}},
        'X-50-2x': {2: {'AP50': 91.0}, 0: {'AP50': 91.0}, 1: {'AP50': 91.0}},
    }
    s = summarize(runs, baseline='R-50')
    assert s.models == ['R-50', 'X-50', 'X-50-2x'] and s.seeds == [0, 1, 2]
    assert s.dropped_seeds == {'R-50': [3]}
    assert s.diffs['AP50']['X-50'].diffs == [3.0, 1.0, 5.0]
    assert s.diffs['AP50']['X-50-2x'].diffs == [1.0, 0.0, 1.0]
    table = format_markdown(s, digits=2)
    assert 'X-50-2x − R-50' in table and 'seeds left out' in table


def test_summarize_one_seed_and_errors():
    s = summarize({'R': [{'AP50': 88.3}], 'X': [{'AP50': 93.2}]})
    assert s.diffs['AP50']['X'].ci is None and math.isnan(s.stats['AP50']['X']['sd'])
    row = next(line for line in format_markdown(s).splitlines() if line.startswith('| AP@0.5'))
    assert row == '| AP@0.5 | 88.3 | 93.2 | +4.9 | undefined (1 seed) | - |'
    with pytest.raises(ValueError, match='two or more models'):
        summarize({'R': [{'AP50': 1.0}]})
    with pytest.raises(ValueError, match='same length'):
        summarize({'R': [{'AP50': 1.0}], 'X': [{'AP50': 1.0}, {'AP50': 2.0}]})
    with pytest.raises(ValueError, match="'top1' is missing"):
        summarize({'R': [{'AP50': 1.0}], 'X': [{'AP50': 1.0}]}, metrics=['top1'])
    with pytest.raises(ValueError, match='baseline'):
        summarize({'R': [{'AP50': 1.0}], 'X': [{'AP50': 1.0}]}, baseline='Y')


def test_metrics_from_work_dir(tmp_path):
    import json
    (tmp_path / 'test_results.json').write_text(json.dumps(dict(
        config='configs/demo/faster_rcnn_x50_8x4d_slim_demo.py', checkpoint='x.pth',
        metrics={'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.75, 'coco/bbox_mAP_75': 0.5})))
    assert metrics_from_work_dir(str(tmp_path)) == dict(AP=50.0, AP50=75.0, AP75=50.0)
    with pytest.raises(FileNotFoundError, match='tools/test.py'):
        metrics_from_work_dir(str(tmp_path / 'missing'))
