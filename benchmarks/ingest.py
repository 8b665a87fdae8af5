"""Ingest throughput: the HTTP API (gunicorn, PostgreSQL) against PostgreSQL COPY of the same rows.

    python -m benchmarks.ingest --runs 20000 --batch 500

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it creates a scratch database
`perfboard_bench`, migrates it, serves the app with gunicorn on a free loopback port and posts the fleet in batches
from --clients concurrent clients. Then it COPYs the same runs (validated, summarised and hashed beforehand, so the
COPY figure is the database's floor) into a second project. Prints runs/s for both and the ratio (goal: API ≥ 30%).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor

DB = "perfboard_bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(server):
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    return f"{server}/{DB}"


def main(argv=None):
    parser = argparse.ArgumentParser(description="API ingest vs PostgreSQL COPY")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args(argv)

    url = fresh_database(os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "perfboard.settings", "DATABASE_URL": url, "DEBUG": "0", "CELERY_BROKER_URL": "", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env)

    import django

    django.setup()
    import requests

    from benchmarks.fleet import generate
    from collector.ingest import _columns, _devices, _model_versions, body_hash, copy_rows
    from collector.models import Project, RunnerToken
    from collector.schema import RunIn
    from django.db import transaction

    runs = list(generate(args.runs, seed=11))
    # Bodies are encoded before the clock starts: the figure is the server's rate, not the client's json.dumps.
    batches = [json.dumps({"runs": runs[i:i + args.batch]}).encode() for i in range(0, len(runs), args.batch)]
    api_project = Project.objects.create(slug="bench-api", name="bench-api")
    token = RunnerToken.issue(api_project, "bench")[1]

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "perfboard.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "--log-level", "warning", "--timeout", "300"],
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(base + "/api/schema/", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.1)

        def send(batch):
            s = requests.Session()
            r = s.post(base + "/api/v1/runs", data=batch, timeout=300,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            assert r.status_code == 201, r.text[:300]

        send(batches[0])  # warm-up: imports, connections
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(send, batches[1:]))
        api_seconds = time.perf_counter() - t0
        api_runs = len(runs) - min(args.batch, len(runs))
    finally:
        server.terminate()
        server.wait()

    copy_project = Project.objects.create(slug="bench-copy", name="bench-copy")
    validated = [RunIn.model_validate(dict(r, run_id=_other_id(r["run_id"]))) for r in runs]
    versions = _model_versions(copy_project, validated)
    devices = _devices({r.device.identifier for r in validated})
    now = datetime.now(timezone.utc)
    rows = [_columns(copy_project, r, body_hash(r), versions, devices, now) for r in validated]
    ids = list(range(10_000_000, 10_000_000 + len(rows)))
    t0 = time.perf_counter()
    with transaction.atomic():
        copy_rows(rows, ids)
    copy_seconds = time.perf_counter() - t0

    api_rate, copy_rate = api_runs / api_seconds, len(rows) / copy_seconds
    print(f"runs: {len(runs)}, batch: {args.batch}, clients: {args.clients}, gunicorn workers: {args.workers}")
    print(f"API  : {api_rate:10.0f} runs/s  ({api_runs} runs in {api_seconds:.2f} s)")
    print(f"COPY : {copy_rate:10.0f} runs/s  ({len(rows)} runs in {copy_seconds:.2f} s)")
    print(f"API / COPY = {api_rate / copy_rate:.1%}  (goal: at least 30%)")


def _other_id(run_id):
    # The COPY copy needs its own run_ids (run_id is unique across projects).
    return str(uuid.uuid5(uuid.NAMESPACE_OID, run_id))


if __name__ == "__main__":
    main()
