import numpy as np
import pytest

from insights.summary import prediction_summary


@pytest.mark.parametrize("values", [[5.0], [3.0, 1.0], list(np.random.default_rng(1).lognormal(2, 0.3, 257))])
def test_summary_matches_numpy(values):
    s = prediction_summary(values)
    a = np.asarray(values)
    assert s["count"] == a.size and s["min"] == a.min()
    assert s["median"] == pytest.approx(np.percentile(a, 50))
    assert s["p90"] == pytest.approx(np.percentile(a, 90))
    assert s["p99"] == pytest.approx(np.percentile(a, 99))
    assert s["mean"] == pytest.approx(a.mean())
    assert s["std"] == (pytest.approx(a.std(ddof=1)) if a.size > 1 else None)


def test_empty_series_has_no_figures():
    assert prediction_summary([]) == {"count": 0, "min": None, "median": None, "p90": None, "p99": None,
                                      "mean": None, "std": None}
