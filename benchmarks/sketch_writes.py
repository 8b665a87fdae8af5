"""What the sketch update of an upload costs once the sketch rows are large (issue 13, ingest at scale).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hchk_10m python -m benchmarks.sketch_writes --runs 3000

benchmarks.ingest uploads into a fresh database, where every sketch is small; at 1M or 10M runs the rows an upload
touches hold sketches of thousands of values each, and every tier's row is read, merged and written back whole. This
re-adds the database's newest ``--runs`` stored runs to their rows (``collector.sketches.add_runs``, every tier, what
an upload of them would do) in a transaction that is rolled back, ``--repeat`` times, and prints the wall time, this
process's CPU and the PostgreSQL backend's (read from /proc when the server runs on this machine), per run.
"""
import argparse
import os
import time


class _Rollback(Exception):
    pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from benchmarks.ingest import cpu_seconds
    from collector import sketches
    from collector.models import Run

    rows = list(Run.objects.order_by("-id").values(*sketches.RUN_FIELDS)[:args.runs])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 0")
        backend = cursor.fetchone()[0]
    local = os.path.exists(f"/proc/{backend}") if backend else False
    print(f"{len(rows)} runs re-added to their sketch rows ({Run.objects.count():,} runs in the database), "
          f"load average {os.getloadavg()[0]:.2f}")
    for i in range(args.repeat):
        wall, cpu, db = time.perf_counter(), time.process_time(), cpu_seconds([backend]) if local else 0.0
        try:
            with transaction.atomic():
                sketches.add_runs(rows)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                db = cpu_seconds([backend]) - db if local else None
                raise _Rollback
        except _Rollback:
            pass
        per = 1e6 / len(rows)
        print(f"  {i + 1}: {wall:.2f} s wall, {wall * per:.0f} µs a run; this process {cpu * per:.0f} µs, "
              f"PostgreSQL {'-' if db is None else f'{db * per:.0f}'} µs a run" + (" (cold)" if i == 0 else ""))


if __name__ == "__main__":
    main()
