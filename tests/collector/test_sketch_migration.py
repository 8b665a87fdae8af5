"""Migrations 0006-0012: sketch rows written before the optimization hints were a row key are rebuilt keyed by them,
so a fastPrediction configuration's runs are not pooled with the default's. Run on PostgreSQL too (it refuses to alter
a table with pending foreign-key checks in the same transaction)."""
import pytest

from collector.bulk import bulk_load
from collector.evidence import gather, gather_from_runs
from collector.models import Run, RunSketch
from tests.migrations import latest_schema_after, migrate, migrate_to_latest  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("latest_schema_after")]

BEFORE, AFTER = [("collector", "0005_run_optimization_hints")], [("collector", "0012_sketch_version_days")]


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
    migrate_to_latest()  # today's evidence query reads the pending list too (0016)
    by = ("compute_units", "specialization_strategy")
    sketched = {e.group: (e.runs, e.median("prediction")) for e in gather(Run.objects.all(), by, ["prediction"])}
    assert sketched == {("all", "default"): (12, 9.0), ("all", "fastPrediction"): (12, 3.0)}
    assert sketched == {e.group: (e.runs, e.median("prediction"))
                        for e in gather_from_runs(Run.objects.all(), by, ["prediction"])}
