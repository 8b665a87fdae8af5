"""What the queries that still read runs (not sketch rows) cost: EXPLAIN (ANALYZE, BUFFERS) of each, and the runs
table's bytes per run (docs/scaling.md, "The runs table").

    DATABASE_URL=postgres://root@127.0.0.1:5432/<db> python -m benchmarks.run_reads --project check-100000 \
        [--model segmenter-lite] [--repeat 3]

PostgreSQL only. Load a fleet first (``python -m benchmarks.check --runs 100000`` loads project check-100000). The
queries are captured from the code paths themselves (the cold-start and fleet pages, a run's page, GET /api/v1/runs
and a run's detail, and the regression check's reads: every (model, chip) group's runs, in one COPY, and one
model's plan runs and plan placements), then each one touching collector_run is explained ``--repeat`` times; the
best run is printed (ms of execution, shared buffers hit + read, the plan's top nodes). Figures depend on the cache:
the first repeat warms it.
"""
import argparse
import json
import os
import re
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
import django  # noqa: E402
import psycopg  # noqa: E402

django.setup()
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from alerts import check, streams  # noqa: E402
from collector.models import ModelVersion, Project, Run, RunnerToken  # noqa: E402


def capture(label, call, out):
    with CaptureQueriesContext(connection) as captured:
        call()
    for q in captured.captured_queries:
        sql = re.sub(r"^DECLARE .*? CURSOR (WITH(OUT)? HOLD )?FOR ", "", q["sql"])  # a server-side cursor's query
        if '"collector_run"' in sql and sql.lstrip().upper().startswith("SELECT"):
            out.append((label, sql))


def capture_copy(label, call, out):
    """The check reads runs by COPY (alerts.binary_copy), which Django's query log does not see: the query is taken
    from the call."""
    real = streams.copy_columns

    def spy(cursor, query, params, *args):
        out.append((label, psycopg.ClientCursor(cursor.connection).mogrify(query, params)))
        return real(cursor, query, params, *args)

    streams.copy_columns = spy
    try:
        call()
    finally:
        streams.copy_columns = real


def nodes(plan, depth=0, limit=4):
    """The plan's top nodes: type, relation or index, rows."""
    name = plan["Node Type"] + (f" {plan['Index Name']}" if "Index Name" in plan else
                                f" {plan['Relation Name']}" if "Relation Name" in plan else "")
    yield "  " * depth + f"{name} (rows {plan.get('Actual Rows')})"
    for child in plan.get("Plans", []):
        if depth + 1 < limit:
            yield from nodes(child, depth + 1, limit)


def explain(sql, repeat):
    best = None
    with connection.cursor() as cursor:
        for _ in range(repeat):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
            raw = cursor.fetchone()[0]
            doc = (json.loads(raw) if isinstance(raw, str) else raw)[0]
            ms = doc["Execution Time"]
            if best is None or ms < best[0]:
                best = (ms, doc)
    ms, doc = best
    plan = doc["Plan"]
    return ms, plan.get("Shared Hit Blocks", 0), plan.get("Shared Read Blocks", 0), list(nodes(plan))


def sizes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM collector_run")
        runs = cursor.fetchone()[0]
        out = {}
        for table in ("collector_run", "collector_runpredictions"):
            cursor.execute("SELECT pg_relation_size(c.oid), coalesce(pg_relation_size(c.reltoastrelid), 0), "
                           "pg_indexes_size(c.oid) FROM pg_class c WHERE relname = %s", [table])
            row = cursor.fetchone()
            if row:
                out[table] = row
    return runs, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="check-100000")
    parser.add_argument("--model", help="the model whose version the pages read (default: most runs)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    assert connection.vendor == "postgresql", "PostgreSQL only"

    project = Project.objects.get(slug=args.project)
    runs = Run.objects.filter(project=project)
    top = (runs.filter(**({"model_version__name": args.model} if args.model else {}))
           .values("model_version").annotate(n=Count("id")).order_by("-n").first())
    mv = ModelVersion.objects.get(pk=top["model_version"])
    one = runs.filter(model_version=mv, has_compute_plan=True).order_by("id").first() or runs.first()

    user, _ = get_user_model().objects.get_or_create(username="bench-run-reads")
    project.members.add(user)
    client = Client()
    client.force_login(user)
    token = RunnerToken.issue(project, f"bench-run-reads-{uuid.uuid4().hex[:8]}")[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    page = {"project": project.slug, "model": mv.name, "version": mv.version}

    found = []
    capture("cold-start page", lambda: client.get("/policy/cold-start", page), found)
    capture("fleet page", lambda: client.get("/fleet", page), found)
    capture("run page", lambda: client.get(f"/runs/{one.run_id}"), found)
    capture("API run list", lambda: api.get("/api/v1/runs", {"model": mv.name, "version": mv.version}), found)
    capture("API run detail", lambda: api.get(f"/api/v1/runs/{one.run_id}"), found)
    of_model = runs.filter(model_version__name=mv.name)
    every_group = {name: sorted(chips) for name, chips in check._chips_by_model(runs)[0].items()}
    capture_copy("check: read_groups (every model and chip)",
                 lambda: [list(groups) for _, groups in streams.read_groups(project, every_group)], found)
    capture("check: plan runs", lambda: check._plans(of_model), found)
    capture("check: plans on CPU", lambda: check._plans_on_cpu(of_model), found)

    n, table_sizes = sizes()
    print(f"{n} runs; model version {mv} ({top['n']} runs)")
    for table, (heap, toast, idx) in table_sizes.items():
        print(f"{table}: heap {heap / n:.0f} B/run, TOAST {toast / n:.0f}, indexes {idx / n:.0f} "
              f"({(heap + toast + idx) / 2**20:.1f} MiB)")
    for label, sql in found:
        ms, hit, read, plan = explain(sql, args.repeat)
        print(f"\n{label}: {ms:.1f} ms, buffers hit {hit} read {read}\n  {sql[:160]}")
        print("\n".join("    " + line for line in plan))


if __name__ == "__main__":
    main()
