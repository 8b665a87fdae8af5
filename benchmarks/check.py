"""The regression check from scratch on a synthetic fleet: wall time and peak memory (issue 13: at 1M runs ≤ 15 s and
≤ 400 MB).

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> python -m benchmarks.check --runs 1000000 [--seed 7]
[--replicate 10]``

The first invocation loads benchmarks.fleet's ``--runs`` runs (seed ``--seed``) into project ``check-<runs>`` of
that database (collector.bulk, ~1,800 runs/s on an idle box: 1M takes ~10 minutes, hours on a busy one); later
ones find them there and reuse them. With ``--replicate K`` (PostgreSQL) it loads ``runs / K`` and copies them K - 1
times in SQL, each copy with new ids and its timings and start times jittered (±1%, up to 10 minutes), so copies
do not tie: the same fleet's shape at K times the runs, in minutes; then rebuilds the project's sketch rows from all
its runs (the copies bypass the ingest that writes them; 1M runs: ~4 minutes). Use a database of your own:
``check_all`` checks every project in it, and the figures count all of them.

Each measurement runs in a fresh Python process (so the load's memory is not in it) and checks from scratch: the
project's alerts, summaries and watermark are deleted first, so every series is read and every alert created. Two
passes in that process:

1. timed: wall seconds of ``alerts.check.check_all()`` (what the hourly task runs) and its RSS growth (the peak RSS,
   VmHWM, reset just before, minus the RSS before), i.e. what a worker's memory limit sees. The goal's MB is this
   one.
2. traced: the same check again from scratch under ``tracemalloc``: the peak of Python's own allocations (numpy's
   arrays included; not the C libraries' such as libpq's buffers). Slower, so not timed.

It prints the alerts found and a digest of their fingerprints and evidence: a change to the check that must not
change what it finds has to print the same digest.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tracemalloc


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    import django

    django.setup()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> None:
    """Start the peak RSS (VmHWM) over from the current RSS: a child forked from the loading parent inherits the
    parent's peak (``ru_maxrss`` survives fork and exec), so the first check after a 1M load read +578 MB it never
    used (+30 MB measured from its own peak)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024


def ensure_loaded(slug: str, runs: int, seed: int, replicate: int = 1) -> None:
    from benchmarks.fleet import generate
    from collector.bulk import bulk_load
    from collector.models import Run

    have = Run.objects.filter(project__slug=slug).count()
    if have == runs:
        print(f"{slug}: {have} runs already loaded")
        return
    drawn = runs // replicate
    if have not in (0, drawn):
        raise SystemExit(f"{slug} holds {have} runs, not {runs}: delete the project or use another database")
    t0 = time.perf_counter()
    if not have:
        bulk_load(slug, generate(drawn, seed))
    for _ in range(replicate - 1):
        _copy_runs(slug, drawn)
    if replicate > 1:  # the copies went around the ingest, so their sketch rows are written here
        from collector.models import Project
        from collector.sketches import rebuild

        rebuild(Project.objects.get(slug=slug))
    from benchmarks.maintenance import vacuum_analyze

    vacuum_analyze()
    took = time.perf_counter() - t0
    print(f"{slug}: loaded {runs} runs ({drawn} drawn, {replicate}x) in {took:.0f} s")


# Jittered copies of a project's first ``drawn`` runs (PostgreSQL): the columns not named here are copied as they are.
_JITTERED = {"id": "copy_id", "run_id": "gen_random_uuid()",
             "body_sha256": "md5(random()::text) || md5(random()::text)",
             "received_at": "now()", "started_at": "started_at + random() * interval '10 minutes'",
             **{c: f"{c} * j" for c in ("decrypt_ms", "compile_ms", "load_ms", "first_prediction_ms",
                                         "prediction_min_ms", "prediction_median_ms", "prediction_p90_ms",
                                         "prediction_p99_ms", "prediction_mean_ms", "prediction_std_ms",
                                         "peak_memory_mb")}}


def _copy_runs(slug: str, drawn: int) -> None:
    """One statement: each original gets its copy's id from the sequence, so its warm predictions (RunPredictions)
    are copied under that id too."""
    from django.db import connection, transaction

    from collector.models import Project, Run

    project = Project.objects.get(slug=slug)
    columns = [f.column for f in Run._meta.concrete_fields]
    first = list(Run.objects.filter(project=project).order_by("id").values_list("id", flat=True)[:drawn])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"WITH original AS (SELECT *, exp((random() - 0.5) * 0.02) AS j, "
                       f"nextval(pg_get_serial_sequence('collector_run', 'id')) AS copy_id FROM collector_run "
                       f"WHERE project_id = %s AND id BETWEEN %s AND %s), "
                       f"copied AS (INSERT INTO collector_run ({', '.join(columns)}) "
                       f"SELECT {', '.join(_JITTERED.get(c) or c for c in columns)} FROM original) "
                       f"INSERT INTO collector_runpredictions (run_id, predictions_ms) "
                       f"SELECT copy_id, p.predictions_ms FROM original "
                       f"JOIN collector_runpredictions p ON p.run_id = original.id",
                       [project.id, first[0], first[-1]])


def _from_scratch() -> None:
    from alerts.models import Alert, AlertSummary, CheckState

    Alert.objects.all().delete()
    AlertSummary.objects.all().delete()
    CheckState.objects.all().delete()


def _digest() -> tuple[int, str]:
    from alerts.models import Alert

    rows = sorted(Alert.objects.values_list("fingerprint", "kind", "version", "baseline_version", "baseline",
                                            "current", "change", "p_value", "baseline_run_ids", "current_run_ids"))
    text = json.dumps([[*r[:4], *(None if v is None else round(v, 9) for v in r[4:8]), *r[8:]] for r in rows])
    return len(rows), hashlib.sha256(text.encode()).hexdigest()[:16]


def measure(trace: bool = True) -> dict:
    from alerts.check import check_all
    from collector.models import Run

    _from_scratch()
    _reset_peak_rss()
    before = _rss_mb()
    t0 = time.perf_counter()
    results = check_all()
    wall = time.perf_counter() - t0
    rss_growth = _peak_rss_mb() - before
    alerts, digest = _digest()

    traced_peak = None
    if trace:
        _from_scratch()
        tracemalloc.start()
        check_all()
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        if _digest() != (alerts, digest):
            raise SystemExit("the traced check found other alerts than the timed one")
    return {"runs_in_db": Run.objects.count(), "groups": sum(r.groups for r in results),
            "errors": [r.error for r in results if r.error], "wall_s": wall, "rss_growth_mb": rss_growth,
            "tracemalloc_peak_mb": traced_peak, "alerts": alerts, "digest": digest}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="measurements, each in a fresh process")
    parser.add_argument("--replicate", type=int, default=1, help="draw runs / K and copy them K - 1 times (SQL)")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc pass (slow at 1M with tuples)")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    _setup()
    if args.measure_only:
        print(json.dumps(measure(not args.no_trace)))
        return
    ensure_loaded(f"check-{args.runs}", args.runs, args.seed, args.replicate)
    for _ in range(args.repeat):
        load = os.getloadavg()[0]
        child = subprocess.run([sys.executable, "-m", "benchmarks.check", "--measure-only",
                                *(["--no-trace"] if args.no_trace else [])], check=True, capture_output=True, text=True)
        m = json.loads(child.stdout.strip().splitlines()[-1])
        if m["errors"]:
            raise SystemExit(f"the check failed: {m['errors']}")
        print(f"check_all from scratch, {m['runs_in_db']} runs, {m['groups']} (model, chips) groups: "
              f"{m['wall_s']:.1f} s, RSS growth {m['rss_growth_mb']:.0f} MB (the goal's), tracemalloc peak "
              f"{'-' if m['tracemalloc_peak_mb'] is None else round(m['tracemalloc_peak_mb'])} MB; "
              f"{m['alerts']} alerts, digest {m['digest']}; "
              f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
