"""Migrations 0010-0011: runs' warm predictions move off the run row into RunPredictions, and back when reversed.
Run on PostgreSQL too (it refuses to alter a table with pending foreign-key checks in the same transaction)."""
import json

import pytest
from django.db import connection

from collector.bulk import bulk_load
from collector.models import Run, RunPredictions
from tests.migrations import latest_schema_after, migrate  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("latest_schema_after")]

BEFORE = [("collector", "0009_sketch_configurations")]
AFTER = [("collector", "0011_remove_run_predictions_ms")]


def series_on_the_run_rows() -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT predictions_ms FROM collector_run ORDER BY id")
        return [json.loads(v) if isinstance(v, str) else v for (v,) in cursor.fetchall()]


def test_predictions_move_to_the_side_table_and_back(project, make_run):
    runs = [make_run(predictions_ms=[float(i), 2.5, 1e-3]) for i in range(3)]
    crashed = make_run(status="crash", failure={"stage": "load", "message": "boom"}, predictions_ms=[])
    bulk_load(project.slug, runs + [crashed])

    migrate(BEFORE)  # the series back on the run rows, filled from the side table
    assert series_on_the_run_rows() == [r["predictions_ms"] for r in runs] + [[]]

    migrate(AFTER)
    assert RunPredictions.objects.count() == 3  # none for the run without predictions
    assert {str(r.run_id): r.predictions_ms for r in Run.objects.all()} == {
        **{r["run_id"]: r["predictions_ms"] for r in runs}, crashed["run_id"]: []}
