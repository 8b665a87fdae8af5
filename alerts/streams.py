"""The regression check's reading side (issue 13, item 4): the runs of the (model, chips) groups a check tests, as
numpy columns (:class:`insights.columns.RunColumns`), handed out one (model, chip) group at a time in the check's
order.

One query per (model, chip) group, read when the check reaches it, so a worker holds one group's runs at a time: the
largest series bounds its memory, not the fleet. Measured from scratch on a quiet box (benchmarks/check.py): 1M runs
5.8 s and +30 MB, 10M runs 48.9 s and +297 MB; one query for all the groups (one scan of the project's runs) took
3.8-4.0 s and +159 MB at 1M but 28.1 s and +1,608 MB at 10M, one per model 4.0 s / +89 MB and 28.7 s / +880 MB. The
rows become arrays :data:`CHUNK` at a time, never Python tuples (at 1M runs those took 800 MB; the arrays, 84 bytes
a run): on PostgreSQL through binary COPY (:mod:`alerts.binary_copy`, no Python object per row), elsewhere (SQLite)
through ``values_list``. numpy then orders them: version rank, start time, id.
"""
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from django.db import connection

from collector.models import Device, ModelVersion, Run
from insights.columns import VALUE_COLUMNS, RunColumns, version_ranks
from insights.vocabulary import (COMPUTE_UNITS, LOAD_KINDS, RESHAPE_FREQUENCIES, SPECIALIZATION_STRATEGIES, STATUSES,
                                 version_key)

from .binary_copy import copy_columns

CHUNK = 10_000
HINT_COLUMNS = ("specialization_strategy", "reshape_frequency")
DEFAULT_HINTS = (SPECIALIZATION_STRATEGIES[0], RESHAPE_FREQUENCIES[0])
# Run's string columns the check reads, as codes into these names.
_CODED = {"compute_units": COMPUTE_UNITS, "load_kind": LOAD_KINDS, "status": STATUSES,
          "specialization_strategy": SPECIALIZATION_STRATEGIES, "reshape_frequency": RESHAPE_FREQUENCIES}
# (column, PostgreSQL type as read) of the check's read; strings are read as codes, a missing value as NaN.
_FIELDS = (("id", "int8"), ("model_version_id", "int8"), ("device_id", "int8"), ("os_major", "int2"),
           *((c, "int2") for c in _CODED), *((c, "float8") for c in VALUE_COLUMNS), ("started_at", "timestamptz"))
_DTYPES = {"int2": np.int16, "int8": np.int64, "float8": np.float64, "timestamptz": np.int64}
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)  # PostgreSQL's, so both reads give the same start times


@dataclass(frozen=True)
class Group:
    """One (model, chip) group's runs, and per run its optimization hints as a code into ``hints``."""

    columns: RunColumns
    hint: np.ndarray
    hints: list[tuple[str, str]]

    def by_hints(self) -> list[tuple[tuple[str, str], RunColumns]]:
        """The runs of each configuration's hints apart (series never pool them), Apple's defaults first, then in
        the order they first appear."""
        codes = sorted(range(len(self.hints)), key=lambda c: self.hints[c] != DEFAULT_HINTS)
        return [(self.hints[c], self.columns.take(np.flatnonzero(self.hint == c))) for c in codes]


def read_groups(project, groups: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, Iterator[tuple[str, Group]]]]:
    """(model, its (chip, group) pairs) for each model of ``groups`` (model -> chips), in that order, the chips in
    theirs: the project's runs of the model on the chip's devices, in the check's order."""
    models = list(groups)
    chips = sorted({chip for model_chips in groups.values() for chip in model_chips})
    model_versions = list(ModelVersion.objects.filter(project=project, name__in=models)
                          .values_list("id", "name", "version"))
    versions = {model: sorted({v for _, m, v in model_versions if m == model}, key=lambda v: (version_key(v), v))
                for model in models}
    ranks = {model: dict(zip(names, version_ranks(names))) for model, names in versions.items()}
    devices = list(Device.objects.filter(chip__in=chips).values_list("id", "chip", "identifier"))
    identifiers = {chip: sorted(i for _, c, i in devices if c == chip) for chip in chips}
    # primary key -> code: a model version's version (into its model's versions) and rank; a device's identifier
    # (into its chip's identifiers)
    version_of = _Lookup({pk: versions[m].index(v) for pk, m, v in model_versions})
    rank_of = _Lookup({pk: ranks[m][v] for pk, m, v in model_versions})
    device_of = _Lookup({pk: identifiers[c].index(i) for pk, c, i in devices})

    def model_groups(m: int) -> Iterator[tuple[str, Group]]:
        # One read per (model, chip): only that group's runs are held, freed when the check moves on.
        of_model = [pk for pk, name, _ in model_versions if name == models[m]]
        for chip_name in groups[models[m]]:
            raw = _read(project, of_model, [pk for pk, chip, _ in devices if chip == chip_name])
            index = np.lexsort((raw["id"], raw["started_at"], rank_of(raw["model_version_id"])))
            columns = RunColumns(chip_name, raw["id"][index], version_of(raw["model_version_id"][index]).astype(
                np.int32), tuple(versions[models[m]]), device_of(raw["device_id"][index]).astype(np.int32),
                tuple(identifiers[chip_name]), raw["compute_units"][index].astype(np.int8), raw["os_major"][index],
                raw["load_kind"][index].astype(np.int8), raw["status"][index].astype(np.int8),
                {c: raw[c][index] for c in VALUE_COLUMNS})
            yield chip_name, Group(columns, *_hint_codes(raw["specialization_strategy"][index],
                                                         raw["reshape_frequency"][index]))

    for m, name in enumerate(models):
        yield name, model_groups(m)


class _Lookup:
    """Integer keys (primary keys) -> codes, for arrays of keys."""

    def __init__(self, codes: dict[int, int]):
        self.keys = np.asarray(sorted(codes), dtype=np.int64)
        self.codes = np.asarray([codes[k] for k in self.keys.tolist()], dtype=np.int64)

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        return self.codes[np.searchsorted(self.keys, keys)]


def _hint_codes(strategy: np.ndarray, reshape: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Per run a code into the configurations' hints, numbered in the order they first appear."""
    combined = strategy.astype(np.int64) * len(RESHAPE_FREQUENCIES) + reshape
    found, first, codes = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    renumber = np.empty(found.size, dtype=np.int16)
    renumber[order] = np.arange(found.size, dtype=np.int16)
    hints = [(SPECIALIZATION_STRATEGIES[h // len(RESHAPE_FREQUENCIES)],
              RESHAPE_FREQUENCIES[h % len(RESHAPE_FREQUENCIES)]) for h in found[order].tolist()]
    return renumber[codes.reshape(-1)], hints


def _read(project, version_pks: list[int], device_pks: list[int]) -> dict[str, np.ndarray]:
    """The runs of these model versions on these devices, as column name -> array (unordered)."""
    chunks = list(_chunks(project, version_pks, device_pks)) if version_pks and device_pks else []
    out = {name: np.concatenate([c[name] for c in chunks]) if chunks else np.empty(0, _DTYPES[pg_type])
           for name, pg_type in _FIELDS}
    for name, names in _CODED.items():
        if (out[name] < 0).any():
            raise ValueError(f"a run's {name} is not one of {', '.join(names)}")
    return out


def _chunks(project, version_pks: list[int], device_pks: list[int]) -> Iterator[dict[str, np.ndarray]]:
    if connection.vendor == "postgresql":
        codes = [f"(coalesce(array_position(%s::text[], {c}::text), 0) - 1)::int2" for c in _CODED]
        values = [f"coalesce({c}, 'NaN')" for c in VALUE_COLUMNS]
        query = (f"SELECT id, model_version_id, device_id, os_major, {', '.join(codes + values)}, started_at "
                 f"FROM {Run._meta.db_table} WHERE project_id = %s AND model_version_id = ANY(%s) "
                 f"AND device_id = ANY(%s)")
        with connection.cursor() as cursor:
            yield from copy_columns(cursor.cursor, query, [*map(list, _CODED.values()), project.id, version_pks,
                                                           device_pks], _FIELDS, CHUNK)
        return
    # SQLite has no COPY: rows through the ORM, a chunk at a time.
    names = [name for name, _ in _FIELDS]
    rows = (Run.objects.filter(project=project, model_version_id__in=version_pks, device_id__in=device_pks)
            .order_by().values_list(*names).iterator(chunk_size=CHUNK))
    lookup = {name: {n: i for i, n in enumerate(vocabulary)} for name, vocabulary in _CODED.items()}
    while batch := [row for _, row in zip(range(CHUNK), rows)]:
        columns = dict(zip(names, zip(*batch)))
        del batch
        for name, codes in lookup.items():
            columns[name] = [codes.get(v, -1) for v in columns[name]]
        columns["started_at"] = [(t - _EPOCH) // timedelta(microseconds=1) for t in columns["started_at"]]
        yield {name: np.array(columns[name], dtype=_DTYPES[pg_type]) for name, pg_type in _FIELDS}  # None -> NaN
