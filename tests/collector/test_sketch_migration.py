"""Migrations 0006-0026: sketch rows written before the optimization hints were a row key are rebuilt keyed by them,
so a fastPrediction configuration's runs are not pooled with the default's; rows written before 0017 get its column
(decrypt + compile + load); runs stored before 0018 are in its source-and-OS rows, those that name a variant before
0019 in its variant rows; rows written before 0022 count their failures by stage; 0023 moves the configuration rows'
hot sketches into the row, answers unchanged; runs stored before 0026 are in its per-source rows. Run on PostgreSQL
too (it refuses to alter a table with pending foreign-key checks in the same transaction)."""
import pytest

from collector import sketches
from collector.bulk import bulk_load
from collector.evidence import failures_by_stage, gather, gather_from_runs
from collector.models import Run, RunSketch
from tests.migrations import latest_schema_after, migrate, migrate_to_latest  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("latest_schema_after")]

BEFORE, AFTER = [("collector", "0005_run_optimization_hints")], [("collector", "0022_sketch_failure_stages")]


def test_sketch_rows_are_rebuilt_per_configuration(project, make_run):
    hinted = {"specialization_strategy": "fastPrediction"}
    bulk_load(project.slug, [make_run(compute_units="all", predictions_ms=[9.0, 9.0]) for _ in range(12)]
              + [make_run(compute_units="all", optimization_hints=hinted, predictions_ms=[3.0, 3.0])
                 for _ in range(12)])
    RunSketch.objects.all().delete()  # the rows as the old key could not hold them apart
    migrate(BEFORE)
    migrate(AFTER)
    assert {(r.specialization_strategy, r.runs) for r in RunSketch.objects.all()} == {("default", 12),
                                                                                       ("fastPrediction", 12)}
    migrate_to_latest()
    by = ("compute_units", "specialization_strategy")
    sketched = {e.group: (e.runs, e.median("prediction")) for e in gather(Run.objects.all(), by, ["prediction"])}
    assert sketched == {("all", "default"): (12, 9.0), ("all", "fastPrediction"): (12, 3.0)}
    assert sketched == {e.group: (e.runs, e.median("prediction"))
                        for e in gather_from_runs(Run.objects.all(), by, ["prediction"])}


def test_rows_written_before_the_load_sum_was_sketched_get_it(project, make_run):
    from policy.queries import AB_SKETCHED

    ready = AB_SKETCHED["load"]
    stages = {"cold": {"compile": 400.0, "load": 90.0}, "in_memory": {"decrypt": 25.0, "compile": 380.0, "load": 30.0},
              "cached": {"load": 20.0}}
    bulk_load(project.slug, [make_run(load_kind=kind, timings_ms={**timings, "first_prediction": 9.0})
                             for kind, timings in stages.items() for _ in range(4)])
    migrate([("collector", "0016_pending_runs")])
    migrate(AFTER)
    by = ("load_kind",)
    sketched = {e.group: (e.timed(ready.key), e.median(ready.key)) for e in gather(Run.objects.all(), by, [ready])}
    assert sketched == {("cold",): (4, 490.0), ("in_memory",): (4, 435.0), ("cached",): (4, 20.0)}
    assert sketched == {e.group: (e.timed(ready.key), e.median(ready.key))
                        for e in gather_from_runs(Run.objects.all(), by, [ready])}


def test_runs_stored_before_the_source_and_os_rows_are_in_them(project, make_run):
    bulk_load(project.slug, [make_run(device={"identifier": "iPhone15,2", "os_version": os}, source=source)
                             for os in ("18.1", "18.2", "26.0") for source in ("lab", "field") for _ in range(3)])
    sketches.fold_pending()  # in their rows (with a task broker the upload listed them), so only the rows answer
    migrate([("collector", "0017_sketch_ready")])
    migrate(AFTER)
    runs = Run.objects.filter(source="field", os_major__gte=18)
    by = ("os_major", "compute_units")
    sketched = {e.group: (e.runs, e.median("prediction")) for e in gather(runs, by, ["prediction"])}
    assert {group: runs for group, (runs, _) in sketched.items()} == {(18, "all"): 6, (26, "all"): 3}
    assert sketched == {e.group: (e.runs, e.median("prediction")) for e in gather_from_runs(runs, by, ["prediction"])}


def test_runs_stored_before_the_variant_rows_are_in_them(project, make_run):
    bulk_load(project.slug, [make_run(device={"identifier": identifier, "os_version": "18.1"}, variant=variant)
                             for identifier in ("iPhone15,2", "iPhone16,1") for variant in ("prewarm", "baseline", None)
                             for _ in range(3)])
    sketches.fold_pending()
    migrate([("collector", "0018_sketch_source_os")])
    migrate(AFTER)
    from collector.models import RunSketchVariant

    assert sum(RunSketchVariant.objects.values_list("runs", flat=True)) == 12  # the runs that name a variant
    runs, by = Run.objects.filter(variant="prewarm"), ("device", "compute_units")
    sketched = {e.group: (e.runs, e.median("prediction")) for e in gather(runs, by, ["prediction"])}
    assert {group: n for group, (n, _) in sketched.items()} == {(d, "all"): 3 for d in
                                                                  Run.objects.values_list("device", flat=True)}
    assert sketched == {e.group: (e.runs, e.median("prediction")) for e in gather_from_runs(runs, by, ["prediction"])}


def test_rows_written_before_the_failure_stages_count_them(project, make_run):
    failed = {"compile": 2, "load": 3, "prediction": 1}
    bulk_load(project.slug, [make_run(compute_units=units, status="crash", failure={"stage": stage, "message": "m"})
                             for units in ("all", "cpuAndGPU") for stage, n in failed.items() for _ in range(n)]
              + [make_run() for _ in range(4)])
    sketches.fold_pending()
    migrate([("collector", "0021_run_project_time_id")])
    migrate(AFTER)
    assert failures_by_stage(Run.objects.all(), ("compute_units",)) == {("all",): failed, ("cpuAndGPU",): failed}


def test_configuration_rows_kept_in_the_row_answer_as_before(project, make_run):
    from django.db import connection

    from collector.models import RunSketchConfiguration
    from collector.sketches import COLUMNS

    def chunks_out_of_line():  # the TOAST table's chunks of the configuration rows' values (PostgreSQL)
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltoastrelid::regclass::text FROM pg_class "
                           "WHERE relname = 'collector_runsketchconfiguration'")
            cursor.execute(f"SELECT COUNT(*) FROM {cursor.fetchone()[0]}")
            return cursor.fetchone()[0]

    # ~1,000 distinct values a sketch (~2.6 KB), past the 2 KB a row holds before PostgreSQL moves values out of it
    bulk_load(project.slug, [make_run(compute_units=units, load_kind=kind,
                                      predictions_ms=[5.0 + i * 7919 % 1000 / 997, 6.0])
                             for units in ("all", "cpuOnly") for kind in ("cold", "cached") for i in range(1000)])
    sketches.fold_pending()
    migrate([("collector", "0022_sketch_failure_stages")])
    stored = {r.pk: [bytes(getattr(r, c) or b"") for c in COLUMNS] for r in RunSketchConfiguration.objects.all()}
    by, metrics = ("compute_units", "load_kind"), ["prediction", "first_prediction", "load_cold", "load_cached"]
    before = {e.group: (e.runs, {m: e.median(m) for m in metrics}) for e in gather(Run.objects.all(), by, metrics)}
    out_of_line = chunks_out_of_line() if connection.vendor == "postgresql" else None
    migrate([("collector", "0023_sketch_configuration_inline")])
    assert {r.pk: [bytes(getattr(r, c) or b"") for c in COLUMNS]
            for r in RunSketchConfiguration.objects.all()} == stored
    assert {e.group: (e.runs, {m: e.median(m) for m in metrics})
            for e in gather(Run.objects.all(), by, metrics)} == before
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT attname, attstorage FROM pg_attribute WHERE attrelid = "
                           "'collector_runsketchconfiguration'::regclass AND attname IN "
                           "('prediction_median_ms', 'load_ms', 'first_prediction_ms', 'prediction_p90_ms')")
            assert dict(cursor.fetchall()) == {"prediction_median_ms": "m", "load_ms": "m",
                                               "first_prediction_ms": "m", "prediction_p90_ms": "e"}
        assert chunks_out_of_line() < out_of_line  # the stored rows' warm-prediction sketches moved into the rows


def test_runs_stored_before_the_per_source_rows_are_in_them(project, make_run):
    """0026 fills its new tier from the stored runs: a field-only question merges it, with the runs' own answer."""
    from collector.models import RunSketchSource

    bulk_load(project.slug, [make_run(device={"identifier": identifier, "os_version": os}, source=source,
                                      predictions_ms=[float(i), float(i) + 1])
                             for identifier in ("iPhone15,2", "iPhone16,1") for os in ("18.1", "26.0")
                             for source in ("lab", "field") for i in range(3)])
    sketches.fold_pending()
    migrate([("collector", "0025_sketch_source_os_project_index")])
    migrate_to_latest()
    assert sum(RunSketchSource.objects.values_list("runs", flat=True)) == Run.objects.count() == 24
    runs, by = Run.objects.filter(source="field"), ("device", "compute_units")
    assert sketches.tier_for(sketches.sketch_filter(runs), ["device_id", "compute_units"]) is RunSketchSource
    sketched = {e.group: (e.runs, e.median("prediction")) for e in gather(runs, by, ["prediction"])}
    assert {group: n for group, (n, _) in sketched.items()} == {(d, "all"): 6 for d in
                                                                  Run.objects.values_list("device", flat=True)}
    assert sketched == {e.group: (e.runs, e.median("prediction")) for e in gather_from_runs(runs, by, ["prediction"])}
