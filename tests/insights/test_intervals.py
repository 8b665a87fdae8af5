import numpy as np
import pytest

from insights.intervals import bootstrap_median_difference, wilson_interval


def test_wilson_zero_of_25_still_allows_13_percent():
    ci = wilson_interval(0, 25)
    assert ci.estimate == 0.0 and ci.low == 0.0
    assert ci.high == pytest.approx(0.1332, abs=1e-4)


def test_wilson_known_value_half():
    ci = wilson_interval(5, 10)
    assert (ci.low, ci.high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_wilson_without_runs_knows_nothing():
    ci = wilson_interval(0, 0)
    assert (ci.low, ci.high, ci.enough) == (0.0, 1.0, False)


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    a, b = rng.normal(100, 5, 30), rng.normal(90, 5, 30)
    first, second = bootstrap_median_difference(a, b, seed=3), bootstrap_median_difference(a, b, seed=3)
    assert first == second
    assert first.low <= first.estimate <= first.high < 0


@pytest.mark.parametrize("k, n", [(0, 1), (0, 25), (1, 3), (7, 40), (40, 40), (3, 1000)])
def test_wilson_matches_scipy(k, n):
    from scipy import stats

    from insights.intervals import wilson_interval

    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    got = wilson_interval(k, n)
    assert got.low == pytest.approx(ci.low, abs=1e-12) and got.high == pytest.approx(ci.high, abs=1e-12)
