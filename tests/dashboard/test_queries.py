"""Database aggregates: percentiles agree with numpy on PostgreSQL and SQLite; the page queries match Python."""
import numpy as np
import pytest
from django.db.models import Q

from collector.models import Project, Run
from dashboard import queries
from collector.aggregates import Median, Percentile
from dashboard.filters import Filters


@pytest.mark.parametrize("p", [0.05, 0.25, 0.5, 0.75, 0.95])
def test_percentile_matches_numpy(demo, p):
    values = [v for v in Run.objects.values_list("prediction_median_ms", flat=True) if v is not None]
    got = Run.objects.aggregate(x=Percentile("prediction_median_ms", p))["x"]
    assert got == pytest.approx(float(np.percentile(values, p * 100)))


def test_median_per_group_with_filter(demo):
    rows = Run.objects.values("compute_units").annotate(m=Median("load_ms", filter=Q(load_kind="cold")))
    for row in rows:
        values = list(Run.objects.filter(compute_units=row["compute_units"], load_kind="cold",
                                         load_ms__isnull=False).values_list("load_ms", flat=True))
        assert row["m"] == pytest.approx(float(np.median(values)))


def test_percentile_of_nothing_is_none(db):
    assert Run.objects.aggregate(x=Median("load_ms"))["x"] is None
    with pytest.raises(ValueError):
        Percentile("load_ms", 1.5)


def test_device_unit_stats_counts_and_failures(demo):
    scope = queries.resolve_scope(Project.objects.all(), Filters(model="face-retouch", version="3.3.0"))
    stats = queries.device_unit_stats(scope.runs())
    runs = Run.objects.filter(model_version=scope.model_version)
    assert sum(s.runs for u in stats.values() for s in u.values()) == runs.count()
    assert sum(s.failure_count for u in stats.values() for s in u.values()) == runs.exclude(status="ok").count()
    ranks = [d.chip_rank for d in stats]
    assert ranks == sorted(ranks)  # rows by chip generation
    chips = queries.device_unit_stats(scope.runs(), by="chip")
    assert sum(s.runs for u in chips.values() for s in u.values()) == runs.count()
    assert len({d.chip for d in chips}) == len(chips)


def test_resolve_scope_defaults_and_unknown_project(demo):
    scope = queries.resolve_scope(Project.objects.all(), Filters())
    assert scope.project.slug == "demo" and scope.filters.model == "face-retouch"
    assert scope.filters.version == "3.3.0"  # highest version of the first model
    assert [mv.version for mv in scope.versions] == ["3.1.0", "3.2.0", "3.3.0"]
    nothing = queries.resolve_scope(Project.objects.all(), Filters(project="secret"))
    assert nothing.project is None and not nothing.runs().exists()


def test_a_version_uploaded_only_for_profiling_never_becomes_the_default(demo, member_client):
    """Issue 12, item 2: uploading face-retouch 3.4.0-int8 for a lint job (a model version without runs) made it
    the default of every page: "0 runs, 0 devices — No runs match these filters"."""
    from collector.models import ModelVersion

    ModelVersion.objects.create(project=demo, name="face-retouch", version="3.4.0-int8")
    ModelVersion.objects.create(project=demo, name="aaa-profiled-only", version="1.0.0")  # first by name, no runs
    scope = queries.resolve_scope(Project.objects.all(), Filters())
    assert (scope.filters.model, scope.filters.version) == ("face-retouch", "3.3.0")
    assert scope.runs().exists()
    # It stays listed and can be asked for by name.
    assert "3.4.0-int8" in [mv.version for mv in scope.versions]
    asked = queries.resolve_scope(Project.objects.all(), Filters(model="face-retouch", version="3.4.0-int8"))
    assert asked.model_version.version == "3.4.0-int8" and not asked.runs().exists()
    # A model with no run at all still shows its newest version.
    only = queries.resolve_scope(Project.objects.all(), Filters(model="aaa-profiled-only"))
    assert only.model_version.version == "1.0.0"
    # The pages' defaults, the policy pages' included, are the same version.
    for url in ("/", "/compare", "/policy", "/policy/cold-start"):
        page = member_client.get(url).content.decode()
        assert "face-retouch 3.3.0" in page, url
        assert "No runs" not in page, url


def test_median_band_is_notch_interval():
    band = queries.median_band(10.0, 8.0, 12.0, 16)
    assert (band.low, band.high) == pytest.approx((10.0 - 1.57, 10.0 + 1.57))
    assert queries.median_band(None, None, None, 0).low is None


def test_daily_series_keeps_versions_apart(project, make_run):
    """Two versions live on the same day are two segments of the versions page's daily chart, never one pooled
    median: 3.3.0's slowdown shows on the day it shipped."""
    from collector.bulk import bulk_load
    from tests.conftest import RUN

    day = "2026-11-20T10:00:00Z"
    bulk_load(project.slug, [make_run(model={**RUN["model"], "name": "m", "version": version}, started_at=day,
                                      predictions_ms=[ms, ms]) for version, ms in (("1.0", 10.0), ("1.1", 20.0))
                             for _ in range(3)])
    scope = queries.resolve_scope(Project.objects.all(), Filters(model="m", version="1.1"))
    by_day, starts = queries.metric_by_day(scope, "prediction")
    medians = {key: [band.median for band in days.values()] for key, days in by_day.items()}
    assert medians == {("all", "1.0"): [10.0], ("all", "1.1"): [20.0]}
    assert set(starts) == {"1.0", "1.1"}
