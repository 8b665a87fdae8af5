"""Mergeable quantile sketches of the runs: the evidence query's fast path.

One ``RunSketch`` row per (model version, device, compute units, load kind, OS version, source, variant, optimization
hints, UTC day) holds exact counts (runs; failures per status) and, for each run column a metric reads (``COLUMNS``),
an Apache DataSketches KLL sketch (k=200, doubles) of that column's values from the row's successful runs. Coarser
tiers hold the same over more runs: one ``RunSketchTotal`` row per the key without the day; one
``RunSketchConfiguration`` row per (model version, device, configuration, load kind), over every OS version, source,
variant and day, and one ``RunSketchVersionDay`` row per (model version, configuration, load kind, day), over every
device too; ``RunSketchSourceOS`` and ``RunSketchSourceOSDay``, the same two per source and OS major version;
``RunSketchSource`` per (model version, device, configuration, load kind, source); ``RunSketchVariant`` per (model
version, device, configuration, load kind, variant) of the runs that name a variant (an A/B test's arms), over every
OS version, source and day. A load
metric is the ``load_ms`` sketch of the rows of its load kind, so the vocabulary's rule (successful runs only; load
metrics of their load kind) holds by construction. Without a task broker the upload
updates every tier in its transaction (:func:`add_runs`); with one it lists its runs as pending (:func:`defer`) and a
worker folds them in seconds later, many uploads at once (:func:`fold_pending`), while every answer merges the
pending runs' own values beside the rows. :func:`collector.evidence.gather` merges the rows whenever its filters and
grouping are row keys (:func:`sketch_filter`), from the tier of fewest rows whose key holds every field the question
names (:func:`tier_for`): a question without a time bound merges as many rows whatever the number of days and runs,
one that names no OS, source or variant (a page's default view, the policy) about a tenth of those, one that
names an OS major version (an iOS-range view, perhaps field only) about a third, one that names a source alone (a
field-only view) about an eighth, one of a named variant (an A/B test's arm) about a sixth.

Error bound (the library's, checked on the synthetic fleet by tests/collector/test_sketches.py and measured by
``python -m benchmarks.sketches``): while a merged sketch holds all its values (no compaction, at most about k=200
values) quantiles are exact, computed as ``percentile_cont`` does (linear interpolation between order
statistics). Beyond that, a quantile is a stored value whose rank is within ``RANK_ERROR`` (1.33% of the values,
99% confidence; DataSketches' ``normalized_rank_error(False)`` for k=200) of the requested rank. Counts and failure
counts are exact sums. Chosen by measurement over DDSketch (15x slower to update in Python, 40x larger rows) and
t-digest (no guaranteed bound): see benchmarks/sketches.py.
"""
import json
import struct
from collections import defaultdict
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta, timezone
from operator import itemgetter

import numpy as np
from datasketches import kll_doubles_sketch
from django.db import connection, transaction
from django.db.models import (BinaryField, Case, CharField, Count, F, FloatField, IntegerField, Max, Min, Q, Sum,
                              TextField, Value, When)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, JSONObject, TruncDate
from django.db.models.lookups import Lookup
from django.db.models.sql.where import AND, WhereNode

from insights.vocabulary import FAILURE_STATUSES, LAUNCH_STAGES, METRICS, OK, STAGES
from insights.weighted import Weighted

from .pgarrays import packed

K = 200
RANK_ERROR = kll_doubles_sketch(K).normalized_rank_error(False)

# The run columns sketched: every metric's, and each launch stage's (the compare page's load breakdown).
RUN_COLUMNS = tuple(dict.fromkeys([*(m.column for m in METRICS.values()), *(f"{s}_ms" for s in LAUNCH_STAGES)]))


def launch_ms(run) -> float | None:
    """A successful run's time to first result: decrypt + compile + load + first prediction, a stage it did not report
    counting 0 (only in-memory loads decrypt; cached loads do not compile); None without a first prediction. What
    the cold-start page's total is the median of (``collector.evidence.DERIVED`` is the same sum in SQL)."""
    first = run["first_prediction_ms"]
    if first is None:
        return None
    return (run["decrypt_ms"] or 0.0) + (run["compile_ms"] or 0.0) + (run["load_ms"] or 0.0) + first


def ready_ms(run) -> float | None:
    """A successful run's time until its model is ready to predict: decrypt + compile + load, a stage it did not
    report counting 0 as in :func:`launch_ms`; None without a load time. The cold-start A/B's "Load"."""
    load = run["load_ms"]
    if load is None:
        return None
    return (run["decrypt_ms"] or 0.0) + (run["compile_ms"] or 0.0) + load


# Sketched values no run column holds, computed from a run's columns (those it reads).
DERIVED = {"launch_ms": launch_ms, "ready_ms": ready_ms}
DERIVED_FROM = {"launch_ms": ("decrypt_ms", "compile_ms", "load_ms", "first_prediction_ms"),
                "ready_ms": ("decrypt_ms", "compile_ms", "load_ms")}
COLUMNS = (*RUN_COLUMNS, *DERIVED)
KEY = ("model_version_id", "device_id", "compute_units", "load_kind", "os_version", "source", "variant",
       "specialization_strategy", "reshape_frequency", "day")
# A run column or relation -> the RunSketch field holding it (same names); started_at is answered by day.
KEY_FIELDS = {"project", "model_version", "device", "compute_units", "load_kind", "os_version", "os_major", "source",
              "variant", "specialization_strategy", "reshape_frequency"}
RELATIONS = {"project", "model_version", "device"}  # joined through to their own fields (device__chip, ...)
# The evidence query's groups that are row keys: name -> RunSketch column.
GROUPS = {"device": "device_id", "chip": "device__chip", "compute_units": "compute_units",
          "specialization_strategy": "specialization_strategy", "reshape_frequency": "reshape_frequency",
          "version": "model_version_id", "os_major": "os_major", "variant": "variant", "source": "source",
          "load_kind": "load_kind", "day": "day"}
RUN_FIELDS = ("project_id", *KEY[:-1], "os_major", "started_at", "status", "failure_stage", *RUN_COLUMNS)
# A failed run's stage in a row's failure_stages: its failure_stage, or this where it named none.
NO_STAGE = "unknown"
STAGE_KEYS = (*STAGES, NO_STAGE)


def stage_of(failure_stage: str) -> str:
    return failure_stage or NO_STAGE


def new_sketch() -> kll_doubles_sketch:
    return kll_doubles_sketch(K)


def load(data) -> kll_doubles_sketch:
    return kll_doubles_sketch.deserialize(bytes(data))


def quantile(sketch: kll_doubles_sketch, p: float) -> float | None:
    """The p-quantile of a (merged) sketch: exact with ``percentile_cont``'s interpolation while it holds every
    value, else the sketch's estimate (rank within RANK_ERROR)."""
    if sketch.is_empty():
        return None
    if not sketch.is_estimation_mode():
        n = sketch.n
        rank = p * (n - 1)
        low = int(rank)
        a, b = sketch.get_quantiles([_order(low, n), _order(min(low + 1, n - 1), n)], True)
        return a + (b - a) * (rank - low)
    return sketch.get_quantile(p, True)


class Quantiles(Mapping):
    """{name: the p-quantile of a merged sketch} for ``{name: p}``, each computed on its first read (:func:`quantile`
    builds the sketch's sorted view): a page merges every metric a question asks for and shows few of them (the
    overview's device rows at 1M runs: five metrics merged per cell, one shown). The sketch must not change after."""

    __slots__ = ("_sketch", "_ps", "_read")

    def __init__(self, sketch: "kll_doubles_sketch | Merging", ps: Mapping[str, float]):
        self._sketch, self._ps, self._read = sketch, ps, {}

    def __getitem__(self, name: str) -> float | None:
        read = self._read
        if name not in read:
            read[name] = quantile(resolved(self._sketch), self._ps[name])
        return read[name]

    def __iter__(self):
        return iter(self._ps)

    def __len__(self) -> int:
        return len(self._ps)

    def __repr__(self) -> str:
        return repr(dict(self))


def _order(i: int, n: int) -> float:
    """The normalized rank that reads the i-th smallest (from 0) of a sketch's n values exactly: any rank in
    (i/n, (i+1)/n] does (inclusive ranks), the middle is safe from rounding."""
    return (i + 0.5) / n


def values(sketch: kll_doubles_sketch) -> Weighted:
    """A (merged) sketch's values as a weighted sample, in order: every value once while it holds them all, else its
    retained items, each standing for as many values as its weight (n in all): the stand-in sample a rank test over
    the group reads, each value within RANK_ERROR of its rank. The same sample as n values read at evenly spaced
    ranks, (i + 0.5) / n, without making them (at 1M runs a chip's sample is ~30,000 values of ~600 items)."""
    items, weights = retained(sketch)
    order = np.lexsort((weights, items))
    return Weighted(items[order], weights[order])


def retained(sketch: kll_doubles_sketch) -> tuple[np.ndarray, np.ndarray]:
    """A sketch's retained items and their weights, read from its serialization (DataSketches' KLL format: a
    20-byte preamble with n and the number of levels, the levels' start offsets, min and max, then the items level by
    level, level L weighing 2**L). Iterating the sketch in Python cost a page ~20 ms at 1M runs."""
    if sketch.is_empty():
        return np.empty(0), np.empty(0, dtype=np.int64)
    data = sketch.serialize()
    if data[3] & _SINGLE_ITEM:
        return np.frombuffer(data, "<f8", 1, 8).copy(), np.ones(1, dtype=np.int64)
    count = data[18]
    # The few level offsets in Python: numpy's per-call cost on a 5-element array was most of a read (a device-rows
    # overview reads ~240 sketches a request).
    levels = struct.unpack_from(f"<{count}I", data, 20)
    items = np.frombuffer(data, "<f8", offset=20 + 4 * count + 16)
    ends = (*levels[1:], levels[0] + len(items))
    return items.copy(), np.repeat(_LEVEL_WEIGHTS[:count], [end - start for start, end in zip(levels, ends)])


_SINGLE_ITEM = 4  # the preamble's flag of a sketch of one value (its 8 bytes follow; no levels)
_LEVEL_WEIGHTS = np.int64(1) << np.arange(62, dtype=np.int64)  # level L's items weigh 2**L


# --- writing ---------------------------------------------------------------------------------------------------

def day_of(started_at) -> "datetime.date":
    return started_at.astimezone(timezone.utc).date()


class Partial:
    """What some runs of one key add to its row."""

    __slots__ = ("project_id", "os_major", "runs", "failures", "stages", "sketches")

    def __init__(self, project_id, os_major):
        self.project_id, self.os_major = project_id, os_major
        self.runs = 0
        self.failures = defaultdict(int)
        self.stages = defaultdict(int)
        self.sketches = {}

    def merge(self, other: "Partial"):
        self.runs += other.runs
        for status, n in other.failures.items():
            self.failures[status] += n
        for stage, n in other.stages.items():
            self.stages[stage] += n
        for column, sketch in other.sketches.items():
            mine = self.sketches.get(column)
            if mine is None:
                mine = self.sketches[column] = new_sketch()
            mine.merge(sketch)

    def add(self, row):
        self.runs += 1
        if row["status"] != OK:
            self.failures[row["status"]] += 1
            self.stages[stage_of(row["failure_stage"])] += 1
            return
        for column in COLUMNS:
            value = value_of(row, column)
            if value is not None:
                sketch = self.sketches.get(column)
                if sketch is None:
                    sketch = self.sketches[column] = new_sketch()
                sketch.update(value)


def value_of(run, column: str) -> float | None:
    """A successful run's value of a sketched column ({attname: value}): its own, or derived from its columns."""
    return run[column] if column not in DERIVED else DERIVED[column](run)


def accumulate(rows, partials=None) -> dict[tuple, Partial]:
    """Runs given as {attname: value} (what ``collector.ingest`` stores) -> {row key: Partial}."""
    partials = {} if partials is None else partials
    for row in rows:
        key = (*(row[k] for k in KEY[:-1]), day_of(row["started_at"]))
        partial = partials.get(key)
        if partial is None:
            partial = partials[key] = Partial(row["project_id"], row["os_major"])
        partial.add(row)
    return partials


def tiers():
    """The sketch tables, coarsest first (:func:`tier_for`): per configuration and device, per configuration and day,
    per configuration, device and source, each of the first two per source and OS major version too, per
    configuration, device and named variant (of the runs that name one), per full key without the day, per full key
    and day."""
    from .models import (RunSketch, RunSketchConfiguration, RunSketchSource, RunSketchSourceOS, RunSketchSourceOSDay,
                         RunSketchTotal, RunSketchVariant, RunSketchVersionDay)

    return (RunSketchConfiguration, RunSketchVersionDay, RunSketchSource, RunSketchSourceOS, RunSketchSourceOSDay,
            RunSketchVariant, RunSketchTotal, RunSketch)


def named_variants_only(model) -> bool:
    """Whether a sketch table holds only the runs that name a variant (``RunSketchVariant``)."""
    return getattr(model, "named_variants_only", False)


_VARIANT = KEY.index("variant")


def rolled_up(partials: dict[tuple, Partial], model) -> dict[tuple, Partial]:
    """Daily partials (keyed by ``KEY``) -> what they add to the rows of a sketch table (``model``'s key)."""
    fields = key_of(model)
    at = [KEY.index(field) for field in fields if field in KEY]
    by_major = "os_major" in fields  # a key of the OS major version: the partial's (it follows the OS version)
    if named_variants_only(model):
        partials = {key: partial for key, partial in partials.items() if key[_VARIANT]}
    if len(at) == len(KEY):
        return partials
    out = {}
    shared = set()  # coarse keys whose value is one of ``partials`` itself, copied before anything merges into it
    for key, partial in partials.items():
        coarse = tuple(key[i] for i in at)
        if by_major:
            coarse = (*coarse, partial.os_major)
        total = out.get(coarse)
        if total is None:  # in a scattered upload most keys stand alone in every tier: their sketches are not copied
            out[coarse] = partial
            shared.add(coarse)
            continue
        if coarse in shared:
            shared.discard(coarse)
            first, total = total, Partial(total.project_id, total.os_major)
            total.merge(first)
            out[coarse] = total
        total.merge(partial)
    return out


def add_runs(rows) -> None:
    """Add stored runs to their sketch rows, every tier, in the caller's transaction (the ingest's, without a task
    broker; :func:`fold_pending`'s with one)."""
    write_all(accumulate(rows))


def defer(run_ids) -> None:
    """List stored runs as pending (``PendingRun``), in the caller's transaction: :func:`fold_pending` adds them to
    their rows later, and the evidence query merges their own values until then (:func:`merged_by`)."""
    from .models import PendingRun

    if not run_ids:
        return
    if connection.vendor != "postgresql":
        PendingRun.objects.bulk_create([PendingRun(run_id=pk) for pk in run_ids], batch_size=500)
        return
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {PendingRun._meta.db_table} (run_id) FROM STDIN") as copy:
        for pk in run_ids:
            copy.write_row((pk,))


def fold_pending(batch: int = 5000) -> int:
    """Add pending runs to their sketch rows, every tier, ``batch`` runs a transaction, until none is left; returns
    the runs added. Concurrent folds take disjoint runs (``SKIP LOCKED``) and take turns on a model version's rows
    (:func:`write`'s lock), so a run is added once."""
    folded = 0
    while True:
        with transaction.atomic():
            rows = _take_pending(batch)
            if not rows:
                return folded
            write_all(accumulate(rows))
        folded += len(rows)


def _take_pending(batch: int) -> list[dict]:
    """Remove up to ``batch`` runs from the pending list, in the caller's transaction; their RUN_FIELDS."""
    from .models import PendingRun, Run

    if connection.vendor != "postgresql":
        ids = list(PendingRun.objects.values_list("run_id", flat=True)[:batch])
        PendingRun.objects.filter(run_id__in=ids).delete()
        return list(Run.objects.filter(id__in=ids).values(*RUN_FIELDS))
    pending = PendingRun._meta.db_table
    column_of = {f.attname: f.column for f in Run._meta.concrete_fields}
    columns = ", ".join(f"r.{column_of[f]}" for f in RUN_FIELDS)
    # One statement: the runs taken and their columns (a run deleted meanwhile drops out of the join).
    sql = (f"WITH taken AS (DELETE FROM {pending} WHERE run_id IN (SELECT run_id FROM {pending} LIMIT %s "
           f"FOR UPDATE SKIP LOCKED) RETURNING run_id) "
           f"SELECT {columns} FROM {Run._meta.db_table} r JOIN taken ON r.id = taken.run_id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [batch])
        return [dict(zip(RUN_FIELDS, row)) for row in cursor.fetchall()]


def write_all(partials: dict[tuple, Partial]) -> None:
    """Daily partials into every tier's rows (writing leaves the partials as they are)."""
    for model in tiers():
        write(rolled_up(partials, model), model)


def write(partials: dict[tuple, Partial], model) -> None:
    """Merge partials into their rows: read the stored rows, merge in Python (a sketch merges only there), write
    back in one upsert. Concurrent uploads to the same model version take turns on a transaction-level advisory lock
    (PostgreSQL; SQLite serializes writers), so no merge is lost; a lock per model version instead of row locks
    spares inserting every row twice. ``model``: a sketch table (:func:`tiers`), ``partials`` keyed by its key.

    PostgreSQL reads and writes with psycopg directly (:class:`_Arrays`): each column is one array parameter, so the
    statement's text does not grow with the rows and is prepared once per connection. Django's 500-row
    ``bulk_create(update_conflicts=True)`` spent ~650 µs of worker CPU per row written, half compiling the statement
    and a third splitting its ~10,000 placeholders client-side. SQLite has no array parameters; it keeps Django's
    path (:class:`_Django`): it is the development and test database, not the one ingest throughput is asked of."""
    if not partials:
        return
    keys = sorted(partials, key=_written_order(model))
    backend = _Arrays(model) if connection.vendor == "postgresql" else _Django(model)
    with transaction.atomic():
        lock_versions(sorted({key[0] for key in keys}))
        stored = {}
        for chunk in _chunks(keys, backend.chunk):
            stored.update(backend.stored(chunk))
        rows = []
        for key in keys:
            partial = partials[key]
            runs, failures, stages, blobs = stored.get(key, (0, {}, {}, (None,) * len(COLUMNS)))
            failures, stages = _summed_counts(failures, partial.failures), _summed_counts(stages, partial.stages)
            out = []
            for column, kept in zip(COLUMNS, blobs):
                sketch = partial.sketches.get(column)
                if sketch is not None and kept is not None:
                    # the new values into the stored sketch: merging the larger into the smaller costs more
                    stored_sketch = load(kept)
                    stored_sketch.merge(sketch)
                    sketch = stored_sketch
                out.append(sketch.serialize() if sketch is not None else kept)
            kept_too = (partial.os_major,) if backend.os_major else ()
            rows.append((*key, partial.project_id, *kept_too, runs + partial.runs, failures, stages, *out))
        for chunk in _chunks(rows, backend.chunk):
            backend.upsert(chunk)


def _written_order(model):
    """The order rows are written in: by key, but a daily table's by day first. A fold writes a new day's rows as the
    day's runs arrive, so a live table keeps a day's rows together; a rebuild written by key scattered them over
    the version's rows (at 1M runs the last week's 5,372 daily rows of a version on 2,956 heap pages, the stats API's
    question of that week reading them all)."""
    key = key_of(model)
    if "day" not in key:
        return None
    at = key.index("day")
    return lambda k: (k[at], k)


_COUNTS = ("failures", "failure_stages")  # a row's exact counts, JSON objects of name -> runs


def _summed_counts(stored: "dict | str", added: dict) -> "dict | str":
    """A row's counts with a fold's added: the stored ones as they are (JSON text from PostgreSQL, a dict from
    SQLite) when it adds none, as most folds add no failure to most rows (decoding and encoding every row's counts
    took a tenth of a fold at 1M runs)."""
    if not added:
        return stored
    out = dict(json.loads(stored) if isinstance(stored, str) else stored)
    for name, n in added.items():
        out[name] = out.get(name, 0) + n
    return out


# pg_advisory_xact_lock's first key: this lock's namespace, so it cannot collide with another use of advisory locks.
_LOCK_NAMESPACE = 0x5EC7


def lock_versions(version_ids) -> None:
    """Take the write lock of these model versions' sketch rows until the transaction ends (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for version_id in version_ids:  # in one order, so two uploads of several versions cannot deadlock
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, version_id % 2**31])


def key_of(model) -> tuple[str, ...]:
    """The row key of a sketch table: the fields of KEY it has, in KEY's order, then the OS major version where the
    table keeps it without the OS version."""
    names = {f.attname for f in model._meta.fields}
    key = tuple(k for k in KEY if k in names)
    return (*key, "os_major") if "os_major" in names and "os_version" not in names else key


def _carries_os_major(model) -> bool:
    """Whether a table keeps the OS major version beside its key (it follows the key's OS version)."""
    return any(f.name == "os_major" for f in model._meta.fields) and "os_major" not in key_of(model)


def _written(model) -> tuple[str, ...]:
    """The fields a merged row gives, in its order: the key, then the rest (os_major follows the OS version)."""
    return (*key_of(model), "project_id", *(("os_major",) if _carries_os_major(model) else ()), "runs",
            *_COUNTS, *COLUMNS)


def _psycopg_cursor():
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)  # server-side binding (Django's own cursor binds client-side)


class _Arrays:
    """PostgreSQL: the stored rows of some keys and the upsert of merged rows, each one statement whose parameters
    are one array per column (``unnest``), bound server-side in binary (bytea sketches as they are, no escaping)."""

    chunk = 5000  # rows a statement carries: a bound on one message's size, not on the statement's text

    def __init__(self, model):
        meta = model._meta
        self.keys = key_of(model)
        self.os_major = _carries_os_major(model)
        fields = [meta.get_field(name) for name in _written(model)]
        self.columns = [f.column for f in fields]
        # The counts' JSON travels as text, cast: Django loads jsonb as text, and a jsonb[] parameter would need Jsonb.
        types = ["text" if f.get_internal_type() == "JSONField" else f.db_type(connection) for f in fields]
        self.types = types
        arrays = [f"%b::{t}[]" for t in types]  # binary parameters, packed by collector.pgarrays
        n = len(self.keys)
        key_columns, rest = ", ".join(self.columns[:n]), self.columns[n:]
        alias = ", ".join(self.columns)
        values = ", ".join(f"{c}::jsonb" if c in _COUNTS else c for c in self.columns)
        # The key arrays as a relation: a semi-join on the unique key's index, whatever the number of keys.
        self.select = (f"SELECT {key_columns}, runs, failures::text, failure_stages::text, {', '.join(COLUMNS)} "
                       f"FROM {meta.db_table} "
                       f"WHERE ({key_columns}) IN (SELECT * FROM unnest({', '.join(arrays[:n])}))")
        # Django's bulk_create(update_conflicts=True) updated the same fields: project and os_major follow the key.
        self.upsert_sql = (f"INSERT INTO {meta.db_table} ({alias}) SELECT {values} "
                           f"FROM unnest({', '.join(arrays)}) AS u({alias}) ON CONFLICT ({key_columns}) DO UPDATE SET "
                           + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest if c not in ("project_id", "os_major")))

    def stored(self, keys):
        """The stored rows of ``keys``: their counts as JSON text (decoded only where a fold adds to them)."""
        n = len(self.keys)
        with _psycopg_cursor() as cursor:
            cursor.execute(self.select, [packed(column, t) for column, t in zip(zip(*keys), self.types)],
                           prepare=True, binary=True)
            for row in cursor:
                yield tuple(row[:n]), (row[n], row[n + 1], row[n + 2], row[n + 3:])

    def upsert(self, rows):
        columns = list(zip(*rows))
        for name in _COUNTS:
            at = self.columns.index(name)
            columns[at] = [counts if isinstance(counts, str) else json.dumps(counts) for counts in columns[at]]
        with _psycopg_cursor() as cursor:
            cursor.execute(self.upsert_sql, [packed(column, t) for column, t in zip(columns, self.types)],
                           prepare=True, binary=True)


class _Django:
    """SQLite (any database without array parameters): Django's queries."""

    chunk = 500

    def __init__(self, model):
        self.model = model
        self.keys = key_of(model)
        self.os_major = _carries_os_major(model)
        self.fields = [k.removesuffix("_id") for k in self.keys]  # the row key as model fields: the conflict target

    def stored(self, keys):
        """One row-value ``IN (VALUES ...)`` query (a Q per key made Django build a 500-branch OR, slower than the
        query itself)."""
        meta = self.model._meta
        columns = ", ".join(meta.get_field(f).column for f in self.fields)
        values = ", ".join(["(" + ", ".join(["%s"] * len(self.fields)) + ")"] * len(keys))
        params = [value for key in keys for value in key]
        n = len(self.keys)
        rows = (self.model.objects.extra(where=[f"({columns}) IN (VALUES {values})"], params=params)
                .values_list(*self.keys, "runs", "failures", "failure_stages", *COLUMNS))
        for row in rows:
            yield tuple(row[:n]), (row[n], row[n + 1], row[n + 2], row[n + 3:])

    def upsert(self, rows):
        names = _written(self.model)
        self.model.objects.bulk_create([self.model(**dict(zip(names, row))) for row in rows], update_conflicts=True,
                                       unique_fields=self.fields,
                                       update_fields=["runs", *_COUNTS, *COLUMNS])


def _keys_q(fields, keys) -> Q:
    q = Q()
    for key in keys:
        q |= Q(**dict(zip(fields, key)))
    return q


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# What a rebuild of some runs' rows names them by: their KEY and OS major version (the source-and-OS tier's key).
REBUILT = (*KEY, "os_major")


class Keys:
    """The sketch rows some runs are in (as ``REBUILT`` values), to rebuild from what remains after those runs are
    deleted."""

    def __init__(self, keys):
        self.keys = keys

    def rebuild(self):
        from .models import Run

        if not self.keys:
            return
        with transaction.atomic():
            # Before reading: a fold that took pending runs of these versions finishes first, or waits for this.
            lock_versions(sorted({key[0] for key in self.keys}))
            for model in tiers():
                fields = key_of(model)
                at = [REBUILT.index(field) for field in fields]
                keys = [key for key in self.keys if key[REBUILT.index("variant")] or not named_variants_only(model)]
                for chunk in _chunks(sorted({tuple(key[i] for i in at) for key in keys}), 200):
                    model.objects.filter(_keys_q(fields, chunk)).delete()
                    runs = (folded(Run.objects.annotate(day=TruncDate("started_at")))
                            .filter(_keys_q(fields, chunk)).values(*RUN_FIELDS))
                    write(rolled_up(accumulate(runs), model), model)


def folded(runs):
    """The runs of ``runs`` that are in their sketch rows (not pending): what a rebuild recomputes the rows from, the
    pending ones being added by their fold."""
    return runs.filter(sketch_pending__isnull=True)


def pending(runs):
    """The runs of ``runs`` that the sketch rows its :func:`sketch_filter` selects do not hold, None when there are
    none; to be read in the same statement as the rows (see :func:`_first_pending`). Those not yet in their rows
    (``PendingRun``), and every run of a day that a time bound cuts within it (the rows hold whole days: the filter
    reads the days inside the bounds, the runs give the rest of the cut days, at most a day's runs a bound)."""
    first = _first_pending()
    cut = _cut_days(runs.query.where)
    if not cut:
        return None if first is None else runs.filter(pk__gte=first, sketch_pending__isnull=False)
    edges = Q()
    for name, day in cut.values():  # a lower bound's day is after its cut day, an upper bound's is the cut day
        midnight = datetime.combine(day, time.min, tzinfo=timezone.utc)
        edges |= Q(started_at__lt=midnight) if name == "gte" else Q(started_at__gte=midnight)
    if first is None:
        return runs.filter(edges)
    return runs.filter(edges | Q(pk__gte=first, sketch_pending__isnull=False))


def _cut_days(where) -> dict[int, tuple[str, date]]:
    """{id of a condition: (its lookup, the first day after it for ``gte``, its own day for ``lt``)} for each bound on
    ``started_at`` among the query's ANDed conditions that falls within a day: the whole days inside it are the
    rows', the cut day's runs are read (:func:`pending`). A bound under an OR or a NOT is not cut (no rows answer)."""
    if where.negated or where.connector != AND:
        return {}
    cut = {}
    for node in where.children:
        if (isinstance(node, Lookup) and getattr(node.lhs, "target", None) is not None
                and node.lhs.target.name == "started_at" and node.lhs.target.model._meta.label == "collector.Run"
                and node.lookup_name in ("gte", "lt") and isinstance(node.rhs, datetime)):
            utc = node.rhs.astimezone(timezone.utc)
            if utc.time() != time.min:
                cut[id(node)] = (node.lookup_name, utc.date() + timedelta(days=node.lookup_name == "gte"))
    return cut


def rebuild_keys_of(runs) -> Keys:
    return Keys({tuple(r[k] for k in REBUILT) for r in runs.annotate(day=TruncDate("started_at")).values(*REBUILT)
                 .order_by().distinct()})


def rebuild(project=None, stdout=None, tables=None) -> int:
    """Recompute every sketch row, every tier (of one project) from the runs, but those pending (their fold adds
    them): the backfill. One model version at a time, in its own transaction; returns the daily rows written.
    ``tables``: only these tiers (a new tier's backfill), the others as they are."""
    from .models import ModelVersion, Run

    tables = tiers() if tables is None else tables
    versions = ModelVersion.objects.all() if project is None else ModelVersion.objects.filter(project=project)
    written = 0
    for mv in versions.order_by("pk"):
        with transaction.atomic():
            lock_versions([mv.pk])
            for model in tables:
                model.objects.filter(model_version=mv).delete()
            runs = Run.objects.filter(model_version=mv)
            if all(named_variants_only(model) for model in tables):
                runs = runs.exclude(variant="")
            partials = accumulate(folded(runs).values(*RUN_FIELDS).iterator(chunk_size=5000))
            for model in tables:
                write(rolled_up(partials, model), model)
        written += len(partials)
        if stdout is not None:
            stdout.write(f"{mv}: {len(partials)} sketch rows")
    return written


# --- reading ---------------------------------------------------------------------------------------------------

def sketch_filter(runs) -> Q | None:
    """The RunSketch filter equivalent to a Run queryset's, or None when a filter is not a row key (a status, a
    relation beyond project, model version and device, ...). A time bound within a day selects the whole days inside
    it: :func:`pending` reads the cut days' runs."""
    query = runs.query
    if (query.is_sliced or query.distinct or query.combinator or query.annotations or query.extra
            or query.group_by is not None or query.model._meta.label != "collector.Run"):
        return None
    q = _node(query, query.where, _cut_days(query.where))
    return None if q is None else _project_through_version(q)


def _project_through_version(q: Q) -> Q:
    """``q`` with a project's condition beside a model version's asked of the version's own row instead (a join to
    one row by its primary key): the same rows, but PostgreSQL no longer ANDs the project's whole index into the
    version's rows (an API stats question of a week at 1M runs: a bitmap of the project's 80,511 rows, 12.4 -> 8.7 ms
    a read)."""
    if q.connector != Q.AND or q.negated:
        return q
    names = [c[0] if isinstance(c, tuple) else None for c in q.children]
    if "model_version__exact" not in names or names.count("project__exact") != 1:
        return q
    return Q(*[("model_version__project__exact", c[1]) if isinstance(c, tuple) and c[0] == "project__exact" else c
               for c in q.children])


def _node(query, node, cut) -> Q | None:
    if not isinstance(node, WhereNode):
        return _lookup(query, node, cut) if isinstance(node, Lookup) else None
    q = Q()
    for child in node.children:
        part = _node(query, child, cut)
        if part is None:
            return None
        q = (q & part) if node.connector == "AND" else (q | part if q else part)
    return ~q if node.negated else q


def _lookup(query, lookup, cut) -> Q | None:
    col = lookup.lhs
    if not hasattr(col, "alias") or not hasattr(col, "target") or getattr(col, "alias", None) is None:
        return None
    path = []
    alias = col.alias
    while alias != query.base_table:
        join = query.alias_map.get(alias)
        if join is None or not hasattr(join, "join_field"):
            return None
        path.append(join.join_field.name)
        alias = join.parent_alias
    path.reverse()
    rhs = lookup.rhs
    if hasattr(rhs, "resolve_expression") and not hasattr(rhs, "get_compiler"):
        return None  # an F() or other expression
    if hasattr(rhs, "pk") and not hasattr(rhs, "get_compiler"):
        rhs = rhs.pk
    name = col.target.name
    if path:
        if path[0] not in RELATIONS:
            return None
        return Q(**{"__".join([*path, name, lookup.lookup_name]): rhs})
    if name == "started_at":
        if lookup.lookup_name not in ("gte", "lt") or not isinstance(rhs, datetime):
            return None
        utc = rhs.astimezone(timezone.utc)
        if utc.time() == time.min:
            return Q(**{f"day__{lookup.lookup_name}": utc.date()})
        if id(lookup) not in cut:
            return None
        return Q(**{f"day__{lookup.lookup_name}": cut[id(lookup)][1]})
    if name not in KEY_FIELDS:
        return None
    return Q(**{f"{name}__{lookup.lookup_name}": rhs})


def merged(runs, q: Q, group_columns, wanted) -> list[tuple[tuple, int, dict, dict]]:
    """[(group values, runs, failures, {(column, load kind or None): merged sketch})] over the rows of ``q`` (the
    sketch filter of the Run queryset ``runs``) and the pending runs of ``runs``.

    ``wanted``: (column, load kind or None) pairs; a pair with a load kind merges only the rows of that kind. The
    rows of :func:`tier_for` the question answer. The sketches are read-only: they may be shared with other
    questions of the request (:func:`shared_reads`). A group of several cells holds a :class:`Merging` where it
    merges them: :func:`resolved` gives its sketch."""
    return merged_by(runs, q, [group_columns], wanted)[0]


# What a page's first question of some rows merges them into (:func:`shared_reads`; the columns the tier keeps, and
# the question's own): the page's other questions of those rows group by coarsenings of it (the policy per device or
# chip and configuration, the overview per device and compute units, the fallback samples per device, chip and
# configuration), so one read and merge of the rows answers them all.
CELLS = ("model_version_id", "device_id", "device__chip", "compute_units", "specialization_strategy",
         "reshape_frequency")
# Count-only questions (the fleet page's, no sketch to merge, so no load kind either).
COUNT_CELLS = ("model_version_id", "device_id", "compute_units", "os_major")

_shared: ContextVar[dict | None] = ContextVar("shared_sketch_reads", default=None)


@contextmanager
def shared_reads():
    """Within this block (or a function decorated with it: a page that asks several questions of the same rows)
    questions of the same rows share one read and merge of them: the first merges the rows into cells
    (:data:`CELLS`), the others regroup those (the overview's three questions of a version's ~2,800 totals rows at
    1M runs, field runs only: ~110 ms, one read and merge and three regroupings ~60). A question alone pays for the
    finer cells (a second merge), hence a block only where questions share. Only where nothing is written meanwhile,
    so no answer is staler than the block; an inner block shares the outer one's reads."""
    if _shared.get() is not None:
        yield
        return
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


def merged_by(runs, q: Q, groupings, wanted) -> list[list[tuple[tuple, int, dict, dict]]]:
    """:func:`merged` for each of several groupings of the same rows, read and merged once.

    The rows and the pending runs (``PendingRun``: added to the rows by a fold seconds later) are read in one
    statement, so a fold that commits meanwhile cannot make a run count twice or not at all. Each row, and each
    pending run, is merged once into its cell (the groupings' columns; in a :func:`shared_reads` block, :data:`CELLS`
    too for a page's first question of the rows) under every wanted pair it answers; the groupings then merge those
    cells. So the chip level merges its devices' cells instead of every row a second time (at 10M runs, field runs
    only: ~5,000 totals rows, ~700 cells)."""
    groupings = [list(g) for g in groupings]
    asked = [c for g in groupings for c in g]
    model = tier_for(q, asked)
    counting = not wanted
    runs = pending(runs)
    read = list(dict.fromkeys(asked))
    shared = _shared.get()
    if shared is None:
        return _answered(model, q, runs, read, groupings, wanted, counting)[1]
    # Merged cells already read of these rows answer if they hold the grouping's columns and the wanted sketches.
    # The first read of some rows merges them into CELLS (finer than the question, so later questions of the page can
    # regroup them); a later one that finds no answering cells reads for itself only.
    entries = shared.setdefault((model._meta.label, counting, _rows_key(q), None if runs is None else str(runs.query)),
                                [])
    for cells_read, pairs, cells in entries:
        if set(read) <= set(cells_read) and set(wanted) <= pairs:
            return [_grouped(cells, cells_read, g, wanted) for g in groupings]
    if not entries and "day" not in read:  # (a daily series is a page's only question of its rows)
        fields = _fields(model)
        cells = [c for c in (COUNT_CELLS if counting else CELLS) if c.split("__")[0] in fields]
        read = [*cells, *(c for c in read if c not in cells)]
    cells, answers = _answered(model, q, runs, read, groupings, wanted, counting)
    entries.append((read, frozenset(wanted), cells))
    return answers


def _answered(model, q, runs, read, groupings, wanted, counting):
    """(cells, answers): the rows of ``q`` and the pending ``runs`` merged into cells of the ``read`` columns, and
    each grouping's answer from them."""
    if counting:
        cells = _counted(model.objects.filter(q), runs, read)
    else:
        cells = _cells(model.objects.filter(q), runs, read, set(wanted))
    return cells, [_grouped(cells, read, g, wanted) for g in groupings]


def _rows_key(q: Q):
    """The rows ``q`` selects, as a key that questions over the same rows share: its conditions as a set when they are
    all ANDed, else its text. A project's condition beside a model version's is left out: a version's rows are all
    its project's (an upload sets both), so with the version's own project, as every page's scope resolves it, the
    two select the same rows (the dashboard's scope names both, the policy's runs the version alone)."""
    leaves = _and_leaves(q)
    if leaves is None:
        return str(q)
    if any(name == "model_version__exact" for name, _ in leaves):
        leaves = {(name, value) for name, value in leaves
                  if name not in ("project__exact", "model_version__project__exact")}
    return frozenset(leaves)


def _and_leaves(q: Q) -> set | None:
    if q.negated or (q.connector != Q.AND and len(q.children) > 1):
        return None
    leaves = set()
    for child in q.children:
        if isinstance(child, Q):
            inner = _and_leaves(child)
            if inner is None:
                return None
            leaves |= inner
        else:
            leaves.add((child[0], repr(child[1])))
    return leaves


def _cells(rows, runs, read, wanted) -> dict[tuple, list]:
    """{read values: [runs, failures, {(column, load kind or None): merged sketch}]} of the ``rows`` (a sketch
    table's queryset) and the pending ``runs`` (None: none pending): each row's sketch of a column merged under every
    ``wanted`` pair it answers (one of any load kind, one of its own)."""
    columns = sorted({c for c, _ in wanted})
    filed: dict[str, list[list]] = {}  # load kind -> per column, the wanted pairs a row of that kind answers

    def pairs_of(kind):
        at = filed.get(kind)
        if at is None:
            at = filed[kind] = [[pair for pair in wanted if pair[0] == c and pair[1] in (None, kind)] for c in columns]
        return at

    n = len(read)
    # failures as text, decoded only where a row has some: most rows have none, and Django's JSON decoding of every
    # row cost a third of a large merge.
    parts = [(rows.order_by().annotate(failures_text=Cast("failures", TextField())),
              (*read, "load_kind", "runs", "failures_text", *columns))]
    kinds = {kind for _, kind in wanted}
    load_only = bool(kinds) and None not in kinds
    if load_only:
        # Load metrics only: the rows of other load kinds add their counts alone, summed by the database (the stats
        # API's cold loads of the last 7 days at 1M runs: 1,032 rows' sketches and 56 sums, not 6,226 rows), and so
        # do the runs read beside them (_runs_read).
        (kept, names), = parts
        parts = [(kept.filter(load_kind__in=kinds), names), _summed(rows.exclude(load_kind__in=kinds), read, columns)]
    if runs is None:
        rows = _union([part.values_list(*names) for part, names in parts])
    else:  # rows, then pending runs, each with the other's columns NULL and a last column telling them apart
        rows = _union([*(part.annotate(**_nulls("value_", RUN_COLUMNS, FloatField()), pending=Value(0))
                         .values_list(*names, *_names("value_", RUN_COLUMNS), "pending") for part, names in parts),
                       _runs_read(runs, read, columns, kinds if load_only else None)])
    cells: dict[tuple, list] = {}
    fresh = _Fresh(columns)
    blobs_at = n + 3
    for row in _fetched(rows):
        if runs is not None and row[-1]:
            fresh.add(row[:n], row[n], row[n + 2], row[n + 1], row[blobs_at + len(columns):-1])
            continue
        entry = cells.get(row[:n])
        if entry is None:
            entry = cells[row[:n]] = [0, defaultdict(int), {}]
        entry[0] += row[n + 1]
        if row[n + 2] != "{}":
            for status, count in json.loads(row[n + 2]).items():
                if count:  # (a sum of rows without failures of a status is 0)
                    entry[1][status] += count
        for pairs, blob in zip(pairs_of(row[n]), row[blobs_at:blobs_at + len(columns)]):
            if pairs and blob is not None:
                _file(entry[2], pairs, load(blob))
    for cell, kind, count, failures, sketches in fresh.merged(pairs_of):
        entry = cells.get(cell)
        if entry is None:
            entry = cells[cell] = [0, defaultdict(int), {}]
        entry[0] += count
        for status, failed in failures.items():
            entry[1][status] += failed
        for pairs, sketch in sketches:
            _file(entry[2], pairs, sketch)
    return cells


def _summed(rows, read, columns):
    """(queryset, names): sketch rows summed per ``read`` values in :func:`_cells`'s layout, a load kind and sketches
    NULL, the failures per status as JSON text."""
    summed = (rows.order_by().values(*read)
              .annotate(summed_kind=Cast(Value(None), output_field=CharField()), summed_runs=Sum("runs"),
                        summed_failures=Cast(JSONObject(**_failure_sums()), TextField()),
                        **_nulls("summed_", columns, BinaryField())))
    return summed, (*read, "summed_kind", "summed_runs", "summed_failures", *_names("summed_", columns))


def _runs_read(runs, read, columns, kinds):
    """The pending runs (and a cut day's) in :func:`_cells`'s layout, after the rows: each run on its own row (a
    count of 1, its status, its RUN_COLUMNS values); but for a question of load metrics only (``kinds``, the wanted
    load kinds), the runs of other load kinds, which add their counts alone, counted per cell, load kind and status by
    the database, their values NULL. One read of the runs either way (the stats API's cold loads from noon a week ago
    at 1M runs: the cut day's 4,464 runs read once, not twice, the statement 37 -> 27 ms; 941 rows back)."""
    runs = _with_day(runs, read).order_by()
    nulls = _nulls("sketch_", columns, BinaryField())
    # Only the values the merged columns read; the others NULL (the stats API's cold loads from noon, 1M runs: one
    # filtered MAX per group instead of nine).
    needed = {c for column in columns for c in DERIVED_FROM.get(column, (column,))}
    if kinds is None:
        values = {f"own_{c}": F(c) if c in needed else Cast(Value(None), output_field=FloatField())
                  for c in RUN_COLUMNS}
        return (runs.annotate(counted=Value(1), **nulls, **values, pending=Value(1))
                .values_list(*read, "load_kind", "counted", "status", *nulls, *values, "pending"))
    wanted = Q(load_kind__in=kinds)
    values = {f"own_{c}": Max(c, filter=wanted) if c in needed else Cast(Value(None), output_field=FloatField())
              for c in RUN_COLUMNS}  # a run alone in its group: its value
    return (runs.annotate(own=Case(When(wanted, then="pk"))).values(*read, "load_kind", "status", "own")
            .annotate(counted=Count("pk"), **nulls, **values, pending=Value(1))
            .values_list(*read, "load_kind", "counted", "status", *nulls, *values, "pending"))


def _failure_sums() -> dict:
    """{failed status: the sum of the rows' failures of that status (0 where none)}, as aggregates."""
    return {s: Coalesce(Sum(Cast(KT(f"failures__{s}"), IntegerField())), 0) for s in FAILURE_STATUSES}


def _union(querysets):
    first, *rest = querysets
    return first.union(*rest, all=True) if rest else first


def _file(sketches: dict, pairs, sketch) -> None:
    """Merge a sketch (this call's to keep) into a cell's ``sketches`` under each of ``pairs``: the first pair
    without one keeps the sketch itself, any other a copy (merging into a sketch mutates it)."""
    kept = False
    for pair in pairs:
        mine = sketches.get(pair)
        if mine is not None:
            mine.merge(sketch)
        elif not kept:
            sketches[pair] = sketch
            kept = True
        else:
            sketches[pair] = _copy(sketch)


def _grouped(cells, read, group_columns, wanted) -> list[tuple[tuple, int, dict, dict]]:
    """:func:`merged`'s answer from the cells of :func:`_cells` or :func:`_counted`: each group's counts summed and
    its cells' sketches of the ``wanted`` pairs merged, a group of one cell answering with the cell's own sketches
    (the cells stay as they are: they may answer other questions)."""
    at = [read.index(c) for c in group_columns]
    if at == list(range(len(read))):
        group_of = None
    elif len(at) == 1:
        group_of = lambda cell, i=at[0]: (cell[i],)  # noqa: E731 (itemgetter of one index gives no tuple)
    else:
        group_of = itemgetter(*at)
    wanted = set(wanted)
    groups: dict[tuple, list] = {}
    for cell, (count, failures, sketches) in cells.items():
        group = cell if group_of is None else group_of(cell)
        entry = groups.get(group)
        if entry is None:
            entry = groups[group] = [0, defaultdict(int), {}]
        entry[0] += count
        for status, failed in failures.items():
            entry[1][status] += failed
        merged = entry[2]
        for pair, sketch in sketches.items():  # a cell holds few of the pairs (its load kinds')
            if pair not in wanted:
                continue
            mine = merged.get(pair)
            if mine is None:  # the cell's own, as long as no other cell adds to it
                merged[pair] = sketch
            elif isinstance(mine, Merging):
                mine.add(sketch)
            else:
                merged[pair] = Merging([mine, sketch])
    return [(group, count, dict(failures), sketches) for group, (count, failures, sketches) in groups.items()]


class Merging:
    """The sketches of several cells that a group merges, merged when first read (:func:`resolved`); ``n``, the values
    they hold, known without. A question merges every group it asks for and its caller may read few of them (the
    policy reads a chip's sketches only where some device leans on the chip). The parts stay as they are: they are
    the cells' own."""

    __slots__ = ("parts", "n", "_merged")

    def __init__(self, parts: list):
        self.parts, self.n, self._merged = parts, sum(part.n for part in parts), None

    def add(self, sketch: kll_doubles_sketch) -> None:
        self.parts.append(sketch)
        self.n += sketch.n

    def merged(self) -> kll_doubles_sketch:
        if self._merged is None:
            first, *rest = self.parts
            self._merged = _copy(first)
            for part in rest:
                self._merged.merge(part)
        return self._merged


def resolved(sketch) -> kll_doubles_sketch:
    """A sketch of :func:`merged`'s answer: itself, or a :class:`Merging`'s parts merged now."""
    return sketch.merged() if isinstance(sketch, Merging) else sketch


def _copy(sketch: kll_doubles_sketch) -> kll_doubles_sketch:
    copy = new_sketch()
    copy.merge(sketch)
    return copy


class _Fresh:
    """Pending runs as a merge reads them (their RUN_COLUMNS values), per cell and load kind: counts, and each merged
    column's values, sketched at the end in one vectorized update per column (at a backlog of 5,000 runs of one
    version, a sketch update per run and column cost a policy request ~300 ms)."""

    def __init__(self, columns):
        self.columns = columns
        self.counts: dict[tuple, list] = {}
        self.values: dict[tuple, list] = defaultdict(list)

    def add(self, cell, kind, status, count, values) -> None:
        """``count`` runs of a status: one with its ``values``, or several counted together (values None)."""
        counts = self.counts.get((cell, kind))
        if counts is None:
            counts = self.counts[cell, kind] = [0, defaultdict(int)]
        counts[0] += count
        if status != OK:
            counts[1][status] += count
            return
        run = dict(zip(RUN_COLUMNS, values))
        for column in self.columns:
            value = value_of(run, column)
            if value is not None:
                self.values[cell, kind, column].append(value)

    def merged(self, pairs_of):
        """[(cell, kind, runs, failures, [(pairs, sketch)])]: each column's sketch with the wanted pairs it answers
        (``pairs_of(kind)``, per column)."""
        for (cell, kind), (count, failures) in self.counts.items():
            sketches = []
            for column, pairs in zip(self.columns, pairs_of(kind)):
                values = self.values.get((cell, kind, column))
                if pairs and values:
                    sketch = new_sketch()
                    sketch.update(np.asarray(values, dtype=float))
                    sketches.append((pairs, sketch))
            yield cell, kind, count, dict(failures), sketches


def _first_pending() -> int | None:
    """The smallest pending run id, None when no run is pending (then the rows alone answer: a run listed after this
    is one the answer could have missed anyway, being uploaded after it, and a run folded after it is read once, in
    its rows; the rows and the pending runs must otherwise be read in one statement). The pending runs are the
    newest, and bounding their read by id lets PostgreSQL find them by the runs' primary key: joined as they were,
    it scanned a version's runs instead (at 1M runs and 5,000 pending, 45-150 ms a question). Asked once per
    :func:`shared_reads` block."""
    from .models import PendingRun

    shared = _shared.get()
    if shared is not None and "first pending" in shared:
        return shared["first pending"]
    first = PendingRun.objects.aggregate(first=Min("run_id"))["first"]
    if shared is not None:
        shared["first pending"] = first
    return first


def _nulls(prefix: str, columns, field) -> dict:
    """Typed NULL annotations (cast in SQL: PostgreSQL types two untyped NULLs of a union as text, which a third part's
    numbers then do not match): the columns one part of the rows-and-pending-runs union does not have."""
    return {name: Cast(Value(None), output_field=field) for name in _names(prefix, columns)}


def _names(prefix: str, columns) -> list[str]:
    return [prefix + column for column in columns]


def _with_day(runs, read):
    """Runs annotated with their UTC day when a grouping reads it (the sketch rows' ``day``)."""
    return runs.annotate(day=TruncDate("started_at", tzinfo=timezone.utc)) if "day" in read else runs


def _counted(rows, runs, read) -> dict[tuple, list]:
    """:func:`_cells` of a question without sketches (runs and failures only): the rows' sums and the pending
    ``runs``' counts (None: none pending), by the database in one statement."""
    sums = {"n_runs": Sum("runs")}
    sums.update({f"n_{s}": total for s, total in _failure_sums().items()})
    counts = {"n_runs": Count("pk")}
    counts.update({f"n_{s}": Count("pk", filter=Q(status=s)) for s in FAILURE_STATUSES})
    group_columns = read
    names = [*group_columns, *sums]
    stored = rows.order_by().values(*group_columns).annotate(**sums).values_list(*names)
    if runs is not None:
        stored = stored.union(_with_day(runs, group_columns).order_by().values(*group_columns).annotate(**counts)
                              .values_list(*names), all=True)
    n = len(group_columns)
    cells: dict[tuple, list] = {}
    for row in _fetched(stored):
        entry = cells.get(row[:n])
        if entry is None:
            entry = cells[row[:n]] = [0, defaultdict(int), {}]
        entry[0] += row[n]
        for status, failed in zip(FAILURE_STATUSES, row[n + 1:]):
            if failed:
                entry[1][status] += failed
    return cells


def merged_stages(runs, q: Q, group_columns) -> dict[tuple, dict[str, int]]:
    """{group values: {stage: failed runs}} of the rows of ``q`` (their ``failure_stages`` summed by the database)
    and the pending ``runs``' failed ones, in one statement as :func:`merged_by` reads them; groups without failures
    left out, :data:`NO_STAGE` for runs that named no stage."""
    group_columns = list(group_columns)
    model = tier_for(q, group_columns)
    sums = {f"n_{s}": Coalesce(Sum(Cast(KT(f"failure_stages__{s}"), IntegerField())), 0) for s in STAGE_KEYS}
    names = [*group_columns, *sums]
    rows = (model.objects.filter(q).exclude(failure_stages={}).order_by().values(*group_columns).annotate(**sums)
            .values_list(*names))
    runs = pending(runs)
    if runs is not None:
        counts = {f"n_{s}": Count("pk", filter=Q(failure_stage="" if s == NO_STAGE else s)) for s in STAGE_KEYS}
        rows = rows.union(_with_day(runs, group_columns).exclude(status=OK).order_by().values(*group_columns)
                          .annotate(**counts).values_list(*names), all=True)
    n = len(group_columns)
    out: dict[tuple, dict[str, int]] = {}
    for row in _fetched(rows):
        stages = out.setdefault(tuple(row[:n]), {})
        for stage, failed in zip(STAGE_KEYS, row[n:]):
            if failed:
                stages[stage] = stages.get(stage, 0) + failed
    return {group: stages for group, stages in out.items() if stages}


def _fetched(queryset):
    """A values_list queryset's rows: on PostgreSQL through psycopg in binary, bytea sketches as they are (Django reads
    them as text, hex-encoded: 57 against 17 ms for a version's 718 configuration rows at 1M runs) and no Django
    converter per row (~5 µs each: ~20 ms of the fleet page's field-only counts, 4,110 groups); else Django's."""
    if connection.vendor != "postgresql":
        return queryset.iterator(chunk_size=2000)
    sql, params = queryset.query.sql_with_params()
    with _psycopg_cursor() as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def tier_for(q: Q, group_columns):
    """The sketch table of fewest rows that keeps every field a question names (``q``'s filters and its grouping):
    a page's default view merges the configuration rows; a daily series without a device the configuration-day rows;
    an OS major filter (iOS 26 and later) the same two per source and OS major; a source filter alone (field only) the
    per-source rows, or the per-source-and-OS daily ones for a daily series; a filter to named
    variants the variant rows (which hold no run without a variant, so only such a question reads them); an OS
    version filter, or variant "", the totals; with a day too, the daily rows.

    A tier refines another when it keeps every field of it (the totals refine the source-and-OS rows, which refine
    the per-source rows, which refine the configuration rows; the daily rows refine all). Of the able tiers that
    refine none other, there are at most two: per device over every day, or per day over every device. A question
    either can answer (no device, no day: the compare page's launch stages, the cold-start table) merges whichever
    holds fewer of its rows, both counted in one query (under a millisecond at 1M runs): a version of the 1M fleet has 709 configuration rows and 124
    configuration-day rows, a fleet of many days and few devices the reverse."""
    named = _named(q) | {c.split("__")[0] for c in group_columns}
    able = [model for model in tiers() if named <= _fields(model) and (not named_variants_only(model)
                                                                       or _keeps_named_variants(q))]
    # The tiers no other able tier coarsens: per device over every day, or per day over every device.
    coarsest = [model for model in able if not any(_fields(other) < _fields(model) for other in able)]
    if len(coarsest) == 1:
        return coarsest[0]
    # In a shared_reads block the rows are counted once: a page's questions of the same rows pick the same tier
    # (the fleet page's field-only counts and failures by stage at 1M runs: 8 ms a count).
    shared = _shared.get()
    memo = ("tier", tuple(m._meta.label for m in coarsest), _rows_key(q))
    if shared is not None and memo in shared:
        return shared[memo]
    # Counted first: the per-day tier over every device, the smaller in most fleets (more devices than days).
    coarsest.sort(key=lambda model: "device" in _fields(model))
    counts = _rows_matching(coarsest, q)
    chosen = coarsest[counts.index(min(counts))]
    if shared is not None:
        shared[memo] = chosen
    return chosen


def _rows_matching(models, q: Q) -> list[int]:
    """How many rows of each sketch table ``q`` selects, in one query, each after the first counted only up to one
    more than the fewest before it (``LIMIT``): enough to tell which holds the fewest, without counting the larger
    in full (the fleet page's field-only counts at 1M runs: 10,961 source-and-OS rows, 16 ms, against 3,537
    source-OS-day rows)."""
    parts = [model.objects.filter(q).order_by().annotate(one=Value(1)).values("one").query.sql_with_params()
             for model in models]
    counted = []
    for i, (part, _) in enumerate(parts):
        limit = f" LIMIT (SELECT MIN(n) FROM ({' UNION ALL '.join(f'SELECT n FROM c{j}' for j in range(i))}) AS " \
                f"fewest) + 1" if i else ""
        counted.append(f"c{i} AS (SELECT COUNT(*) AS n FROM (SELECT one FROM ({part}) AS rows_{i}{limit}) AS "
                       f"capped_{i})")
    sql = (f"WITH {', '.join(counted)} SELECT {', '.join(f'c{i}.n' for i in range(len(parts)))} "
           f"FROM {', '.join(f'c{i}' for i in range(len(parts)))}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [p for _, params in parts for p in params])
        return list(cursor.fetchone())


def _keeps_named_variants(q: Q) -> bool:
    """Whether ``q`` keeps only runs that name a variant: it ANDs a variant filter none of whose values is ""."""
    if q.negated or (q.connector != Q.AND and len(q.children) > 1):
        return False
    for child in q.children:
        if isinstance(child, Q):
            if _keeps_named_variants(child):
                return True
            continue
        name, value = child
        if (name == "variant__exact" and isinstance(value, str) and value) or (
                name == "variant__in" and isinstance(value, (list, tuple, set, frozenset)) and value and all(value)):
            return True
    return False


def _fields(model) -> set[str]:
    return {name for f in model._meta.fields for name in (f.name, f.attname)}


def _named(q) -> set[str]:
    return {name for child in q.children
            for name in (_named(child) if isinstance(child, Q) else {child[0].split("__")[0]})}
