"""tools/model_stats.py's numbers: params exact, FLOPs within 3% of the paper's tables."""
import pytest

from resnext_det.analysis.complexity import model_stats


@pytest.mark.parametrize('name', ['R-50', 'X-50-32x4d'])
def test_params_and_flops_match_the_paper(name):
    stats = model_stats(name)
    assert abs(stats['params_dev']) < 0.03
    assert abs(stats['gflops_dev']) < 0.03
    # torchvision's classifiers: resnet50 25,557,032, resnext50_32x4d 25,028,904 parameters
    expected = {'R-50': 25_557_032, 'X-50-32x4d': 25_028_904}[name]
    assert round(stats['params_m'] * 1e6) == expected
