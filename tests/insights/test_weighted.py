"""A weighted sample (a merged sketch's items) gives the numbers of the sample it stands for: its median and the
Mann-Whitney p-values of the silent-fallback test, without expanding it."""
import numpy as np
import pytest

from insights.detection import mann_whitney_one_sided_ps
from insights.fallback import assess, timing_matches_cpu
from insights.weighted import Weighted


def _sample(rng, items, ties=False):
    values = np.round(rng.lognormal(3, 0.3, items), 1 if ties else 6)
    return Weighted(values, rng.integers(1, 64, items))


@pytest.mark.parametrize("seed", range(6))
def test_median_and_rank_test_equal_those_of_the_expanded_sample(seed):
    rng = np.random.default_rng(seed)
    x, y = _sample(rng, 40 + seed * 30, ties=seed % 2 == 1), _sample(rng, 25 + seed * 20, ties=seed % 2 == 1)
    y = y.scaled(1.0 + 0.01 * seed)
    assert x.median() == np.median(x.expanded())
    assert mann_whitney_one_sided_ps(x, y) == pytest.approx(
        mann_whitney_one_sided_ps(x.expanded(), y.expanded()), rel=1e-9, abs=1e-300)


def test_rank_test_of_shared_values_across_samples():
    # Both samples hold the same items with other weights: every value is tied across them.
    x = Weighted(np.array([1.0, 2.0, 3.0]), np.array([50, 10, 5]))
    y = Weighted(np.array([3.0, 2.0, 1.0]), np.array([40, 10, 2]))
    assert mann_whitney_one_sided_ps(x, y) == pytest.approx(mann_whitney_one_sided_ps(x.expanded(), y.expanded()),
                                                            rel=1e-12)


def test_small_samples_go_to_scipy_as_the_values_they_stand_for():
    x, y = Weighted(np.array([5.0, 7.0]), np.array([3, 2])), Weighted(np.array([6.0]), np.array([4]))
    assert mann_whitney_one_sided_ps(x, y) == mann_whitney_one_sided_ps(x.expanded(), y.expanded())


def test_fallback_assessment_is_that_of_the_expanded_samples():
    rng = np.random.default_rng(11)
    cpu = _sample(rng, 300)
    same = Weighted(cpu.values * 1.01, cpu.weights[::-1].copy())
    for on_ne in (same, cpu.scaled(0.4)):
        weighted, expanded = (assess("cpuAndNeuralEngine", on_ne, cpu),
                              assess("cpuAndNeuralEngine", on_ne.expanded(), cpu.expanded()))
        assert (weighted.on_cpu, weighted.runs, weighted.cpu_runs, weighted.median_ms) == \
            (expanded.on_cpu, expanded.runs, expanded.cpu_runs, expanded.median_ms)
        assert weighted.p_value == pytest.approx(expanded.p_value, rel=1e-9, abs=1e-300)
    assert assess("cpuAndNeuralEngine", same, cpu).on_cpu and not assess("all", cpu.scaled(0.4), cpu).on_cpu
    assert timing_matches_cpu(Weighted.joined([]), cpu) == (False, None, None, False)
