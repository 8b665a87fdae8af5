"""URL filters: parsing, validation, query strings and narrowing a Run queryset."""
from datetime import date

from django.http import QueryDict

from collector.models import Run
from dashboard.filters import Filters


def parse(qs):
    return Filters.from_query(QueryDict(qs))


def test_parses_every_filter():
    f = parse("project=demo&model=face-retouch&version=3.3.0&device=iPhone15,2&chip=A16+Bionic&os_min=17&os_max=26"
              "&compute_units=all&compute_units=cpuOnly&source=field&variant=prewarm&since=2026-11-01&until=2026-11-20")
    assert f == Filters("demo", "face-retouch", "3.3.0", "iPhone15,2", "A16 Bionic", 17, 26, ("cpuOnly", "all"),
                        "field", "prewarm", date(2026, 11, 1), date(2026, 11, 20))
    assert not f.errors and f.is_narrowed
    hinted = parse("specialization_strategy=fastPrediction")
    assert hinted.specialization_strategy == "fastPrediction" and hinted.is_narrowed and parse(hinted.query()) == hinted
    assert parse("specialization_strategy=fast").errors


def test_invalid_values_are_dropped_and_reported():
    f = parse("compute_units=gpuOnly&os_min=abc&source=cloud&since=yesterday&model=face-retouch")
    assert f.model == "face-retouch"
    assert f.compute_units == () and f.os_min is None and f.source == "" and f.since is None
    assert {e.split(":")[0] for e in f.errors} == {"compute_units", "os_min", "source", "since"}


def test_os_range_is_put_in_order():
    f = parse("os_min=26&os_max=17")
    assert (f.os_min, f.os_max) == (17, 26)


def test_query_round_trips_and_applies_changes():
    f = parse("project=demo&compute_units=all&compute_units=cpuAndGPU&since=2026-11-01")
    assert parse(f.query()) == f
    changed = parse(f.query(compute_units=(), chip="A15 Bionic", metric="crash_rate"))
    assert changed.compute_units == () and changed.chip == "A15 Bionic"
    assert "metric=crash_rate" in f.query(metric="crash_rate")
    assert "since" not in f.query(since=None)


def test_apply_narrows_runs(demo):
    runs = Run.objects.all()
    total = runs.count()
    assert Filters().apply(runs).count() == total
    checks = [
        (Filters(chip="A15 Bionic"), lambda r: r.device.chip == "A15 Bionic"),
        (Filters(device="iPhone16,1"), lambda r: r.device.identifier == "iPhone16,1"),
        (Filters(os_min=18, os_max=18), lambda r: r.os_major == 18),
        (Filters(compute_units=("all",)), lambda r: r.compute_units == "all"),
        (Filters(source="lab"), lambda r: r.source == "lab"),
        (Filters(variant="prewarm"), lambda r: r.variant == "prewarm"),
        (Filters(variant="none"), lambda r: r.variant == ""),
        (Filters(model="segmenter-lite"), lambda r: r.model_version.name == "segmenter-lite"),
        (Filters(since=date(2026, 11, 20), until=date(2026, 11, 21)),
         lambda r: date(2026, 11, 20) <= r.started_at.date() <= date(2026, 11, 21)),
    ]
    for f, ok in checks:
        narrowed = f.apply(runs).select_related("device", "model_version")
        n = narrowed.count()
        assert 0 < n < total, f
        assert all(ok(r) for r in narrowed), f
        assert n == sum(ok(r) for r in runs.select_related("device", "model_version")), f


def test_skip_leaves_a_filter_out(demo):
    runs = Run.objects.all()
    assert Filters(model="nope").apply(runs).count() == 0
    assert Filters(model="nope").apply(runs, skip=("model",)).count() == runs.count()
