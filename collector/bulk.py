"""Bulk loading of trusted runs (demo data, the fleet simulator, benchmarks).

Rows are built exactly as an upload builds them (same validation, same summary, same body hash, so a later upload
of the same run is a duplicate). On PostgreSQL they go in with COPY; elsewhere with bulk_create.
"""
import itertools

from django.db import connection, transaction

from .ingest import _devices, _model_versions, _row, body_hash
from .models import ComputePlanEntry, Project, Run
from .schema import RunIn

CHUNK = 5000


def bulk_load(project_slug: str, runs, chunk: int = CHUNK) -> int:
    """Validate and store runs (dicts of the wire format) in chunks; returns how many were stored."""
    project, _ = Project.objects.get_or_create(slug=project_slug, defaults={"name": project_slug})
    total = 0
    runs = iter(runs)
    while batch := list(itertools.islice(runs, chunk)):
        validated = [RunIn.model_validate(r) for r in batch]
        total += store_rows(project, validated, prepared_rows(project, validated))
    return total


def prepared_rows(project, runs: list[RunIn]) -> list[Run]:
    """Unsaved Run objects for validated runs (creating their model versions and devices)."""
    from django.utils import timezone

    versions = _model_versions(project, runs)
    devices = _devices({r.device.identifier for r in runs})
    now = timezone.now()
    return [_row(project, r, body_hash(r), versions, devices, now) for r in runs]


def store_rows(project, runs: list[RunIn], rows: list[Run]) -> int:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            copy_rows(rows)
            plans = [(row.run_id, r.compute_plan) for row, r in zip(rows, runs) if r.compute_plan]
            if plans:
                ids = dict(Run.objects.filter(run_id__in=[p[0] for p in plans]).values_list("run_id", "id"))
                ComputePlanEntry.objects.bulk_create(
                    ComputePlanEntry(run_id=ids[rid], op=o.op, op_type=o.type, device=o.device,
                                     estimated_cost=o.estimated_cost)
                    for rid, plan in plans for o in plan
                )
        else:
            Run.objects.bulk_create(rows, batch_size=500)
            ComputePlanEntry.objects.bulk_create(
                ComputePlanEntry(run=row, op=o.op, op_type=o.type, device=o.device, estimated_cost=o.estimated_cost)
                for row, r in zip(rows, runs) for o in r.compute_plan or ()
            )
    return len(rows)


def copy_rows(rows: list[Run]) -> None:
    """COPY unsaved Run objects into their table (PostgreSQL only)."""
    fields = [f for f in Run._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {Run._meta.db_table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields])
