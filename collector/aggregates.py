"""Percentiles computed by the database, so pages aggregate the per-run summary columns without loading runs.

PostgreSQL has the ordered-set aggregate `percentile_cont(p) WITHIN GROUP (ORDER BY x)`. SQLite has none; the
embedded set-up registers `perfboard_percentile(x, p)` on every SQLite connection (`collector.apps`), a Python
aggregate that still runs inside the query: Django never sees the individual runs. Both interpolate linearly
between order statistics (the same definition as numpy's default), and both ignore NULLs.
"""
from django.db.models import Aggregate, FloatField


class Percentile(Aggregate):
    """The p-th quantile (0 <= p <= 1) of a column, e.g. `Percentile("load_ms", 0.5, filter=Q(...))`."""

    function = "percentile_cont"
    name = "Percentile"
    output_field = FloatField()
    allow_distinct = False

    def __init__(self, expression, p, **extra):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"percentile must be within [0, 1], got {p}")
        self.p = float(p)
        super().__init__(expression, **extra)

    def as_postgresql(self, compiler, connection, **extra_context):
        clone = self.copy()
        clone.template = f"%(function)s({self.p!r}) WITHIN GROUP (ORDER BY %(expressions)s)"
        return super(Percentile, clone).as_sql(compiler, connection, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        clone = self.copy()
        clone.function = "perfboard_percentile"
        clone.template = f"%(function)s(%(expressions)s, {self.p!r})"
        return super(Percentile, clone).as_sql(compiler, connection, **extra_context)


class Median(Percentile):
    name = "Median"

    def __init__(self, expression, **extra):
        super().__init__(expression, 0.5, **extra)


class SQLitePercentile:
    """`perfboard_percentile(x, p)` for SQLite: linear interpolation between order statistics."""

    def __init__(self):
        self.values = []
        self.p = 0.5

    def step(self, value, p):
        if value is not None:
            self.values.append(value)
        self.p = p

    def finalize(self):
        if not self.values:
            return None
        xs = sorted(self.values)
        rank = self.p * (len(xs) - 1)
        low = int(rank)
        high = min(low + 1, len(xs) - 1)
        return xs[low] + (xs[high] - xs[low]) * (rank - low)


def register_sqlite_functions(sender, connection, **kwargs):
    """connection_created receiver: adds perfboard_percentile to SQLite connections."""
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("perfboard_percentile", 2, SQLitePercentile)
