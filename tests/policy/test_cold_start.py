"""The cold-start split: each stage's median and the median of each run's time to first result, per compute units
and load kind, from the sketch rows (collector.sketches.launch_ms for the total), as the same medians taken over the
runs themselves: equal while a group has at most K values, else within the sketches' rank error."""
from collections import defaultdict

import numpy as np
import pytest

from collector.models import Run
from collector.sketches import K, RANK_ERROR
from policy.queries import cold_start_rows

STAGES = ("decrypt", "compile", "load", "first_prediction")


def _samples(runs) -> dict:
    """{(units, load kind): (successful runs, [sorted values per stage..., sorted totals])} computed here."""
    groups = defaultdict(list)
    for run in runs.filter(status="ok").values("compute_units", "load_kind", *(f"{s}_ms" for s in STAGES)):
        groups[run["compute_units"], run["load_kind"]].append(run)
    out = {}
    for key, rows in groups.items():
        columns = [sorted(r[f"{s}_ms"] for r in rows if r[f"{s}_ms"] is not None) for s in STAGES]
        totals = sorted(sum(r[f"{s}_ms"] or 0.0 for s in STAGES) for r in rows if r["first_prediction_ms"] is not None)
        out[key] = (len(rows), [*columns, totals])
    return out


def _agrees(median, values) -> bool:
    """The median of ``values``, exactly while the sketch holds them all, else a value within the rank error."""
    if not values:
        return median is None
    if len(values) <= K:
        return median == pytest.approx(float(np.median(values)), rel=1e-12)
    below, at_most = np.searchsorted(values, median, "left"), np.searchsorted(values, median, "right")
    return below / len(values) - RANK_ERROR <= 0.5 <= at_most / len(values) + RANK_ERROR


@pytest.mark.django_db
def test_stage_medians_and_the_median_total_match_the_runs(fleet):
    runs = Run.objects.filter(project=fleet[0], model_version__name="segmenter-lite", model_version__version="2.0.0")
    samples = _samples(runs)
    rows = cold_start_rows(runs)
    assert {(r.compute_units, r.load_kind) for r in rows} == set(samples)
    assert {r.load_kind for r in rows} == {"cold", "cached", "in_memory"}
    exact = 0
    for row in rows:
        n, values = samples[row.compute_units, row.load_kind]
        assert row.runs == n
        medians = [row.decrypt, row.compile, row.load, row.first_prediction, row.total_ms]
        assert all(_agrees(m, v) for m, v in zip(medians, values)), (row, [len(v) for v in values])
        exact += len(values[-1]) <= K
        # a cached load does not compile and only an in-memory load decrypts: the total still counts what it has
        assert row.total_ms >= row.first_prediction
    assert exact  # some groups are small enough to be exact
    # A filter that is no row key (the status) reads the runs themselves: exact medians.
    for row in cold_start_rows(runs.filter(status="ok")):
        n, values = samples[row.compute_units, row.load_kind]
        assert row.runs == n
        assert row.total_ms == pytest.approx(float(np.median(values[-1])), rel=1e-12)


@pytest.mark.django_db
@pytest.mark.parametrize("metric", ["load", "time_to_first_result", "warm"])
def test_variant_medians_are_those_of_the_newest_runs_that_have_the_metric(fleet, settings, metric):
    # Where the sketch rows cannot answer (a status filter is no row key), the A/B reads at most AB_MAX_RUNS of the
    # newest successful runs having the metric, a stage not reported counting 0 (only in-memory loads decrypt); each
    # side's median is that of those runs' sums, computed here from the rows.
    from policy.queries import AB_METRICS, variant_comparisons

    settings.PERFBOARD = {**settings.PERFBOARD, "AB_MAX_RUNS": 400}
    runs = Run.objects.filter(project=fleet[0], model_version__name="segmenter-lite", model_version__version="2.0.0",
                              status="ok")
    _, columns, required = AB_METRICS[metric]
    rows = [r for r in runs.filter(status="ok").order_by("-started_at", "-id")
            .values("variant", "compute_units", "load_kind", *columns) if all(r[c] is not None for c in required)]
    assert len(rows) > 400
    groups = defaultdict(list)
    for r in rows[:400]:
        groups[r["variant"], r["compute_units"], r["load_kind"]].append(sum(r[c] or 0.0 for c in columns))
    ab = variant_comparisons(runs, metric)
    assert ab.capped and ab.runs_read == 400 and ab.rows
    for row in ab.rows:
        base = groups[row.baseline, row.compute_units, row.load_kind]
        other = groups[row.candidate, row.compute_units, row.load_kind]
        assert (row.runs_baseline, row.runs_candidate) == (len(base), len(other))
        assert row.baseline_median == pytest.approx(float(np.median(base)), rel=1e-12)
        assert row.candidate_median == pytest.approx(float(np.median(other)), rel=1e-12)


@pytest.mark.django_db
@pytest.mark.parametrize("metric", ["time_to_first_result", "first_prediction", "load", "warm"])
def test_variant_comparisons_from_sketches_count_every_run_and_own_their_error(fleet, metric):
    """A metric the sketch rows hold is compared over every successful run having it, not the newest N: a group's
    runs are all counted, and its median is exact up to K values, else within the rank error. Where both groups are
    exact the comparison is the runs' own (interval and p-value); where a sketch stands for a group, its interval,
    widened by the rank error, holds the runs' own difference of medians (groups of this fleet are small: the
    estimated case is tests/insights/test_variant_comparison.py's)."""
    from insights.comparison import compare_variants
    from perfboard.conf import comparison_settings
    from policy.queries import AB_METRICS, variant_comparisons

    runs = Run.objects.filter(project=fleet[0], model_version__name="segmenter-lite", model_version__version="2.0.0")
    _, columns, required = AB_METRICS[metric]
    groups = defaultdict(list)
    for r in runs.filter(status="ok").values("variant", "compute_units", "load_kind", *columns):
        if all(r[c] is not None for c in required):
            groups[r["variant"], r["compute_units"], r["load_kind"]].append(sum(r[c] or 0.0 for c in columns))
    groups = {key: sorted(values) for key, values in groups.items()}
    ab = variant_comparisons(runs, metric)
    assert not ab.capped and ab.runs_read == sum(map(len, groups.values()))
    assert ab.rows
    exact = estimated = 0
    for row in ab.rows:
        base = groups[row.baseline, row.compute_units, row.load_kind]
        other = groups[row.candidate, row.compute_units, row.load_kind]
        assert (row.runs_baseline, row.runs_candidate) == (len(base), len(other))
        assert _agrees(row.baseline_median, base) and _agrees(row.candidate_median, other)
        if len(base) <= K and len(other) <= K:
            exact += 1
            own = compare_variants(base, other, comparison_settings())
            assert (row.low, row.high, row.p_value) == pytest.approx(
                (own.difference.low, own.difference.high, own.p_value), rel=1e-12)
        else:
            estimated += 1
            assert row.low <= float(np.median(other) - np.median(base)) <= row.high
    assert exact
