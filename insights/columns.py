"""One chip's runs of one model as numpy columns, the regression check's input (issue 13, item 4). Pure numpy.

The runs are in the check's order: version (by :func:`~insights.vocabulary.version_key`), then start time, then id.
Categories are int codes into a list of names (``versions[version[i]]`` is run i's version); timings are float64
with NaN for a missing one. A series is an index array into these columns, so cutting one chip's runs into levels,
OS cohorts and metrics copies no rows (:mod:`insights.regressions`).

``alerts.check`` builds them from the database in that order, one (model, chip) group at a time
(:meth:`RunColumns.from_chunks`); :meth:`RunColumns.from_rows` builds them from :data:`COLUMNS` tuples in any order
(tests, benchmarks/fleet_detection.py).
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .vocabulary import COMPUTE_UNITS, LOAD_KINDS, METRICS, OK, STATUSES, version_key

# One run as the check reads it (alerts.check's values_list, the tuples of find_regressions).
COLUMNS = ("id", "version", "device", "chip", "compute_units", "os_major", "load_kind", "status", "started_at",
           "load_ms", "first_prediction_ms", "prediction_median_ms", "prediction_p90_ms", "peak_memory_mb")
# The timing and size columns the metrics read (float64, NaN when missing).
VALUE_COLUMNS = tuple(dict.fromkeys(m.column for m in METRICS.values()))
_I = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True)
class RunColumns:
    chip: str
    ids: np.ndarray  # int64
    version: np.ndarray  # codes into versions, which are in version_key order
    versions: tuple[str, ...]
    device: np.ndarray  # codes into devices
    devices: tuple[str, ...]
    compute_units: np.ndarray  # codes into vocabulary.COMPUTE_UNITS
    os_major: np.ndarray  # int
    load_kind: np.ndarray  # codes into vocabulary.LOAD_KINDS
    status: np.ndarray  # codes into vocabulary.STATUSES (every status but "ok" is a failure)
    values: dict[str, np.ndarray]  # VALUE_COLUMNS -> float64

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, index: np.ndarray) -> "RunColumns":
        """The runs at ``index`` (ascending keeps the order), e.g. one configuration's."""
        return RunColumns(self.chip, self.ids[index], self.version[index], self.versions, self.device[index],
                          self.devices, self.compute_units[index], self.os_major[index], self.load_kind[index],
                          self.status[index], {k: v[index] for k, v in self.values.items()})

    @cached_property
    def ok(self) -> np.ndarray:
        return self.status == _STATUS[OK]

    @cached_property
    def measures(self) -> dict[str, np.ndarray]:
        """Per metric (its alert name), whether each run measures it: successful (a failed run's timings describe
        the failure), with a value, and of the metric's load kind if it has one. Once per columns: every compute
        unit, level and cohort of a chip selects from it."""
        out = {}
        for m in METRICS.values():
            keep = self.ok & ~np.isnan(self.values[m.column])
            if m.load_kind is not None:
                keep &= self.load_kind == LOAD_KINDS.index(m.load_kind)
            out[m.alert_name] = keep
        return out

    @cached_property
    def rank(self) -> np.ndarray:
        """Per version code, its place in version order (:func:`version_ranks`)."""
        return np.asarray(version_ranks(self.versions), dtype=np.int64)

    @classmethod
    def from_chunks(cls, chip: str, chunks: Iterable[Sequence[Sequence]], versions: Sequence[str],
                    devices: Sequence[str]) -> "RunColumns":
        """From chunks of columns in the check's order: (ids, version codes, device codes, compute units, OS majors,
        load kinds, statuses, *VALUE_COLUMNS), the codes already into ``versions`` and ``devices``, the other
        categories as strings, a missing value as None. Only one chunk's Python objects are alive at a time."""
        parts: list[list[np.ndarray]] = [[] for _ in range(7 + len(VALUE_COLUMNS))]
        units, kinds = _codes(COMPUTE_UNITS), _codes(LOAD_KINDS)
        for ids, version, device, compute_units, os_major, load_kind, status, *values in chunks:
            n = len(ids)
            converted = [np.fromiter(ids, np.int64, n), np.fromiter(version, np.int32, n),
                         np.fromiter(device, np.int32, n),
                         np.fromiter((units[u] for u in compute_units), np.int8, n), np.fromiter(os_major, np.int16, n),
                         np.fromiter((kinds[k] for k in load_kind), np.int8, n),
                         np.fromiter((_STATUS[s] for s in status), np.int8, n)]
            converted += [np.array(v, dtype=np.float64) for v in values]  # None -> nan
            for part, array in zip(parts, converted):
                part.append(array)
        dtypes = [np.int64, np.int32, np.int32, np.int8, np.int16, np.int8, np.int8] + [np.float64] * len(VALUE_COLUMNS)
        cols = [np.concatenate(p) if p else np.empty(0, dtype) for p, dtype in zip(parts, dtypes)]
        return cls(chip, cols[0], cols[1], tuple(versions), cols[2], tuple(devices), cols[3], cols[4], cols[5],
                   cols[6], dict(zip(VALUE_COLUMNS, cols[7:])))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple]) -> dict[str, "RunColumns"]:
        """:data:`COLUMNS` tuples of any chips, in any order -> chip -> its columns in the check's order."""
        ordered = sorted(rows, key=lambda r: (version_key(r[_I["version"]]), r[_I["started_at"]], r[0]))
        by_chip: dict[str, list[tuple]] = {}
        for r in ordered:
            by_chip.setdefault(r[_I["chip"]], []).append(r)
        out = {}
        for chip, chip_rows in by_chip.items():
            versions = sorted({r[_I["version"]] for r in chip_rows}, key=lambda v: (version_key(v), v))
            devices = sorted({r[_I["device"]] for r in chip_rows})
            v_code, d_code = _codes(versions), _codes(devices)
            columns = [[r[_I[c]] for r in chip_rows] for c in COLUMNS]
            chunk = (columns[_I["id"]], [v_code[v] for v in columns[_I["version"]]],
                     [d_code[d] for d in columns[_I["device"]]],
                     *(columns[_I[c]] for c in ("compute_units", "os_major", "load_kind", "status")),
                     *(columns[_I[c]] for c in VALUE_COLUMNS))
            out[chip] = cls.from_chunks(chip, [chunk], versions, devices)
        return out


def _codes(names: Sequence) -> dict:
    return {name: i for i, name in enumerate(names)}


_STATUS = _codes(STATUSES)


def version_ranks(versions: Sequence[str]) -> list[int]:
    """Each version's place in :func:`version_key` order; versions with equal keys ("3.2", "3.2.0") share one, so
    their runs sort by time as one release's."""
    keys = sorted({version_key(v) for v in versions})
    return [keys.index(version_key(v)) for v in versions]


def version_ranges(codes: np.ndarray, names: Sequence[str]) -> list[tuple[str, range]]:
    """Consecutive runs of each version as (version, index range), from version codes in the check's order (what
    :func:`insights.detection.version_groups` computes from the versions' names)."""
    if codes.size == 0:
        return []
    bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), int(codes.size)]
    firsts = codes[bounds[:-1]].tolist()
    groups = [(names[c], range(a, b)) for c, a, b in zip(firsts, bounds, bounds[1:])]
    if len(set(firsts)) != len(groups):
        raise ValueError("runs of a version are not contiguous: order by version")
    return groups
