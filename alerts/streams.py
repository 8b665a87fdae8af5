"""The regression check's reading side (issue 13, item 4): one (model, chip) group of a project's runs at a time, as
numpy columns (:class:`insights.columns.RunColumns`), ordered by version rank, start time and id in the database.

One query per group, by model version and device ids (the ``run_version_device_units`` index; no join), read in
chunks of :data:`CHUNK` rows that become arrays at once: the check holds one group's columns, never a model's rows
as Python tuples (at 1M runs those took 800 MB).
"""
import itertools
from dataclasses import dataclass

import numpy as np
from django.db.models import Case, IntegerField, Value, When

from collector.models import Device, ModelVersion, Run
from insights.columns import VALUE_COLUMNS, RunColumns, version_ranks
from insights.vocabulary import RESHAPE_FREQUENCIES, SPECIALIZATION_STRATEGIES, version_key

CHUNK = 10_000
HINT_COLUMNS = ("specialization_strategy", "reshape_frequency")
DEFAULT_HINTS = (SPECIALIZATION_STRATEGIES[0], RESHAPE_FREQUENCIES[0])
_READ = ("id", "model_version_id", "device_id", "compute_units", "os_major", "load_kind", "status", *VALUE_COLUMNS,
         *HINT_COLUMNS)


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


def read_group(project, model: str, chip: str) -> Group:
    """The project's runs of ``model`` on the devices of ``chip``, in the check's order."""
    version_of = dict(ModelVersion.objects.filter(project=project, name=model).values_list("id", "version"))
    versions = sorted(set(version_of.values()), key=lambda v: (version_key(v), v))
    code_of_version = {pk: versions.index(v) for pk, v in version_of.items()}
    rank = dict(zip(versions, version_ranks(versions)))
    identifier_of = dict(Device.objects.filter(chip=chip).values_list("id", "identifier"))
    devices = sorted(identifier_of.values())
    code_of_device = {pk: devices.index(identifier) for pk, identifier in identifier_of.items()}
    hints: dict[tuple[str, str], int] = {}
    hint_parts: list[np.ndarray] = []

    def chunks():
        if not version_of or not identifier_of:
            return
        by_rank = Case(*[When(model_version_id=pk, then=Value(rank[v])) for pk, v in version_of.items()],
                       output_field=IntegerField())
        rows = (Run.objects.filter(project=project, model_version_id__in=list(version_of),
                                   device_id__in=list(identifier_of))
                .order_by(by_rank, "started_at", "id").values_list(*_READ).iterator(chunk_size=CHUNK))
        while batch := list(itertools.islice(rows, CHUNK)):
            columns = list(zip(*batch))
            del batch
            hint_parts.append(np.fromiter((hints.setdefault(h, len(hints)) for h in zip(*columns[-2:])), np.int16,
                                          len(columns[0])))
            yield (columns[0], [code_of_version[pk] for pk in columns[1]],
                   [code_of_device[pk] for pk in columns[2]], *columns[3:-2])

    columns = RunColumns.from_chunks(chip, chunks(), versions, devices)
    hint = np.concatenate(hint_parts) if hint_parts else np.empty(0, np.int16)
    return Group(columns, hint, list(hints))
