"""The check's reader (alerts.streams): every run of each (model, chip) group, in the check's order, with the values
the ORM gives, on PostgreSQL (binary COPY) and SQLite alike."""
import numpy as np
import pytest
from django.db import connection

from alerts import streams
from alerts.binary_copy import copy_columns
from alerts.check import RUN_COLUMNS
from collector.models import Run
from insights.columns import RunColumns

pytestmark = pytest.mark.django_db


def test_groups_hold_each_run_as_the_orm_reads_it(fleet, monkeypatch):
    monkeypatch.setattr(streams, "CHUNK", 97)  # many chunks: their seams are part of what is compared
    runs = Run.objects.filter(project=fleet)
    models = sorted(set(runs.values_list("model_version__name", flat=True)))
    chips = sorted(set(runs.values_list("device__chip", flat=True)))
    hints = dict((row[0], row[1:]) for row in runs.values_list("id", *streams.HINT_COLUMNS))
    read = missing = 0
    for model, groups in streams.read_groups(fleet, {m: chips for m in models}):
        expected = RunColumns.from_rows(runs.filter(model_version__name=model).values_list(*RUN_COLUMNS))
        for chip, group in groups:
            got, want = group.columns, expected.get(chip)
            if want is None:
                assert len(got) == 0
                continue
            assert got.ids.tolist() == want.ids.tolist()  # the same runs in the same order
            for codes, names in (("version", "versions"), ("device", "devices")):
                assert ([getattr(got, names)[c] for c in getattr(got, codes).tolist()]
                        == [getattr(want, names)[c] for c in getattr(want, codes).tolist()])
            for name in ("compute_units", "os_major", "load_kind", "status"):
                assert getattr(got, name).tolist() == getattr(want, name).tolist()
            for name, values in want.values.items():
                np.testing.assert_array_equal(got.values[name], values)  # a missing timing is NaN in both
            assert [group.hints[h] for h in group.hint.tolist()] == [hints[i] for i in got.ids.tolist()]
            read += len(got)
            missing += sum(int(np.isnan(v).sum()) for v in got.values.values())
    assert read == runs.count() and missing  # every run, and timings that failed runs lack among them


@pytest.mark.postgres_only
def test_binary_copy_refuses_a_null():
    with connection.cursor() as cursor:
        rows = copy_columns(cursor.cursor, "SELECT 1::int8 UNION ALL SELECT NULL::int8", [], [("x", "int8")], 10)
        with pytest.raises(ValueError, match="NULL"):
            list(rows)
