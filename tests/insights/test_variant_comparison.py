import numpy as np
import pytest

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


@pytest.mark.parametrize("shift", [1.0, 0.97, 0.7])
def test_sketched_samples_are_compared_with_their_rank_error_owned(shift):
    """Groups of thousands of runs are compared from their merged sketches (a few hundred items standing for the
    values, each within RANK_ERROR of its rank): the medians are within the rank error of the runs' own, the
    interval, widened by the error, holds the runs' own difference of medians, the p-value is no smaller than the
    runs' own (an effect inside the sketch's error is not called significant), and a real effect still is."""
    from collector import sketches

    rng = np.random.default_rng(int(shift * 100))
    base = np.sort(80 * np.exp(rng.normal(0, 0.15, 6000)))
    other = np.sort(80 * shift * np.exp(rng.normal(0, 0.15, 4000)))
    sampled = []
    for values in (base, other):
        sketch = sketches.new_sketch()
        for part in np.array_split(values[rng.permutation(values.size)], 30):  # merged from rows, as a page reads
            row = sketches.new_sketch()
            row.update(part)
            sketch.merge(row)
        sampled.append(sketches.values(sketch))
    assert not sampled[0].unit and len(sampled[0].values) < base.size
    result = compare_variants(*sampled, rank_errors=(sketches.RANK_ERROR, sketches.RANK_ERROR))
    own = compare_variants(base, other)
    assert (result.runs_baseline, result.runs_candidate) == (base.size, other.size)
    for median, values in ((result.baseline_median, base), (result.candidate_median, other)):
        assert abs(np.searchsorted(values, median) / values.size - 0.5) <= sketches.RANK_ERROR
    assert result.difference.low <= own.difference.estimate <= result.difference.high
    assert result.difference.low <= own.difference.low and own.difference.high <= result.difference.high
    assert result.p_value >= own.p_value
    if shift == 0.7:
        assert result.p_value < 1e-6 and result.difference.high < 0
    if shift == 1.0:
        assert result.p_value > 0.05
