"""Array parameters in PostgreSQL's binary format, packed a column at a time.

The sketch tiers' upsert (``collector.sketches._Arrays``) sends each column as one array parameter. psycopg dumps a
Python list element by element in Python (its ``ListBinaryDumper``: a dumper looked up, a length packed, per value),
which took ~18% of a fold's process time at 1M runs (py-spy, ``benchmarks.sketch_writes``). Here a column of integers
or dates is packed by numpy in one call and a column of strings or bytes by one join; the result is handed to psycopg
as a value of a ``bytes`` subclass whose dumper declares the array's type.

The format is ``array_recv``'s: dimensions (1), a has-nulls flag, the element type's oid, the length and lower bound
(1), then each element as a 4-byte big-endian length (-1 for NULL) and its binary value.
"""
import struct
from datetime import date

import numpy as np
from psycopg import adapters, pq
from psycopg.adapt import Dumper

# (element oid, array oid) of the element types the sketch tables' columns have; varchar(n) goes as text, cast by the
# statement (``%b::varchar(20)[]``), as psycopg's own dumper sends a str.
_OIDS = {"bigint": (20, 1016), "integer": (23, 1007), "smallint": (21, 1005), "date": (1082, 1182),
         "text": (25, 1009), "bytea": (17, 1001)}
# numpy's big-endian element type and struct's, of the fixed-size types
_FIXED = {"bigint": (">i8", "!q"), "integer": (">i4", "!i"), "smallint": (">i2", "!h"), "date": (">i4", "!i")}
_PG_EPOCH = date(2000, 1, 1).toordinal()  # a binary date is the days since 2000-01-01
_HEAD = struct.Struct("!iiIii")
_LENGTH = struct.Struct("!i").pack
_NULL = _LENGTH(-1)


def element_type(db_type: str) -> str:
    """The element type a column of this database type is sent as (``varchar(20)`` -> ``text``)."""
    base = db_type.split("(")[0]
    return "text" if base == "varchar" else base


def _array_class(array_oid: int) -> type:
    """A ``bytes`` subclass whose values psycopg sends, as they are, as a binary parameter of this array type."""
    cls = type(f"PackedArray{array_oid}", (bytes,), {"__slots__": ()})
    dumper = type(f"PackedArray{array_oid}Dumper", (Dumper,),
                  {"format": pq.Format.BINARY, "oid": array_oid, "dump": lambda self, obj: obj})
    adapters.register_dumper(cls, dumper)
    return cls


_CLASSES = {name: _array_class(array_oid) for name, (_, array_oid) in _OIDS.items()}


def packed(values, db_type: str) -> bytes:
    """``values`` (a sequence; None for NULL) as one binary array parameter of the column's element type."""
    name = element_type(db_type)
    if name not in _OIDS:
        raise ValueError(f"no binary packing for a column of type {db_type!r}")
    element_oid = _OIDS[name][0]
    n = len(values)
    fixed = _FIXED.get(name)
    if fixed is not None and None not in values:
        if name == "date":
            values = [d.toordinal() - _PG_EPOCH for d in values]
        items = np.empty(n, dtype=[("length", ">i4"), ("value", fixed[0])])
        items["length"] = np.dtype(fixed[0]).itemsize
        items["value"] = values
        return _CLASSES[name](_HEAD.pack(1, 0, element_oid, n, 1) + items.tobytes())
    parts = [b""]
    has_null = 0
    for value in values:
        if value is None:
            parts.append(_NULL)
            has_null = 1
            continue
        if fixed is not None:
            value = struct.pack(fixed[1], value.toordinal() - _PG_EPOCH if name == "date" else value)
        elif name == "text":
            value = value.encode()
        parts.append(_LENGTH(len(value)))
        parts.append(value)
    parts[0] = _HEAD.pack(1, has_null, element_oid, n, 1)
    return _CLASSES[name](b"".join(parts))
