"""collector.evidence.gather, the one evidence query: counts every run, times successful runs only (load metrics:
of their load kind), and GET /api/v1/stats and the policy's evidence agree on any generated fleet."""
import statistics
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.bulk import bulk_load
from collector.evidence import gather, gather_by, timed_runs
from collector.models import Run
from dashboard.filters import Filters
from insights.vocabulary import COMPUTE_UNITS, FAILURE_STATUSES, LOAD_KINDS, LOAD_METRICS, METRICS
from policy.evidence import gather_evidence

QUERY = {"model": "face-retouch", "version": "3.2.0"}
DEVICES = {"iPhone15,2": "A16 Bionic", "iPhone15,3": "A16 Bionic", "iPhone14,5": "A15 Bionic",
           "iPhone16,1": "A17 Pro"}


def run(make_run, *, device="iPhone15,2", units="all", kind="cold", status="ok", load=100.0, first=10.0,
        warm=5.0, os_version="18.1.1", source="lab"):
    fields = dict(device={"identifier": device, "os_version": os_version}, compute_units=units, load_kind=kind,
                  source=source, timings_ms={"decrypt": None, "compile": 1.0, "load": load, "first_prediction": first},
                  predictions_ms=[warm] if warm is not None else [])
    if status != "ok":
        fields.update(status=status, failure={"stage": "prediction", "message": "boom"})
    return make_run(**fields)


def test_failed_runs_are_counted_but_never_timed(project, make_run):
    bulk_load(project.slug, [run(make_run) for _ in range(20)]
              + [run(make_run, status="crash", load=5000.0, first=5000.0, warm=50.0) for _ in range(15)]
              + [run(make_run, status="oom", load=5000.0) for _ in range(5)]
              + [run(make_run, kind="cached", load=40.0) for _ in range(4)])
    (e,) = gather(Run.objects.all(), ("device", "compute_units"), METRICS, {"median": 0.5, "p90": 0.9})
    assert (e.runs, e.failures, e.failure_count) == (44, {"crash": 15, "oom": 5}, 20)
    assert (e.median("load_cold"), e.timed("load_cold"), e.metrics["load_cold"]["p90"]) == (100.0, 20, 100.0)
    assert (e.median("load_cached"), e.timed("load_cached")) == (40.0, 4)
    assert e.median("load_in_memory") is None and e.timed("load_in_memory") == 0
    assert (e.median("prediction"), e.timed("prediction")) == (5.0, 24)
    assert Run.objects.filter(timed_runs("load_cold")).count() == 20


def test_groups(project, make_run):
    bulk_load(project.slug, [run(make_run, device="iPhone15,3", units="cpuOnly"), run(make_run, source="field")])
    by_chip = gather_by(Run.objects.all(), ("chip", "compute_units", "source"))
    assert {k: e.runs for k, e in by_chip.items()} == {("A16 Bionic", "cpuOnly", "lab"): 1,
                                                       ("A16 Bionic", "all", "field"): 1}
    with pytest.raises(ValueError, match="cannot group runs by"):
        gather(Run.objects.all(), ("colour",))
    with pytest.raises(ValueError, match="cannot group runs by nothing"):  # (a GROUP BY of nothing: one group a run)
        gather(Run.objects.all(), ())


# --- property: GET /api/v1/stats medians == the policy's evidence medians -----------------------------------------

timings = st.one_of(st.none(), st.floats(1.0, 5000.0).map(lambda x: round(x, 1)))
runs_strategy = st.fixed_dictionaries({
    "device": st.sampled_from(sorted(DEVICES)),
    "units": st.sampled_from(COMPUTE_UNITS),
    "kind": st.sampled_from(LOAD_KINDS),
    "status": st.sampled_from(("ok", "ok", "ok", *FAILURE_STATUSES)),
    "load": timings,
    "first": timings,
    "warm": timings,
    "os_version": st.sampled_from(("17.5", "18.1.1")),
    "source": st.sampled_from(("lab", "field")),
})
scopes = st.sampled_from([{}, {"compute_units": "all"}, {"source": "field"}, {"os_min": "18"},
                          {"os_max": "17", "compute_units": "cpuAndGPU"}])
STATS_METRICS = (*(m.key for m in LOAD_METRICS.values()), "first_prediction", "prediction")


def _policy_median(unit_evidence, key):
    for kind, m in LOAD_METRICS.items():
        if key == m.key:
            return unit_evidence.load_ms_median.get(kind)
    return {"first_prediction": unit_evidence.first_prediction_ms_median,
            "prediction": unit_evidence.prediction_ms_median}[key]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(fleet=st.lists(runs_strategy, min_size=1, max_size=25), scope=scopes)
def test_stats_medians_equal_the_policy_evidence(project, runner, make_run, fleet, scope):
    Run.objects.filter(project=project).delete()
    runs = []
    for r in fleet:
        if r["status"] == "ok" and (r["load"] is None or r["first"] is None):
            r = {**r, "load": r["load"] or 1.0, "first": r["first"] or 1.0}  # an ok run has both
        runs.append(run(make_run, **r))
    bulk_load(project.slug, runs)

    # The policy's per-device evidence over the same runs (the stats API's scope, read with the pages' filters).
    filters = Filters.from_query(QueryDict(urlencode(scope)))
    assert not filters.errors
    scoped = filters.apply(Run.objects.filter(project=project, model_version__version="3.2.0"))
    policy = {(device, u.compute_units): u for device, units in gather_evidence(scoped, "device").items()
              for u in units}
    identifiers = dict(Run.objects.filter(project=project).values_list("device_id", "device__identifier"))
    for key in STATS_METRICS:
        response = runner.get("/api/v1/stats", {**QUERY, "metric": key, "by": "device", **scope})
        assert response.status_code == 200, response.content
        rows = {(r["device"], r["compute_units"]): r for r in response.json()["rows"]}
        assert set(rows) == {(identifiers[d], u) for d, u in policy}
        for (device, unit), evidence in policy.items():
            row = rows[identifiers[device], unit]
            assert (row["runs"], row["failures"]) == (evidence.runs, evidence.failure_count)
            expected = _policy_median(evidence, key)
            assert row["median"] == (pytest.approx(expected) if expected is not None else None)
            # ... and both are the median of the successful runs' values (of that load kind), in Python.
            m = METRICS[key]
            values = [v for v, status, kind in scoped.filter(device_id=device, compute_units=unit)
                      .values_list(m.column, "status", "load_kind")
                      if v is not None and status == "ok" and (m.load_kind is None or kind == m.load_kind)]
            assert row["timed_runs"] == len(values)
            assert row["median"] == (pytest.approx(statistics.median(values)) if values else None)
