"""Store validated runs: idempotent on run_id within a project, all-or-nothing per upload.

One upload is one transaction. A run_id already stored in the project with the same validated body is a duplicate
(nothing changes); with a different body it is a conflict (409) and nothing of the upload is stored. The same run_id
in another project is another run: projects never see, block or answer for each other's runs. Two uploads racing on
the same run_id of a project both classify it as new; the loser's insert fails on the unique (project, run_id) index
and the whole upload is retried once, when it finds the winner's row and answers duplicate.
"""
import hashlib
import time
from dataclasses import dataclass
from operator import itemgetter

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from msgspec.json import encode as encode_json  # ~10x json.dumps on float lists, the COPY's hot spot

from insights.summary import prediction_summary
from perfboard.celery import publish, runs_in_process

from .catalogue import CHIPS, DEVICES
from .models import ComputePlanEntry, Device, ModelVersion, Run, RunPredictions
from .schema import RunIn
from . import sketches

CATALOGUE = {identifier: (name, chip, ram) for identifier, name, chip, ram in DEVICES}


class Conflict(Exception):
    """A run_id is stored in the project with a different body."""

    def __init__(self, run_ids):
        super().__init__(f"run_id already stored in this project with a different body: {', '.join(run_ids)}")
        self.run_ids = run_ids


class Invalid(Exception):
    """Runs that are valid alone but not against what is stored: {index: [{"field", "message"}]}."""

    def __init__(self, errors):
        super().__init__("invalid runs")
        self.errors = errors


@dataclass
class Outcome:
    index: int
    run_id: str
    id: int
    status: str  # "created" or "duplicate"


def body_hash(run: RunIn) -> str:
    return hashlib.sha256(run.model_dump_json().encode()).hexdigest()


def store_runs(project, runs: list[RunIn]) -> list[Outcome]:
    hashes = [body_hash(r) for r in runs]
    _check_repeats_within_upload(runs, hashes)
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _store(project, runs, hashes)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _check_repeats_within_upload(runs, hashes):
    first = {}
    errors = {}
    for i, (run, h) in enumerate(zip(runs, hashes)):
        seen = first.setdefault(run.run_id, (i, h))
        if seen[0] != i and seen[1] != h:
            errors[i] = [{"field": "run_id", "message": f"also used by run {seen[0]} of this upload with another body"}]
    if errors:
        raise Invalid(errors)


def _store(project, runs, hashes):
    stored = stored_runs(project, list({r.run_id for r in runs}))
    conflicts = [str(r.run_id) for r, h in zip(runs, hashes) if r.run_id in stored and stored[r.run_id][0] != h]
    if conflicts:
        raise Conflict(sorted(set(conflicts)))

    new = {}  # run_id -> index of its first occurrence
    for i, run in enumerate(runs):
        if run.run_id not in stored:
            new.setdefault(run.run_id, i)
    fresh = [runs[i] for i in new.values()]
    versions = _model_versions(project, runs) if fresh else {}
    devices = _devices({r.device.identifier for r in fresh}) if fresh else {}
    received = timezone.now()
    rows = [_columns(project, run, hashes[i], versions, devices, received) for run, i in zip(fresh, new.values())]
    ids = insert_runs(rows)
    insert_predictions([(pk, run.predictions_ms) for pk, run in zip(ids, fresh) if run.predictions_ms])
    add_to_sketches(ids, rows)
    plan = [
        ComputePlanEntry(run_id=pk, op=op.op, op_type=op.type, device=op.device, estimated_cost=op.estimated_cost)
        for pk, run in zip(ids, fresh)
        for op in run.compute_plan or ()
    ]
    if plan:
        ComputePlanEntry.objects.bulk_create(plan, batch_size=2000)

    created = {run.run_id: pk for run, pk in zip(fresh, ids)}
    outcomes = []
    for i, run in enumerate(runs):
        if run.run_id in created and new[run.run_id] == i:
            outcomes.append(Outcome(i, str(run.run_id), created[run.run_id], "created"))
        else:
            pk = created.get(run.run_id) or stored[run.run_id][1]
            outcomes.append(Outcome(i, str(run.run_id), pk, "duplicate"))
    return outcomes


def stored_runs(project, run_ids) -> dict:
    """run_id -> (body_sha256, id) of those run_ids already stored in the project, in one query.

    Only the caller's project: a run_id is unique within a project, and another project's runs are never looked at.
    On PostgreSQL the run_ids are one uuid[] parameter (`run_id = ANY(%s::uuid[])`, the (project, run_id) index),
    not one placeholder per run: the statement's text is the same for every batch size.
    """
    if not run_ids:
        return {}
    if connection.vendor != "postgresql":
        return {row[0]: row[1:] for row in Run.objects.filter(project=project, run_id__in=run_ids)
                .values_list("run_id", "body_sha256", "id")}
    qn = connection.ops.quote_name
    sql = (f"SELECT {qn(Run._meta.get_field('run_id').column)}, {qn(Run._meta.get_field('body_sha256').column)}, "
           f"{qn(Run._meta.pk.column)} FROM {qn(Run._meta.db_table)} "
           f"WHERE {qn(Run._meta.get_field('project').column)} = %s "
           f"AND {qn(Run._meta.get_field('run_id').column)} = ANY(%s::uuid[])")
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.id, [str(i) for i in run_ids]])
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _model_versions(project, runs):
    """(name, version) -> ModelVersion, creating missing ones; a changed sha256 for a known version is refused."""
    wanted = {}
    for i, run in enumerate(runs):
        wanted.setdefault((run.model.name, run.model.version), (i, run.model))
    names = {name for name, _ in wanted}
    existing = {
        (mv.name, mv.version): mv for mv in ModelVersion.objects.filter(project=project, name__in=names)
    }
    missing = [
        ModelVersion(
            project=project, name=m.name, version=m.version, sha256=m.sha256 or "", format=m.format,
            precision=m.precision, size_bytes=m.size_bytes,
        )
        for key, (_, m) in wanted.items()
        if key not in existing
    ]
    if missing:
        ModelVersion.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {
            (mv.name, mv.version): mv for mv in ModelVersion.objects.filter(project=project, name__in=names)
        }
    errors = {}
    for i, run in enumerate(runs):
        mv = existing[(run.model.name, run.model.version)]
        if run.model.sha256 and mv.sha256 and run.model.sha256 != mv.sha256:
            errors[i] = [{
                "field": "model.sha256",
                "message": f"{mv.name} {mv.version} is stored with sha256 {mv.sha256}; "
                "a changed model needs a new version",
            }]
    if errors:
        raise Invalid(errors)
    return existing


def _devices(identifiers):
    found = {d.identifier: d for d in Device.objects.filter(identifier__in=identifiers)}
    missing = identifiers - found.keys()
    if missing:
        Device.objects.bulk_create([catalogue_device(i) for i in missing], ignore_conflicts=True)
        found = {d.identifier: d for d in Device.objects.filter(identifier__in=identifiers)}
    return found


def catalogue_device(identifier) -> Device:
    """A Device row for an identifier: from the catalogue, or kept as unknown."""
    if identifier in CATALOGUE:
        name, chip, ram = CATALOGUE[identifier]
        return Device(identifier=identifier, name=name, chip=chip, chip_rank=CHIPS[chip][0], ram_gb=ram, known=True)
    return Device(identifier=identifier, known=False)


def add_to_sketches(ids: list[int], rows: list[dict]) -> None:
    """The new runs into their sketch rows: with a task broker, listed as pending and folded in by a worker once the
    upload commits (the request does not pay the update; answers merge pending runs meanwhile); in-process, now, in
    this transaction. Either way the evidence query counts them as soon as the upload commits."""
    if runs_in_process():
        sketches.add_runs(rows)
        return
    sketches.defer(ids)
    transaction.on_commit(fold_soon)


_last_fold_queued = 0.0


def fold_soon() -> None:
    """Queue a fold of the pending runs, at most once a second per process: one fold takes every run pending when
    it runs, so a burst of uploads needs one; a fold that could not be queued is left to Celery beat's."""
    global _last_fold_queued
    now = time.monotonic()
    if now - _last_fold_queued < 1.0:
        return
    _last_fold_queued = now
    from .tasks import fold_pending_sketches

    publish(fold_pending_sketches)


RUN_COLUMNS = [f.attname for f in Run._meta.concrete_fields if not f.primary_key]


def insert_runs(rows: list[dict]) -> list[int]:
    """Insert runs given as {attname: value}; returns their ids in order.

    On PostgreSQL: ids drawn from the table's sequence, then COPY, which is several times faster than a
    multi-row INSERT built by the ORM (see benchmarks/ingest.py). Elsewhere: bulk_create.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = Run.objects.bulk_create([Run(**row) for row in rows], batch_size=500)
        return [o.id for o in objs]
    table = Run._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows)]
        )
        ids = [r[0] for r in cursor.fetchall()]
    copy_rows(rows, ids)
    return ids


def copy_rows(rows: list[dict], ids: list[int]) -> None:
    """COPY runs with the given ids (PostgreSQL only; psycopg adapts str, float, UUID, datetime, None)."""
    columns = ", ".join(connection.ops.quote_name(Run._meta.get_field(a).column) for a in ["id", *RUN_COLUMNS])
    # wrap_database_errors: a duplicate run_id must surface as Django's IntegrityError, which store_runs retries.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {Run._meta.db_table} ({columns}) FROM STDIN") as copy:
            values = itemgetter(*RUN_COLUMNS)  # one C call a run instead of a generator over 34 columns
            for pk, row in zip(ids, rows):
                copy.write_row((pk, *values(row)))


def insert_predictions(series: list[tuple[int, list[float]]]) -> None:
    """Store runs' warm predictions as (run id, series) in RunPredictions, after their runs: COPY on PostgreSQL,
    bulk_create elsewhere."""
    if not series:
        return
    if connection.vendor != "postgresql":
        RunPredictions.objects.bulk_create([RunPredictions(run_id=pk, predictions_ms=list(s)) for pk, s in series],
                                           batch_size=500)
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {RunPredictions._meta.db_table} (run_id, predictions_ms) FROM STDIN") as copy:
            for pk, values in series:
                copy.write_row((pk, encode_json(values).decode()))


def _columns(project, run: RunIn, digest, versions, devices, received) -> dict:
    """One run's column values, named by attname: what an upload stores."""
    summary = prediction_summary(run.predictions_ms)
    t = run.timings_ms
    return {
        "run_id": run.run_id,
        "body_sha256": digest,
        "project_id": project.id,
        "model_version_id": versions[(run.model.name, run.model.version)].id,
        "device_id": devices[run.device.identifier].id,
        "os_version": run.device.os_version,
        "os_major": run.os_major,
        "app_build": run.app_build,
        "source": run.source,
        "compute_units": run.compute_units,
        "specialization_strategy": run.optimization_hints.specialization_strategy,
        "reshape_frequency": run.optimization_hints.reshape_frequency,
        "variant": run.variant or "",
        "started_at": run.started_at,
        "received_at": received,
        "status": run.status,
        "failure_stage": run.failure.stage if run.failure else "",
        "failure_message": run.failure.message if run.failure else "",
        "load_kind": run.load_kind,
        "decrypt_ms": t.decrypt,
        "compile_ms": t.compile,
        "load_ms": t.load,
        "first_prediction_ms": t.first_prediction,
        "prediction_count": summary["count"],
        "prediction_min_ms": summary["min"],
        "prediction_median_ms": summary["median"],
        "prediction_p90_ms": summary["p90"],
        "prediction_p99_ms": summary["p99"],
        "prediction_mean_ms": summary["mean"],
        "prediction_std_ms": summary["std"],
        "peak_memory_mb": run.peak_memory_mb,
        "thermal_state": run.thermal_state or "",
        "has_compute_plan": bool(run.compute_plan),
    }
