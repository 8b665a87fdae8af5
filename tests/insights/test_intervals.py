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


@pytest.mark.parametrize("n", [1, 5, 9])
def test_resampled_medians_follow_the_bootstrap_distribution_exactly(n):
    # For odd n a resample's median is at most the sample's j-th smallest value exactly when at least (n+1)/2 of its
    # n draws are, each with probability j/n: a binomial tail, so the sampler's distribution is known in closed form.
    from scipy import stats

    from insights.intervals import resampled_medians

    values = np.sort(np.random.default_rng(2).normal(100, 10, n))
    medians = resampled_medians(values, 200_000, np.random.default_rng(5))
    assert set(medians) <= set(values)
    for j in range(1, n + 1):
        exact = stats.binom.sf((n + 1) // 2 - 1, n, j / n)
        assert np.mean(medians <= values[j - 1]) == pytest.approx(exact, abs=0.005)


@pytest.mark.parametrize("n", [2, 6, 40])
def test_resampled_medians_match_resampling_for_even_samples(n):
    from scipy import stats

    from insights.intervals import resampled_medians

    rng = np.random.default_rng(3)
    values = np.sort(rng.lognormal(4, 0.5, n))
    drawn = np.median(rng.choice(values, size=(100_000, n)), axis=1)
    ours = resampled_medians(values, 100_000, np.random.default_rng(4))
    assert stats.ks_2samp(drawn, ours).statistic < 0.01


def test_bootstrap_interval_agrees_with_scipy_resampling():
    from scipy import stats

    rng = np.random.default_rng(8)
    a, b = rng.lognormal(4, 0.3, 301), rng.lognormal(4.1, 0.3, 250)
    ours = bootstrap_median_difference(a, b, n_resamples=20_000)
    theirs = stats.bootstrap((a, b), lambda x, y, axis: np.median(y, axis=axis) - np.median(x, axis=axis),
                             n_resamples=20_000, method="percentile", rng=np.random.default_rng(9)).confidence_interval
    width = theirs.high - theirs.low
    assert ours.low == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours.high == pytest.approx(theirs.high, abs=0.05 * width)
