"""The detector's noise scale is scipy's normal-consistent MAD of the runs around their own version's median."""
import numpy as np
import pytest
from scipy import stats

from insights.detection import _noise_scale, version_groups


@pytest.mark.parametrize("seed", range(20))
def test_noise_scale_is_scipys_median_abs_deviation(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, size=rng.integers(1, 7))  # odd and even versions, one run alone too
    versions = [f"1.{i}.0" for i, n in enumerate(sizes) for _ in range(n)]
    logs = np.log(100 * np.exp(rng.normal(0, 0.05, len(versions))) * (1 + 0.2 * rng.random(len(versions)) ** 8))
    ranges = [r for _, r in version_groups(versions)]
    residuals = np.concatenate([logs[r.start:r.stop] - np.median(logs[r.start:r.stop]) for r in ranges])
    expected = max(float(stats.median_abs_deviation(residuals, scale="normal")), 1e-6)
    assert _noise_scale(logs, ranges) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_noise_scale_of_runs_without_noise_is_the_floor():
    assert _noise_scale(np.zeros(10), [range(0, 5), range(5, 10)]) == 1e-6
