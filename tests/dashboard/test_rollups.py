"""Rollups give the same answers as the live queries, and are recomputed when runs of their version arrive."""
import pytest

from collector.bulk import bulk_load
from collector.models import Project
from dashboard import queries, rollups
from dashboard.filters import Filters
from dashboard.models import CellRollup, RollupState
from tests.broker import broker  # noqa: F401


def scope_for(**filters):
    return queries.resolve_scope(Project.objects.all(), Filters(**filters))


def same_stats(a, b):
    assert {d.name for d in a} == {d.name for d in b}
    for (da, ua), (db, ub) in zip(a.items(), b.items()):
        assert da.name == db.name and set(ua) == set(ub)
        for unit in ua:
            x, y = ua[unit], ub[unit]
            assert (x.runs, x.failures) == (y.runs, y.failures)
            for key in y.medians:  # the live query's metrics (the rollup has more)
                assert x.counts[key] == y.counts[key]
                assert x.medians[key] == (pytest.approx(y.medians[key]) if y.medians[key] is not None else None)


@pytest.mark.parametrize("by", ["device", "chip"])
def test_overview_from_rollup_equals_live(demo, by):
    scope = scope_for(chip="A15 Bionic" if by == "device" else "", compute_units=("all", "cpuAndGPU"))
    assert rollups.applicable(scope.filters)
    same_stats(rollups.overview_stats(scope, by), queries.device_unit_stats(scope.runs(), by=by))


def test_compare_and_versions_from_rollup_equal_live(demo):
    scope = scope_for()
    dist, timings = rollups.compare_data(scope, "load_cold", by="chip")
    live = queries.distribution_by_unit(scope.runs(), "load_cold", by="chip")
    for (a, ua), (b, ub) in zip(dist.items(), live.items()):
        assert a.name == b.name
        for unit in ua:
            assert ua[unit].median == pytest.approx(ub[unit].median) and ua[unit].n == ub[unit].n
            assert ua[unit].q3 == pytest.approx(ub[unit].q3) and ua[unit].failures == ub[unit].failures
    live_timings = queries.unit_timings(scope.runs())
    assert [(t.compute_units, t.runs, t.warm_runs) for t in timings] == \
        [(t.compute_units, t.runs, t.warm_runs) for t in live_timings]
    assert [t.stages["cold"]["load"] for t in timings] == pytest.approx([t.stages["cold"]["load"] for t in live_timings])
    by_version = rollups.metric_by_version(scope, "prediction")
    live_versions = queries.metric_by_version(scope, "prediction")
    assert {d.name for d in by_version} == {d.name for d in live_versions}
    for d, units in live_versions.items():
        got = next(units_ for info, units_ in by_version.items() if info.name == d.name)
        for unit, per_version in units.items():
            for version, band in per_version.items():
                assert got[unit][version].median == pytest.approx(band.median)
                assert got[unit][version].low == pytest.approx(band.low)


def test_coverage_from_rollup_equals_live(demo):
    scope = scope_for()
    assert [c.to_dict() for c in rollups.coverage(scope)] == [c.to_dict() for c in queries.coverage(scope, "version")]


@pytest.mark.parametrize("source", ["lab", "field"])
def test_source_cells_from_rollup_equal_live(demo, source):
    scope = scope_for(source=source)
    assert rollups.applicable(scope.filters)
    same_stats(rollups.overview_stats(scope, "chip"), queries.device_unit_stats(scope.runs(), by="chip"))
    dist, timings = rollups.compare_data(scope, "prediction", by="chip")
    live = queries.unit_timings(scope.runs())
    assert [(t.compute_units, t.runs, t.warm) for t in timings] == [(t.compute_units, t.runs, t.warm) for t in live]
    assert rollups.metric_by_day(scope, "prediction") is None and rollups.fleet_data(scope) is None


def test_narrowing_filters_bypass_rollups(demo):
    for narrowing in ({"os_min": 18}, {"device": "iPhone14,5"}, {"variant": "x"}, {"since": "2026-11-01"}):
        assert not rollups.applicable(Filters(**narrowing))
    assert not rollups.applicable(Filters(source="lab"), by_source=False)
    scope = scope_for(os_min=18)
    stats = rollups.overview_stats(scope, "chip")
    assert not RollupState.objects.exists()
    same_stats(stats, queries.device_unit_stats(scope.runs(), by="chip"))


def test_rollup_is_recomputed_when_its_version_gets_runs(demo, fleet_runs, settings, make_run, broker):  # noqa: F811
    broker.none()  # no worker: the page view recomputes (CI sets a broker)
    scope = scope_for(model="face-retouch", version="3.2.0")
    first = rollups.current(scope.model_version)
    assert first.runs == scope.runs().count() and CellRollup.objects.filter(model_version=scope.model_version).exists()
    settings.PERFBOARD = {**settings.PERFBOARD, "DASHBOARD_ROLLUP_MAX_AGE": 3600}
    bulk_load("demo", [make_run(model={"name": "face-retouch", "version": "3.2.0"})])
    assert rollups.current(scope.model_version).runs == first.runs  # young enough: served as it is
    settings.PERFBOARD = {**settings.PERFBOARD, "DASHBOARD_ROLLUP_MAX_AGE": 0}
    assert rollups.current(scope.model_version).runs == first.runs + 1
    # Runs of another version do not make this one recompute.
    bulk_load("demo", [make_run(model={"name": "segmenter-lite", "version": "2.0.0"})])
    before = RollupState.objects.get(pk=scope.model_version.pk).computed_at
    state = rollups.current(scope.model_version)
    assert state.computed_at == before and state.max_run_id == scope.runs().model.objects.order_by("-id")[0].id


def test_refresh_command(demo):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("refresh_dashboard_rollups", "--project", "demo", stdout=out)
    assert RollupState.objects.count() == 6 and "face-retouch 3.3.0" in out.getvalue()


def test_fleet_and_daily_series_from_rollups_equal_live(demo):
    scope = scope_for()
    counts, outcomes = rollups.fleet_data(scope)
    live = queries.fleet_counts(scope.runs("project"))
    assert {k: counts[k] for k in ("runs", "devices", "versions", "failures")} == \
        {k: live[k] for k in ("runs", "devices", "versions", "failures")}
    assert (counts["first"], counts["last"]) == (live["first"], live["last"])
    key = lambda o: (o["compute_units"], o["status"], o["failure_stage"])  # noqa: E731
    assert sorted(outcomes, key=key) == sorted(queries.failures_by_unit(scope.runs("project")), key=key)

    series, starts = rollups.metric_by_day(scope, "prediction")
    live_series, live_starts = queries.metric_by_day(scope, "prediction")
    assert starts == live_starts
    per_day = {}
    for (unit, _), days in series.items():
        for day, band in days.items():
            per_day[(unit, day)] = per_day.get((unit, day), 0) + band.n
    assert per_day == {(unit, day): band.n for unit, days in live_series.items() for day, band in days.items()}


def test_rollups_of_an_older_format_are_recomputed(demo):
    scope = scope_for()
    state = rollups.current(scope.model_version)
    RollupState.objects.filter(pk=state.pk).update(format=rollups.FORMAT - 1)
    assert rollups.current(scope.model_version).format == rollups.FORMAT


def test_with_a_worker_a_stale_rollup_is_refreshed_by_a_task(demo, settings, make_run, broker):  # noqa: F811
    from dashboard import tasks

    scope = scope_for(model="face-retouch", version="3.2.0")
    first = rollups.current(scope.model_version)
    broker.up()  # a real Redis: the task is queued, and read back from it
    settings.PERFBOARD = {**settings.PERFBOARD, "DASHBOARD_ROLLUP_MAX_AGE": 0}
    bulk_load("demo", [make_run(model={"name": "face-retouch", "version": "3.2.0"})])
    assert rollups.current(scope.model_version).runs == first.runs  # served as it is meanwhile
    assert rollups.current(scope.model_version).runs == first.runs  # ... and queued once
    assert [m["args"] for m in broker.take(tasks.refresh_rollup.name)] == [[scope.model_version.pk]]
    assert tasks.refresh_rollup(scope.model_version.pk) == first.runs + 1


def test_beat_refreshes_the_stale_rollups_only(demo, settings, make_run):
    from dashboard import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["refresh-dashboard-rollups"]
    assert entry["task"] == tasks.refresh_stale_rollups.name and entry["schedule"] > 0
    scope = scope_for(model="face-retouch", version="3.2.0")
    assert tasks.refresh_stale_rollups() == 6  # none computed yet: every version of the demo
    assert tasks.refresh_stale_rollups() == 0
    before = {s.pk: s.computed_at for s in RollupState.objects.all()}
    bulk_load("demo", [make_run(model={"name": "face-retouch", "version": "3.2.0"})])
    assert list(rollups.stale_versions()) == [scope.model_version]
    assert tasks.refresh_stale_rollups() == 1
    after = {s.pk: s.computed_at for s in RollupState.objects.all()}
    assert [pk for pk in after if after[pk] != before[pk]] == [scope.model_version.pk]
    assert RollupState.objects.get(pk=scope.model_version.pk).runs == scope.runs().count()
