import numpy as np

from insights.comparison import compare_variants


def test_warm_up_that_helps_is_shown_faster_with_interval_below_zero():
    rng = np.random.default_rng(11)
    without = 95 * np.exp(rng.normal(0, 0.1, 25))
    with_warm_up = 60 * np.exp(rng.normal(0, 0.1, 25))
    result = compare_variants(without, with_warm_up)
    assert result.enough
    assert result.difference.high < 0
    assert result.p_value < 0.001
    assert -0.45 < result.relative < -0.3


def test_same_strategy_twice_shows_no_difference():
    rng = np.random.default_rng(12)
    result = compare_variants(95 * np.exp(rng.normal(0, 0.1, 25)), 95 * np.exp(rng.normal(0, 0.1, 25)))
    assert result.difference.low < 0 < result.difference.high
    assert result.p_value > 0.05


def test_too_few_runs_is_flagged():
    assert not compare_variants([90.0, 91.0, 92.0], [60.0, 61.0, 62.0]).enough
