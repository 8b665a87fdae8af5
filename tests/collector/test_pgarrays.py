"""collector.pgarrays: a column packed as one binary array parameter reaches PostgreSQL as the same values, NULLs
and all, in every element type the sketch tables' columns have."""
from datetime import date

import psycopg
import pytest
from django.db import connection

from collector.pgarrays import element_type, packed

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]

COLUMNS = [
    ("bigint", [1, 2**40, -7, 0]),
    ("bigint", [5, None, 9]),
    ("integer", [2**31 - 1, -(2**31), 12]),
    ("smallint", [26, 18, -1]),
    ("smallint", [None, 17]),
    ("date", [date(2026, 12, 2), date(1999, 12, 31), date(2000, 1, 1)]),
    ("date", [date(2026, 1, 1), None]),
    ("varchar(20)", ["cpuAndNeuralEngine", "", "ü-ñ 𝛑", None]),
    ("text", ['{"crash": 2}', "{}"]),
    ("bytea", [b"\x00\x01\xff", b"", None, bytes(range(256)) * 40]),
]


def _echo(db_type, values):
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"SELECT %b::{db_type}[]", [packed(values, db_type)], binary=True)
        return cursor.fetchone()[0]


@pytest.mark.parametrize("db_type,values", COLUMNS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(COLUMNS)])
def test_a_packed_column_reads_back_as_the_values_it_was_packed_from(db_type, values):
    assert _echo(db_type, values) == values


def test_an_element_count_and_order_survive_a_column_of_thousands():
    values = list(range(-5000, 5000, 3))
    assert _echo("bigint", values) == values
    assert _echo("integer", values[::-1]) == values[::-1]


def test_a_value_too_long_for_its_varchar_column_is_cut_as_the_statement_casts_it():
    # The upsert's cast (%b::varchar(8)[]) is explicit: PostgreSQL truncates, as with psycopg's own list dumper.
    assert _echo("varchar(8)", ["fieldfield"]) == ["fieldfie"]


def test_a_column_type_without_a_packing_is_refused_by_name():
    with pytest.raises(ValueError, match="numeric"):
        packed([1], "numeric")
    assert element_type("varchar(64)") == "text"
