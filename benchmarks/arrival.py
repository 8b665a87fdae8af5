"""Store a benchmark database's runs in the order a live Perfboard would have received them.

The benchmarks load their fleets in the simulator's order: each run's start time drawn at random over its version's
weeks, so the runs of one day lie one per heap page across the whole table (the stats API's cold loads from noon a
week ago at 1M runs: the cut day's 4,462 runs on 4,486 pages). A live Perfboard stores runs as they are uploaded:
a lab runner's as it finishes them, an app's field telemetry within a day. This gives every run such an arrival time
(``received_at``: its start plus up to 10 minutes for a lab run, up to 24 hours for a field run, drawn with a fixed
seed), rewrites the runs table in that order (``CLUSTER`` on a temporary index), rebuilds every sketch row (a
rebuild writes a day's rows together, as the folds of that day do: ``collector.sketches.write``), then runs
VACUUM ANALYZE. Versions stay interleaved, as uploads interleave them: what changes is where a day's runs lie, not
a version's. Every project in the database is reordered.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hchk_1m_arrival python -m benchmarks.arrival

Measure both layouts: the simulator's order is the worst case for a time-bounded read, this one the expected case.
"""
import os
import sys
import time


def arrival_order(stdout=sys.stdout) -> None:
    from django.db import connection

    from benchmarks.maintenance import vacuum_analyze
    from collector.models import Run
    from collector.sketches import rebuild

    if connection.vendor != "postgresql":
        raise SystemExit("benchmarks.arrival needs PostgreSQL: set DATABASE_URL=postgres://...")
    table = Run._meta.db_table
    steps = [
        ("arrival times", "SELECT setseed(0.25); "
                          f"UPDATE {table} SET received_at = started_at + random() * CASE WHEN source = 'lab' "
                          "THEN interval '10 minutes' ELSE interval '24 hours' END"),
        ("runs rewritten in arrival order",
         f"CREATE INDEX run_arrival_tmp ON {table} (received_at, id); CLUSTER {table} USING run_arrival_tmp; "
         f"DROP INDEX run_arrival_tmp"),
    ]
    for name, sql in steps:
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql)
        stdout.write(f"{name}: {time.perf_counter() - t0:.0f} s\n")
    t0 = time.perf_counter()
    rows = rebuild()
    stdout.write(f"sketch rows rebuilt: {rows:,} daily rows, {time.perf_counter() - t0:.0f} s\n")
    vacuum_analyze()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    import django

    django.setup()
    arrival_order()
