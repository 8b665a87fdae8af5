"""What a production PostgreSQL's autovacuum does after a load, done before a benchmark measures.

Autovacuum is off on these machines (``SHOW autovacuum``), so a load (and a sketch rebuild, which deletes and rewrites
every row) leaves its dead tuples and no planner statistics behind: at 1M runs the sketch tables held 1.7-10 dead
rows per live one, and the planner estimated 399 totals rows of a project that has 29,157. Measuring on that would
measure the box's settings, not Perfboard.
"""


def vacuum_analyze() -> None:
    """VACUUM ANALYZE the runs, their warm predictions and every sketch tier (PostgreSQL; else nothing)."""
    from django.db import connection

    from collector.models import PendingRun, Run, RunPredictions
    from collector.sketches import tiers

    if connection.vendor != "postgresql":
        return
    tables = [Run._meta.db_table, RunPredictions._meta.db_table, PendingRun._meta.db_table,
              *(m._meta.db_table for m in tiers())]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")
