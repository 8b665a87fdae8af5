"""collector.sketches: the sketch rows behind the evidence query. Counts are exact sums; quantiles are exact while a
merged group holds every value, else within the stated rank error of the exact ones (synthetic fleet); concurrent
uploads to one row lose nothing; deleting runs rebuilds their rows; filters that are not row keys read the runs."""
import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from unittest import mock

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from benchmarks.fleet import generate
from collector import sketches
from collector.bulk import bulk_load
from collector.evidence import gather, gather_from_runs, gather_values
from collector.ingest import store_runs
from collector.models import (Device, Run, RunSketch, RunSketchConfiguration, RunSketchSource, RunSketchSourceOS,
                               RunSketchSourceOSDay, RunSketchTotal, RunSketchVariant, RunSketchVersionDay)
from collector.schema import RunIn
from collector.sketches import KEY, RANK_ERROR, key_of, sketch_filter
from dashboard.filters import Filters
from insights.vocabulary import METRICS, OK

QUANTILES = {"p10": 0.1, "median": 0.5, "p90": 0.9}


def _values(by_column, runs=None):
    """{(group...): {metric: sorted values}} of successful runs (all, or ``runs``), computed in Python from the runs."""
    out = defaultdict(lambda: defaultdict(list))
    names = {"version": "model_version_id", "compute_units": "compute_units", "chip": "device__chip",
             "specialization_strategy": "specialization_strategy", "reshape_frequency": "reshape_frequency"}
    fields = [names[b] for b in by_column]
    columns = sorted({m.column for m in METRICS.values()})
    for row in (Run.objects.all() if runs is None else runs).values(*fields, "status", "load_kind", *columns):
        if row["status"] != OK:
            continue
        group = tuple(row[f] for f in fields)
        for m in METRICS.values():
            if row[m.column] is not None and (m.load_kind is None or m.load_kind == row["load_kind"]):
                out[group][m.key].append(row[m.column])
    return {g: {k: np.sort(v) for k, v in metrics.items()} for g, metrics in out.items()}


def _within_rank(values, estimate, p, error):
    """The estimate is a value whose rank (as a fraction of the values) can be within ``error`` of p."""
    n = len(values)
    below = np.searchsorted(values, estimate, "left") / n
    at_most = np.searchsorted(values, estimate, "right") / n
    return below - error <= p <= at_most + error


@pytest.fixture
def fleet(project):
    bulk_load(project.slug, generate(4000, seed=3))
    sketches.fold_pending()  # with a task broker the uploads left their runs pending: these tests are of the rows
    return project


def _runs_read(queries) -> list:
    """The queries that read runs other than the pending ones (which an answer merges beside the rows)."""
    return [q for q in queries if '"collector_run"' in q["sql"] and 'INNER JOIN "collector_pendingrun"' not in q["sql"]]


# The last grouping is the policy's: per chip and configuration (compute units and optimization hints).
@pytest.mark.parametrize("by", [("compute_units",), ("version", "compute_units"), ("chip", "compute_units"),
                                ("chip", "compute_units", "specialization_strategy", "reshape_frequency")])
def test_sketch_quantiles_are_within_the_stated_error_of_the_exact_ones(fleet, by):
    runs = Run.objects.filter(project=fleet)
    assert sketch_filter(runs) is not None
    with CaptureQueriesContext(connection) as queries:
        sketched = {e.group: e for e in gather(runs, by, METRICS, QUANTILES)}
    assert not _runs_read(queries)  # answered by merging sketch rows alone
    exact = {e.group: e for e in gather_from_runs(runs, by, METRICS, QUANTILES)}
    values = _values(by)
    assert set(sketched) == set(exact)
    if "specialization_strategy" in by:  # the fleet's fastPrediction runs are a configuration of their own
        assert {g[2] for g in exact} == {"default", "fastPrediction"}
    estimated = _agreeing(sketched, exact, values)
    if by == ("compute_units",):
        assert estimated  # the fleet is large enough that some groups are estimated


def _agreeing(sketched, exact, values) -> int:
    """Asserts the sketched evidence has the exact counts, and quantiles exact while a group holds at most 200 values,
    else within the rank error; returns how many quantiles were estimated."""
    assert set(sketched) == set(exact)
    estimated = 0
    for group, e in exact.items():
        s = sketched[group]
        assert (s.runs, s.failures) == (e.runs, e.failures)  # exact sums
        for key in METRICS:
            assert s.timed(key) == e.timed(key)
            if not e.timed(key):
                assert s.median(key) is None
                continue
            ordered = values[group][key]
            for name, p in QUANTILES.items():
                if len(ordered) <= 200:  # every value held: exact, percentile_cont's interpolation
                    assert s.metrics[key][name] == pytest.approx(e.metrics[key][name], rel=1e-9)
                else:
                    estimated += 1
                    assert _within_rank(ordered, s.metrics[key][name], p, RANK_ERROR), (group, key, name)
    return estimated


# Several groupings of one read share its merged cells (the policy's device and chip levels): each grouping's numbers
# are its own, whether or not one of them is the cells themselves, on the configuration and the totals tiers.
@pytest.mark.parametrize("bys", [[("chip", "compute_units"), ("compute_units",), ("version", "compute_units")],
                                 [("chip", "compute_units"), ("compute_units",)]])
@pytest.mark.parametrize("field_only", [False, True])
def test_groupings_read_together_equal_each_read_alone(fleet, bys, field_only):
    from collector.evidence import gather_each

    runs = Run.objects.filter(project=fleet)
    if field_only:
        runs = runs.filter(source="field")
    together = gather_each(runs, bys, METRICS, QUANTILES)
    assert len(together) == len(bys)
    for by, evidence in zip(bys, together):
        exact = {e.group: e for e in gather_from_runs(runs, by, METRICS, QUANTILES)}
        _agreeing({e.group: e for e in evidence}, exact, _values(by, runs))


def test_sample_values_are_the_runs_values_or_within_the_rank_error(fleet):
    """What the silent-fallback test ranks (collector.evidence.gather_values): a group's values themselves while
    its sketch holds them all, else as many values, each within the stated rank error of its place."""
    runs = Run.objects.filter(project=fleet)
    with CaptureQueriesContext(connection) as queries:
        sampled = gather_values(runs, ("chip", "compute_units"), "prediction")
    assert not _runs_read(queries)
    exact = _values(("chip", "compute_units"))
    assert set(sampled) == {g for g, metrics in exact.items() if "prediction" in metrics}
    estimated = 0
    for group, sample in sampled.items():
        ordered = exact[group]["prediction"]
        values = sample.expanded()  # the sample it stands for, in order
        assert sample.n == len(values) == len(ordered)
        if len(ordered) > 200:
            assert len(sample.values) < len(ordered)  # read as the sketch's items, not one value per run
        if len(ordered) <= 200:
            assert np.array_equal(values, ordered)
        else:
            estimated += 1
            ranks = (np.arange(len(values)) + 0.5) / len(values)
            assert all(_within_rank(ordered, v, p, RANK_ERROR) for v, p in zip(values, ranks)), group
    assert estimated
    assert {g: np.sort(v.expanded()).tolist() for g, v in gather_values(runs.filter(status=OK),
                                                                         ("chip", "compute_units"),
                                                                         "prediction").items()} == \
        {g: m["prediction"].tolist() for g, m in exact.items() if "prediction" in m}  # from the runs: exact


def test_filters_that_are_row_keys_read_sketches_and_the_rest_read_runs(fleet):
    runs = Run.objects.filter(project=fleet)

    def scoped(**query):
        return Filters.from_query(QueryDict(mutable=True) | query).apply(runs)

    for query in ({}, {"os_min": "18"}, {"os_max": "17"}, {"source": "field"}, {"variant": "prewarm"},
                  {"variant": "none"}, {"chip": "A16 Bionic"}, {"device": "iPhone15,2"}, {"compute_units": "all"},
                  {"model": "face-retouch", "version": "3.2.0"}, {"since": "2026-11-01", "until": "2026-11-10"},
                  {"started_after": "2026-11-01T00:00:00Z"}, {"specialization_strategy": "fastPrediction"}):
        filtered = scoped(**query)
        assert sketch_filter(filtered) is not None, query
        sketched = {e.group: (e.runs, e.failures, e.median("load_cold"), e.timed("prediction"))
                    for e in gather(filtered, ("chip", "compute_units"), METRICS)}
        exact = {e.group: e for e in gather_from_runs(filtered, ("chip", "compute_units"), METRICS)}
        assert {g: v[:2] for g, v in sketched.items()} == {g: (e.runs, e.failures) for g, e in exact.items()}, query
        assert {g: v[3] for g, v in sketched.items()} == {g: e.timed("prediction") for g, e in exact.items()}
    # Not row keys: a status, a time bound within a day under an OR; devices excluded through their chip still are.
    assert sketch_filter(runs.filter(status="ok")) is None
    cut = datetime(2026, 11, 1, 6, tzinfo=timezone.utc)
    assert sketch_filter(runs.filter(Q(started_at__gte=cut) | Q(compute_units="all"))) is None
    assert sketch_filter(runs.filter(started_at__lte=datetime(2026, 11, 1, tzinfo=timezone.utc))) is None
    assert sketch_filter(runs.exclude(device__chip="")) is not None
    assert sketch_filter(runs.filter(device__in=Device.objects.filter(chip="A16 Bionic"))) is not None


def test_a_time_bound_within_a_day_reads_the_whole_days_rows_and_the_cut_days_runs(project, monkeypatch):
    """``started_after`` / ``started_before`` at any instant: the sketch rows answer the whole days inside the bounds
    and the runs of each day a bound cuts are read beside them (as pending runs are), so counts, failures, timed
    runs and the quantiles of groups of at most ~200 values equal the runs' own, some runs still pending, a bound on
    each side, both within one day, and bounds at midnight."""
    fleet = list(generate(1500, seed=7))
    bulk_load(project.slug, fleet[:1200])
    sketches.fold_pending()
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: False)  # as with a broker: left pending
    monkeypatch.setattr("collector.ingest.fold_soon", lambda: None)
    bulk_load(project.slug, fleet[1200:])
    runs = Run.objects.filter(project=project)
    assert runs.filter(sketch_pending__isnull=False).exists()

    def at(day, hour, minute=0):
        return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)

    for bounds in ({"started_at__gte": at(3, 6, 30)}, {"started_at__lt": at(20, 17)},
                   {"started_at__gte": at(3, 6, 30), "started_at__lt": at(20, 17)},
                   {"started_at__gte": at(9, 2), "started_at__lt": at(9, 21)},  # within one day
                   {"started_at__gte": at(9, 2), "started_at__lt": at(10, 0)},  # up to a midnight
                   {"started_at__gte": at(9, 0), "started_at__lt": at(9, 12)}):
        bounded = runs.filter(**bounds)
        assert sketch_filter(bounded) is not None, bounds
        # (a load metric alone: the runs of other load kinds are counted by the database, not read one by one)
        for by, metrics in ((("chip", "compute_units"), ["load_cold", "prediction"]), (("day",), ["load_cold"]),
                            (("chip", "compute_units"), ["load_cold"])):
            sketched = {e.group: e for e in gather(bounded, by, metrics, QUANTILES)}
            exact = {e.group: e for e in gather_from_runs(bounded, by, metrics, QUANTILES)}
            assert {g: (e.runs, e.failures) for g, e in sketched.items()} == \
                {g: (e.runs, e.failures) for g, e in exact.items()}, (bounds, by)
            for group, e in exact.items():
                for key in metrics:
                    assert sketched[group].timed(key) == e.timed(key), (bounds, group, key)
                    if e.timed(key) <= 200 and e.timed(key):
                        assert sketched[group].metrics[key].quantiles == pytest.approx(
                            e.metrics[key].quantiles, rel=1e-12), (bounds, group, key)
        assert sum(e.runs for e in gather(bounded, ("day",))) == bounded.count(), bounds


def test_a_version_answers_only_under_its_own_project(fleet, make_run):
    """A project's condition beside a model version's is asked of the version's row (not of every sketch row): the
    version's runs under its project, nothing under another project that holds the same model and version name."""
    from collector.models import ModelVersion, Project

    other = Project.objects.create(slug="other", name="Other")
    bulk_load(other.slug, [make_run(compute_units="all") for _ in range(5)])
    sketches.fold_pending()
    theirs = ModelVersion.objects.get(project=other)
    ours = ModelVersion.objects.get(project=fleet, name=theirs.name, version=theirs.version)
    by = ("chip", "compute_units")
    assert ours.runs.exists()
    for project, version, runs in ((fleet, ours, ours.runs.count()), (other, theirs, 5), (fleet, theirs, 0),
                                   (other, ours, 0)):
        scoped = Run.objects.filter(project=project, model_version=version)
        assert sketch_filter(scoped) is not None
        sketched = {e.group: (e.runs, e.failures) for e in gather(scoped, by, ["prediction"])}
        assert sketched == {e.group: (e.runs, e.failures) for e in gather_from_runs(scoped, by, ["prediction"])}
        assert sum(n for n, _ in sketched.values()) == runs


def _rows(model):
    """{key: (runs, failures)} of a sketch table's rows."""
    return {tuple(getattr(r, k) for k in key_of(model)): (r.runs, r.failures) for r in model.objects.all()}


def _daily_summed(model):
    """The daily rows summed to ``model``'s key (those of runs that name a variant, for the variant rows)."""
    out = {}
    daily = RunSketch.objects.all()
    for r in daily.exclude(variant="") if model is RunSketchVariant else daily:
        key = tuple(getattr(r, k) for k in key_of(model))
        runs, failures = out.get(key, (0, {}))
        failures = {s: failures.get(s, 0) + r.failures.get(s, 0) for s in {*failures, *r.failures}}
        out[key] = (runs + r.runs, failures)
    return out


@contextmanager
def tables_read():
    """The sketch tables the merges inside read (collector.sketches.tier_for's answers), in order."""
    read, choose = [], sketches.tier_for

    def spy(q, group_columns):
        model = choose(q, group_columns)
        read.append(model._meta.db_table)
        return model

    with mock.patch.object(sketches, "tier_for", spy):
        yield read


def _coarser_tiers_hold_the_daily_sums():
    for model in (RunSketchTotal, RunSketchSourceOS, RunSketchSource, RunSketchSourceOSDay, RunSketchConfiguration,
                  RunSketchVersionDay, RunSketchVariant):
        assert _rows(model) == _daily_summed(model), model.__name__


def test_each_question_merges_the_coarsest_rows_that_hold_its_fields(fleet):
    """A key's totals row holds its daily rows' sum, a source-and-OS row its totals rows' over every OS version of
    its major and variant, and a configuration row theirs over every OS, source and variant, so a page without a
    time bound merges one row per key however many days the runs span, one that names an OS major version (and
    perhaps a source) only one row per device, configuration, load kind, source and OS major, one that names a source
    alone one row per device, configuration, load kind and source, and one that names no OS, source or
    variant one row per device, configuration and load kind, and one of named variants one row per device,
    configuration, load kind and variant (runs without a variant are in no such row); a daily series that names no device merges one row per
    version, configuration, load kind and day (and source and OS major, when it names one); all agree with the
    runs."""
    _coarser_tiers_hold_the_daily_sums()
    assert (RunSketchConfiguration.objects.count() < RunSketchSource.objects.count()
            < RunSketchSourceOS.objects.count() < RunSketchTotal.objects.count() < RunSketch.objects.count())
    runs = Run.objects.filter(project=fleet)
    for scoped, table in ((runs, "collector_runsketchconfiguration"),
                          (runs.filter(device__chip="A16 Bionic"), "collector_runsketchconfiguration"),
                          (runs.filter(os_major__gte=18), "collector_runsketchsourceos"),
                          (runs.filter(source="field"), "collector_runsketchsource"),
                          (runs.filter(source__in=["field", "lab"]), "collector_runsketchsource"),
                          (runs.filter(source="field", os_major=18), "collector_runsketchsourceos"),
                          (runs.filter(os_version="18.1"), "collector_runsketchtotal"),
                          (runs.filter(source="field", variant="prewarm"), "collector_runsketchtotal"),
                          (runs.filter(variant="prewarm"), "collector_runsketchvariant"),
                          (runs.filter(device__chip="A16 Bionic", variant__in=["prewarm", "baseline"]),
                           "collector_runsketchvariant"),
                          # runs without a variant are in no variant row: a question of them merges the totals
                          (runs.filter(variant=""), "collector_runsketchtotal"),
                          (runs.filter(variant__in=["", "prewarm"]), "collector_runsketchtotal"),
                          (runs.exclude(variant="prewarm"), "collector_runsketchtotal"),
                          (runs.filter(started_at__gte=datetime(2026, 11, 1, tzinfo=timezone.utc)),
                           "collector_runsketch")):
        with tables_read() as read:
            sketched = {e.group: (e.runs, e.failures, e.timed("load_cold"), e.median("load_cold"))
                        for e in gather(scoped, ("chip", "compute_units"), ["load_cold"])}
        assert read == [table]
        exact = {e.group: (e.runs, e.failures, e.timed("load_cold"))
                 for e in gather_from_runs(scoped, ("chip", "compute_units"), ["load_cold"])}
        assert {g: v[:3] for g, v in sketched.items()} == exact
    # Grouping by a field only the finer tiers keep reads them.
    for by, table in ((("device", "os_major"), "collector_runsketchsourceos"),
                      (("device", "source"), "collector_runsketchsource"),
                      (("variant",), "collector_runsketchtotal"),
                      (("day", "version", "compute_units"), "collector_runsketchversionday"),
                      (("day", "version", "os_major"), "collector_runsketchsourceosday"),
                      (("day", "device"), "collector_runsketch")):
        with tables_read() as read:
            sketched = {e.group: (e.runs, e.failures, e.timed("prediction")) for e in gather(runs, by, ["prediction"])}
        assert read == [table], by
        assert sketched == {e.group: (e.runs, e.failures, e.timed("prediction"))
                            for e in gather_from_runs(runs, by, ["prediction"])}, by


@pytest.mark.parametrize("where, devices, days, table", [
    ({}, ["iPhone15,2", "iPhone16,1", "iPhone17,1", "iPhone14,7"], 1, "collector_runsketchversionday"),
    ({}, ["iPhone15,2"], 4, "collector_runsketchconfiguration"),
    ({"source": "field"}, ["iPhone15,2", "iPhone16,1", "iPhone17,1", "iPhone14,7"], 1,
     "collector_runsketchsourceosday"),
    ({"source": "field"}, ["iPhone15,2"], 4, "collector_runsketchsource"),
    ({"os_major__gte": 18}, ["iPhone15,2"], 4, "collector_runsketchsourceos"),
])
def test_a_question_both_coarse_tiers_answer_merges_the_one_with_fewer_rows(project, make_run, where, devices, days,
                                                                           table):
    """Launch stages per compute units and load kind (the compare page's, the cold-start table's) name no device and
    no day: per device over every day, or per day over every device, whichever holds fewer of the version's rows
    (many devices on one day, or one device over many days), with the runs' own answer either way; the same per
    source and OS major version when the question names one (a field-only or iOS-range view)."""
    bulk_load(project.slug, [make_run(device={"identifier": device, "os_version": "18.1"}, compute_units=units,
                                      started_at=f"2026-11-{10 + day:02d}T10:00:00Z", source=source)
                             for device in devices for day in range(days) for units in ("all", "cpuOnly")
                             for source in ("lab", "field")])
    sketches.fold_pending()
    runs, by = Run.objects.filter(**where), ("compute_units", "load_kind")
    with tables_read() as read:
        sketched = {e.group: (e.runs, e.timed("first_prediction"), e.median("first_prediction"))
                    for e in gather(runs, by, ["first_prediction"])}
    assert read == [table]
    assert sketched == {e.group: (e.runs, e.timed("first_prediction"), e.median("first_prediction"))
                        for e in gather_from_runs(runs, by, ["first_prediction"])}


def test_probe_failed_runs_timings_never_enter_a_sketch(project, make_run):
    ok = [make_run(load_kind="cold", timings_ms={"decrypt": None, "compile": 1.0, "load": 100.0,
                                                  "first_prediction": 10.0}) for _ in range(20)]
    failed = [make_run(status="crash", failure={"stage": "prediction", "message": "boom"},
                       timings_ms={"decrypt": None, "compile": 1.0, "load": 5000.0, "first_prediction": 5000.0})
              for _ in range(20)]
    bulk_load(project.slug, ok + failed)
    sketches.fold_pending()
    (row,) = RunSketch.objects.all()
    assert (row.runs, row.failures) == (40, {"crash": 20})
    (e,) = gather(Run.objects.all(), ("device",), ("load_cold", "first_prediction"))
    assert (e.median("load_cold"), e.timed("load_cold"), e.median("first_prediction")) == (100.0, 20, 10.0)


def test_deleting_runs_rebuilds_their_rows_and_rebuild_equals_incremental(fleet):
    runs = Run.objects.filter(project=fleet)
    before = {tuple(getattr(r, k) for k in KEY): (r.runs, r.failures) for r in RunSketch.objects.all()}
    call_command("rebuild_sketches", "--project", fleet.slug, stdout=open("/dev/null", "w"))
    after = {tuple(getattr(r, k) for k in KEY): (r.runs, r.failures) for r in RunSketch.objects.all()}
    assert after == before

    runs.filter(compute_units="cpuOnly", source="lab").delete()
    assert sum(RunSketch.objects.values_list("runs", flat=True)) == runs.count()
    _coarser_tiers_hold_the_daily_sums()  # the totals and configuration rows were rebuilt too
    sketched = {e.group: (e.runs, e.failures, e.timed("load_cold"), e.median("prediction"))
                for e in gather(runs, ("version", "compute_units"), METRICS)}
    exact = {e.group: (e.runs, e.failures, e.timed("load_cold"))
             for e in gather_from_runs(runs, ("version", "compute_units"), METRICS)}
    assert {g: v[:3] for g, v in sketched.items()} == exact
    Run.objects.filter(pk=runs.first().pk).first().delete()
    assert sum(RunSketch.objects.values_list("runs", flat=True)) == runs.count()


def test_failure_counts_add_up_over_uploads_that_add_some_and_none(project, make_run, monkeypatch):
    """A row's failures per status and stage are exact sums whichever uploads add to them: one with crashes, one of
    successful runs only (which leaves the stored counts as they are), one with another status and stage."""
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: True)

    def failed(status, stage):
        return make_run(status=status, failure={"stage": stage, "message": "failed in the test"})

    uploads = [[failed("crash", "load"), failed("crash", "load"), make_run()], [make_run(), make_run()],
               [failed("oom", "prediction"), failed("crash", "compile")]]
    for runs in uploads:
        store_runs(project, [RunIn.model_validate(r) for r in runs])
    for model in sketches.tiers():
        (row,) = model.objects.all()
        assert (row.runs, row.failures, row.failure_stages) == (
            7, {"crash": 3, "oom": 1}, {"load": 2, "prediction": 1, "compile": 1}), model.__name__


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_to_one_sketch_row_lose_nothing(project, make_run, monkeypatch):
    """Eight threads, each with its own connection, upload 25 runs at once into the same sketch row, each upload
    updating the row itself (as without a task broker; tests/collector/test_pending_runs.py races the folds)."""
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: True)
    threads_n, per_thread = 8, 25
    batches = [[RunIn.model_validate(make_run(timings_ms={"decrypt": None, "compile": 1.0,
                                                          "load": float(100 + t * per_thread + i),
                                                          "first_prediction": 10.0}))
                for i in range(per_thread)] for t in range(threads_n)]
    # the row exists before the race for half the threads' rows: create it with one run first
    store_runs(project, [RunIn.model_validate(make_run())])
    barrier = threading.Barrier(threads_n)
    errors = []

    def send(batch):
        try:
            barrier.wait()
            store_runs(project, batch)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (row,) = RunSketch.objects.all()
    assert row.runs == threads_n * per_thread + 1 == Run.objects.count()
    (e,) = gather(Run.objects.all(), ("device",), ("load_cold",))
    assert e.timed("load_cold") == threads_n * per_thread + 1


def test_deleting_a_version_or_a_project_deletes_its_sketch_rows(fleet):
    # The rows carry no database constraint (collector.models.SketchColumns): Django's cascade removes them.
    from collector.models import ModelVersion

    # A version without A/B runs, so in every tier but the variant rows (the project's A/B'd version is in those).
    version = ModelVersion.objects.filter(project=fleet).exclude(name="segmenter-lite").order_by("pk").first()
    assert ([model.objects.filter(model_version=version).exists() for model in sketches.tiers()]
            == [not sketches.named_variants_only(model) for model in sketches.tiers()])
    version.delete()
    assert not any(model.objects.filter(model_version_id=version.pk).exists() for model in sketches.tiers())
    assert all(model.objects.filter(project=fleet).exists() for model in sketches.tiers())
    project_id = fleet.pk
    fleet.delete()
    assert not any(model.objects.filter(project_id=project_id).exists() for model in sketches.tiers())


@pytest.mark.postgres_only
@pytest.mark.parametrize("where, table, index", [
    ({"source": "field"}, "collector_runsketchsource", "run_sketch_source_project"),
    ({"os_major__gte": 18}, "collector_runsketchsourceos", "run_sketch_sos_project"),
    ({"source": "field", "os_major__gte": 18}, "collector_runsketchsourceos", "run_sketch_sos_project"),
])
def test_a_projects_field_only_counts_are_read_from_the_index_alone(fleet, monkeypatch, where, table, index):
    """The fleet page's field-only (or iOS-range) runs, devices, versions and failures over every model
    (dashboard.queries.fleet_counts) sum the per-source (or source-and-OS) rows' counts: their project index carries
    every column the sum reads (migrations 0025, 0026), so PostgreSQL need not read the ~2 KB rows themselves. The
    plan is asked with sequential and bitmap scans off, as the planner picks an index at 1M runs: a column read that
    the index lacks makes it an Index Scan, which reads every row."""
    statements = []
    read = sketches._fetched

    def recorded(queryset):
        statements.append(queryset.query.sql_with_params())
        return read(queryset)

    monkeypatch.setattr(sketches, "_fetched", recorded)
    scoped = Run.objects.filter(project=fleet, **where)
    cells = gather(scoped, ("version", "device"))
    assert sum(e.runs for e in cells) == scoped.count() > 0
    assert sum(e.failure_count for e in cells) == scoped.exclude(status=OK).count()
    (sql, params), = statements
    assert f'FROM "{table}"' in sql
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(line for line, in cursor.fetchall())
    assert f"Index Only Scan using {index}" in plan, plan


@pytest.mark.parametrize("sizes", [[], [1], [2], [200], [201], [5000], [150] * 40, [3, 9000, 1, 777]])
def test_retained_items_and_weights_are_the_sketchs_own(sizes):
    """sketches.retained reads a sketch's items and weights from its serialization: the same as iterating it, for
    one value, for every value held, for compacted levels and for merges of many sketches."""
    rng = np.random.default_rng(len(sizes) * 31 + sum(sizes))
    merged = sketches.new_sketch()
    for size in sizes:
        part = sketches.new_sketch()
        part.update(rng.lognormal(3, 0.5, size=size))
        merged.merge(part)
    items, weights = sketches.retained(merged)
    assert sorted(zip(items.tolist(), weights.tolist())) == sorted(merged)
    assert weights.sum() == merged.n == sum(sizes)
    sample = sketches.values(merged)
    assert sample.values.tolist() == [v for v, _ in sorted(merged)]


def test_questions_of_one_request_share_one_read_of_the_rows(fleet):
    """Within shared_reads (a page asking several questions), questions over the same rows, grouped differently, some asking fewer
    metrics or naming the project beside the version, read the rows once; every answer equals its own read's."""
    from collector.evidence import gather_each

    version = Run.objects.filter(project=fleet).values_list("model_version", flat=True).first()
    scoped = Run.objects.filter(project=fleet, model_version=version, source="field")
    questions = [
        lambda: gather_each(scoped, [("device", "compute_units")], METRICS, QUANTILES),
        lambda: gather_each(Run.objects.filter(model_version=version, source="field"),
                            [("chip", "compute_units", "specialization_strategy", "reshape_frequency"),
                             ("device", "compute_units", "specialization_strategy", "reshape_frequency")],
                            ["prediction", "load_cold"], QUANTILES),
        lambda: {g: v.values.tolist() for g, v in
                 gather_values(scoped, ("device", "chip", "compute_units"), "prediction").items()},
    ]

    def answers(evidence):
        if isinstance(evidence, dict):
            return evidence
        return [{e.group: (e.runs, e.failures, dict(e.metrics)) for e in level} for level in evidence]

    alone = [answers(ask()) for ask in questions]
    with sketches.shared_reads(), mock.patch.object(sketches, "_cells", wraps=sketches._cells) as reads:
        shared = [answers(ask()) for ask in questions]
    assert shared == alone
    assert reads.call_count == 1


def test_questions_of_one_request_choose_their_table_once(fleet):
    """The fleet page's questions of a project's field runs (runs and failures per unit, failures by stage) can be
    answered by the per-device or the per-day rows: within shared_reads the rows are counted once to choose, and each
    answer equals its own read's."""
    from collector.evidence import failures_by_stage

    runs = Run.objects.filter(project=fleet, source="field")

    def ask():
        return ({e.group: (e.runs, e.failures) for e in gather(runs, ("compute_units",))},
                failures_by_stage(runs, ("compute_units",)))

    alone = ask()
    with sketches.shared_reads(), mock.patch.object(sketches, "_rows_matching",
                                                    wraps=sketches._rows_matching) as counted:
        shared = ask()
    assert shared == alone and any(alone[1].values())
    assert counted.call_count == 1


def test_one_columns_sketch_answers_a_load_kind_and_every_load_kind_at_once(fleet):
    """A question wanting a column of one load kind and of every load kind (the cold load and the load stage) files
    each row's sketch under both: neither answer takes in the other's runs."""
    from collector.evidence import gather_each
    from policy.queries import COLD_START_METRICS

    runs = Run.objects.filter(project=fleet)
    wanted = [METRICS["load_cold"], COLD_START_METRICS["load"]]
    by = ("chip", "compute_units")
    for grouped in ([by], [by, ("compute_units",)]):
        for evidence, one_by in zip(gather_each(runs, grouped, wanted, QUANTILES), grouped):
            exact = {e.group: e for e in gather_from_runs(runs, one_by, wanted, QUANTILES)}
            for e in evidence:
                for m in wanted:
                    assert e.timed(m.key) == exact[e.group].timed(m.key), (e.group, m.key)
                    if 0 < e.timed(m.key) <= sketches.K:
                        assert e.metrics[m.key]["median"] == pytest.approx(exact[e.group].median(m.key), rel=1e-12)
            assert any(e.timed("load_cold") < e.timed("stage_load") for e in evidence)


@pytest.mark.parametrize("keys", [("load_cold",), ("load_cold", "load_cached")])
@pytest.mark.parametrize("by", [("chip", "compute_units"), ("version", "compute_units")])
def test_a_question_of_load_metrics_alone_still_counts_every_run(fleet, keys, by):
    """Asked of load metrics only (the stats API's), the rows of other load kinds add their counts without their
    sketches being read: the counts and failures are every run's, the quantiles exact or within the rank error."""
    runs = Run.objects.filter(project=fleet)
    alone = {e.group: e for e in gather(runs, by, keys, QUANTILES)}
    exact = {e.group: e for e in gather_from_runs(runs, by, keys, QUANTILES)}
    values = _values(by)
    assert set(alone) == set(exact) and any(e.failures for e in exact.values())
    for group, e in exact.items():
        assert (alone[group].runs, alone[group].failures) == (e.runs, e.failures)
        for key in keys:
            assert alone[group].timed(key) == e.timed(key)
            for name, p in QUANTILES.items():
                if not e.timed(key):
                    assert alone[group].metrics[key][name] is None
                elif e.timed(key) <= 200:
                    assert alone[group].metrics[key][name] == pytest.approx(e.metrics[key][name], rel=1e-9)
                else:
                    assert _within_rank(values[group][key], alone[group].metrics[key][name], p, RANK_ERROR)
