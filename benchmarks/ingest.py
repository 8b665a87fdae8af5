"""Ingest throughput: the HTTP API (gunicorn, PostgreSQL) against PostgreSQL COPY of the same rows into the same table.

    python -m benchmarks.ingest --runs 20000 --batch 500

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it creates a scratch database
(--database, default `perfboard_bench`, dropped first), migrates it, serves the app with gunicorn on a free loopback
port and posts the fleet in batches from --clients concurrent clients. The COPY reference stores the same runs
(validated, summarised and hashed beforehand, so it is the database's floor: no parsing, no duplicate check, no sketch
update) with their own run_ids into a second project of the same table.

The method (issue 13, item 3):
- every gunicorn worker is warm before the clock starts: warm-up batches are posted until each worker's pid has
  answered one (a gunicorn post_request hook records it), so no timed request pays imports, pydantic's schema build
  or the first database connection;
- the two are interleaved in --rounds rounds: the API stores round k's runs, then COPY stores round k's copies, in
  batches of the same size, one transaction per batch (as an upload), so the COPY writes into the table (and
  indexes) the API just grew and each side sees the same table size; box noise falls on both;
- CPU per run: the gunicorn workers' and the benchmark process's CPU (from /proc) and the PostgreSQL backends' (when
  the server runs on this machine), divided by the runs each side stored.

With ``--fold`` the app runs as deployed with a task broker (Redis at BENCH_REDIS, default
redis://127.0.0.1:6379/7, flushed first): an upload leaves its runs pending and a Celery worker (one process, started
here, at the niceness docker-compose.yml gives it, --fold-nice) folds them into their sketch rows
(collector.sketches.fold_pending), beside the API as it runs. After each API
round the clock also measures the drain: until no run is pending (the benchmark queues a last fold, as Celery beat
would). The API's rate is its own; the fold's is reported as the drain time, the rate at which runs reach their rows
(runs / (API + drain time)), and the worker's and its PostgreSQL backends' CPU per run (its backends named by
PGAPPNAME, alive, from /proc, and closed ones from the postmaster's reaped children).

Prints runs/s of both, the ratio (issue 13's goal: API >= 0.6 of COPY) and the CPU per run; where a worker's CPU
goes, step by step, is benchmarks/ingest_steps.py.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

TICK = os.sysconf("SC_CLK_TCK")

HOOK = """
def post_request(worker, req, environ, resp):
    with open({path!r}, "a") as f:
        f.write(f"{{worker.pid}}\\n")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(server, name):
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server}/{name}"


def cpu_seconds(pids) -> float:
    """user + system CPU of processes by pid (0 for those gone or not on this machine)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


FOLD_APP = "perfboard-bench-fold"  # the fold worker's application_name (PGAPPNAME), to tell its backends apart
FOLD_NICE = 10  # docker-compose.yml's sketches worker: uploads and pages before folds on a shared host


def backends(exclude=(), folds: bool = False) -> list[int]:
    """PostgreSQL backend pids connected to this database: the fold worker's (``folds``), else the others (the
    API's, once its workers are warm)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, application_name = %s FROM pg_stat_activity WHERE datname = current_database() "
                       "AND backend_type = 'client backend'", [FOLD_APP])
        return [pid for (pid, fold) in cursor.fetchall() if pid not in exclude and fold == folds]


def reaped_cpu(pid) -> float:
    """CPU of a process's children that have exited and been waited for (cutime + cstime): for the postmaster, of
    the backends that closed, such as a Celery worker's when it drops its connection."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def parent(pid) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def pending_runs() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM collector_pendingrun")
        return cursor.fetchone()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description="API ingest vs PostgreSQL COPY into the same table")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved API / COPY rounds")
    parser.add_argument("--database", default="perfboard_bench", help="scratch database (dropped and created)")
    parser.add_argument("--sessions", action="store_true",
                        help="each batch one lab session: its runs share one sketch key (see sessions())")
    parser.add_argument("--fold", action="store_true",
                        help="with a task broker: uploads leave runs pending, a Celery worker folds them")
    parser.add_argument("--fold-nice", type=int, default=FOLD_NICE,
                        help=f"the fold worker's niceness (default {FOLD_NICE}, as docker-compose.yml starts it)")
    args = parser.parse_args(argv)

    url = fresh_database(os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"), args.database)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "perfboard.settings", "DATABASE_URL": url, "DEBUG": "0",
           "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-" + uuid.uuid4().hex), "SECURE_SSL_REDIRECT": "0",
           "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "CELERY_BROKER_URL": "", "LOG_LEVEL": "WARNING"}
    if args.fold:
        import redis

        broker = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/7")
        redis.Redis.from_url(broker).flushdb()
        env["CELERY_BROKER_URL"] = broker
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env)

    import django

    django.setup()
    import requests
    from django.db import connection, transaction

    from benchmarks.fleet import generate
    from collector.ingest import _columns, _devices, _model_versions, body_hash, copy_rows, insert_predictions
    from collector.models import Project, Run, RunnerToken
    from collector.schema import RunIn

    runs = list(generate(args.runs, seed=11))
    if args.sessions:
        runs = sessions(runs, args.batch)
    # Enough to reach every worker: sync workers take connections from one socket, so one may answer many in a row.
    warm_runs = list(generate(args.workers * 32 * 20, seed=12))
    # Bodies are encoded before the clock starts: the figure is the server's rate, not the client's json.dumps.
    batches = [json.dumps({"runs": runs[i:i + args.batch]}).encode() for i in range(0, len(runs), args.batch)]
    warm = [json.dumps({"runs": warm_runs[i:i + 20]}).encode() for i in range(0, len(warm_runs), 20)]
    api_project = Project.objects.create(slug="bench-api", name="bench-api")
    token = RunnerToken.issue(api_project, "bench")[1]

    # The COPY side's rows, prepared before any clock: its own run_ids, model versions and devices.
    copy_project = Project.objects.create(slug="bench-copy", name="bench-copy")
    validated = [RunIn.model_validate_json(json.dumps(dict(r, run_id=_other_id(r["run_id"])))) for r in runs]
    versions = _model_versions(copy_project, validated)
    devices = _devices({r.device.identifier for r in validated})
    now = datetime.now(timezone.utc)
    rows = [_columns(copy_project, r, body_hash(r), versions, devices, now) for r in validated]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), 100000000)", [Run._meta.db_table])
    copy_ids = list(range(1, len(rows) + 1))
    series = [(pk, r.predictions_ms) for pk, r in zip(copy_ids, validated)]  # COPY'd as the upload does
    copy_batches = [(rows[i:i + args.batch], copy_ids[i:i + args.batch], series[i:i + args.batch])
                    for i in range(0, len(rows), args.batch)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        my_backend = cursor.fetchone()[0]

    pid_file = tempfile.NamedTemporaryFile("w", suffix=".pids", delete=False).name
    config = tempfile.NamedTemporaryFile("w", suffix="_gunicorn.py", delete=False)
    config.write(HOOK.format(path=pid_file))
    config.close()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "perfboard.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "-c", config.name, "--log-level", "warning", "--timeout", "300"],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    folder = None
    if args.fold:
        folder = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "perfboard", "worker", "--pool", "solo", "--loglevel", "WARNING"],
            env={**env, "PGAPPNAME": FOLD_APP},  # libpq names the worker's backends
            preexec_fn=lambda: os.nice(args.fold_nice))

    def drain():
        """Until no run is pending: one last fold queued, as Celery beat would."""
        from collector.tasks import fold_pending_sketches

        fold_pending_sketches.apply_async(ignore_result=True)
        while pending_runs():
            time.sleep(0.02)

    def send(batch):
        r = requests.post(base + "/api/v1/runs", data=batch, timeout=300,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert r.status_code == 201, r.text[:300]

    def copy_batch(batch):
        rows_, ids, series_ = batch
        with transaction.atomic():
            copy_rows(rows_, ids)
            insert_predictions([(pk, values) for pk, values in series_ if values])

    try:
        for _ in range(300):
            try:
                requests.get(base + "/api/schema/", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.1)
        # Warm every worker: concurrent warm-up posts until each worker pid has answered one.
        workers, sent = set(), 0
        with ThreadPoolExecutor(args.workers) as pool:
            while len(workers) < args.workers and sent + args.workers <= len(warm):
                list(pool.map(send, warm[sent:sent + args.workers]))
                sent += args.workers
                workers = set(open(pid_file).read().split())
        if len(workers) < args.workers:
            raise SystemExit(f"only {len(workers)} of {args.workers} workers answered the warm-up")
        worker_pids = [int(p) for p in workers]
        connection.ensure_connection()
        fold_seconds = fold_cpu = fold_db_cpu = 0.0
        if folder:
            drain()  # the warm-up's runs
            fold_pids = [folder.pid]
            # The fold's backends (named by PGAPPNAME), alive or closed (then reaped by the postmaster).
            postmaster = parent(my_backend) if os.path.exists(f"/proc/{my_backend}") else None
        api_backends = backends(exclude={my_backend})

        def fold_db_seconds():
            return reaped_cpu(postmaster) + cpu_seconds(backends(folds=True))

        api_seconds = copy_seconds = 0.0
        api_cpu = api_db_cpu = copy_cpu = copy_db_cpu = client_cpu = 0.0
        per_round = -(-len(batches) // args.rounds)
        for k in range(args.rounds):
            mine = batches[k * per_round:(k + 1) * per_round]
            theirs = copy_batches[k * per_round:(k + 1) * per_round]
            if not mine:
                break
            c0, w0, b0 = time.process_time(), cpu_seconds(worker_pids), cpu_seconds(api_backends)
            if folder:
                f0, fb0 = cpu_seconds(fold_pids), fold_db_seconds()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(send, mine))
            api_seconds += time.perf_counter() - t0
            api_cpu += cpu_seconds(worker_pids) - w0
            api_db_cpu += cpu_seconds(api_backends) - b0
            client_cpu += time.process_time() - c0
            if folder:  # the fold ran beside the API; what it had left after the last upload
                t0 = time.perf_counter()
                drain()
                fold_seconds += time.perf_counter() - t0
                fold_cpu += cpu_seconds(fold_pids) - f0
                fold_db_cpu += fold_db_seconds() - fb0

            c0, b0 = time.process_time(), cpu_seconds([my_backend])
            t0 = time.perf_counter()
            for batch in theirs:
                copy_batch(batch)
            copy_seconds += time.perf_counter() - t0
            copy_cpu += time.process_time() - c0
            copy_db_cpu += cpu_seconds([my_backend]) - b0
    finally:
        server.terminate()
        server.wait()
        if folder:
            folder.terminate()
            folder.wait()
        os.unlink(pid_file)
        os.unlink(config.name)

    api_runs = copy_runs = len(runs)
    local_db = os.path.exists(f"/proc/{my_backend}")
    api_rate, copy_rate = api_runs / api_seconds, copy_runs / copy_seconds
    per_run = lambda seconds, n: f"{seconds / n * 1e6:7.0f} µs"  # noqa: E731
    print(f"runs: {len(runs)} a side, batch: {args.batch}, clients: {args.clients}, gunicorn workers: "
          f"{args.workers} (all warm), rounds: {args.rounds} (API, then COPY, into the same table)"
          + (", each batch one lab session (--sessions)" if args.sessions else ""))
    print(f"API  : {api_rate:8.0f} runs/s  ({api_runs} runs in {api_seconds:.2f} s)")
    print(f"COPY : {copy_rate:8.0f} runs/s  ({copy_runs} runs in {copy_seconds:.2f} s, "
          f"{len(copy_batches)} COPYs of {args.batch} rows, one transaction each)")
    print(f"API / COPY = {api_rate / copy_rate:.2f}  (issue 13's goal: at least 0.6)")
    if folder:
        print(f"fold : drained {fold_seconds:.2f} s after the API's last upload (over {args.rounds} rounds); runs in "
              f"their sketch rows at {api_runs / (api_seconds + fold_seconds):.0f} runs/s")
    print("CPU per run:")
    print(f"  API : gunicorn workers {per_run(api_cpu, api_runs)}, PostgreSQL backends "
          + (per_run(api_db_cpu, api_runs) if local_db else "(not on this machine)")
          + f", client {per_run(client_cpu, api_runs)}")
    if folder:
        print(f"  fold: Celery worker {per_run(fold_cpu, api_runs)}, PostgreSQL backend "
              + (per_run(fold_db_cpu, api_runs) if local_db else "(not on this machine)"))
    print(f"  COPY: this process {per_run(copy_cpu, copy_runs)}, PostgreSQL backend "
          + (per_run(copy_db_cpu, copy_runs) if local_db else "(not on this machine)"))


# What a run's sketch key is made of (collector.sketches.KEY), as upload fields; the day is started_at's.
SESSION_FIELDS = ("model", "device", "compute_units", "load_kind", "source", "variant", "optimization_hints")


def sessions(runs, size):
    """The runs in consecutive groups of `size` that each look like one lab session: every run of a group takes the
    first one's model, device, configuration and UTC day (keeping its own time of day and timings), so a group is one
    sketch row. The fleet itself spreads runs over ~1 sketch row per run, the sketch update's worst case."""
    out = []
    for i in range(0, len(runs), size):
        head = runs[i]
        for run in runs[i:i + size]:
            run = {k: v for k, v in run.items() if k not in SESSION_FIELDS}
            run.update({k: head[k] for k in SESSION_FIELDS if k in head})
            run["started_at"] = head["started_at"][:10] + run["started_at"][10:]
            out.append(run)
    return out


def _other_id(run_id):
    # The COPY side's own run_ids: another project, and never equal to the API's.
    return str(uuid.uuid5(uuid.NAMESPACE_OID, run_id))


if __name__ == "__main__":
    main()
