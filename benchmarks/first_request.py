"""The first page view after an upload against a warm one (issue 13 goal: the first request after an upload of 5,000
runs over 70 models within 2x a warm request).

Each round makes a fresh project, uploads 5,000 runs of the fleet simulator (benchmarks.fleet) through
POST /api/v1/runs in 500-run batches (the ingest path, sketch rows updated in each batch's transaction), its models
renamed per chunk so the runs spread over 70 models, then renders `/` and `/fleet` in-process (Django's test client:
routing, session, queries, figures, template): the first request of each after the upload, then `--warm` more. The
process is warmed on another project first, so the first request pays no imports. Prints per round and page the
first request, the warm median, their ratio and the query counts, and the load average (a shared box: compare
ratios, not absolute times).

`--pending`: as deployed with a task broker, when the first request comes before the fold: the upload lists its runs
as pending (collector.sketches.defer) and nothing folds them until the first request of each page has been measured;
then they are folded (collector.sketches.fold_pending) and the warm requests read the rows, as they would seconds
later. The first request then merges all 5,000 runs' own values; the warm ones none.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/first_bench python -m benchmarks.first_request
    DATABASE_URL=... python -m benchmarks.first_request --rounds 3 --runs 5000 --models 70
"""
import argparse
import json
import os
import statistics
import sys
import time

from benchmarks.dashboard import logged_in_client

PAGES = [("overview", "/"), ("fleet", "/fleet")]


def spread_over_models(runs: list[dict], models: int) -> list[dict]:
    """The runs in `models` consecutive chunks, each named model-NN (the fleet has three models; their six version
    strings differ, so a chunk holds up to six versions without two runs disagreeing on a version's metadata)."""
    size = -(-len(runs) // models)
    return [dict(r, model={**r["model"], "name": f"model-{i // size:02d}"}) for i, r in enumerate(runs)]


def upload(client, token: str, runs: list[dict], batch: int = 500) -> float:
    """POST the runs in batches as a runner does; returns the seconds it took."""
    t0 = time.perf_counter()
    for start in range(0, len(runs), batch):
        response = client.post("/api/v1/runs", json.dumps({"runs": runs[start:start + batch]}),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code != 201:
            raise SystemExit(f"upload answered {response.status_code}: {response.content[:300]!r}")
    return time.perf_counter() - t0


def timed_get(client, path: str, params: dict) -> tuple[float, int]:
    """(ms, queries) of one request, with the memoised Wilson intervals cleared (every request pays for them)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dashboard.presenters import clear_caches

    clear_caches()
    with CaptureQueriesContext(connection) as captured:
        t0 = time.perf_counter()
        response = client.get(path, params)
        ms = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return ms, len(captured)


def new_project(user, slug: str):
    from collector.models import Project, RunnerToken

    project = Project.objects.create(slug=slug, name=f"First-request benchmark {slug}")
    project.members.add(user)
    return project, RunnerToken.issue(project, "bench-runner")[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--models", type=int, default=70)
    parser.add_argument("--warm", type=int, default=5, help="warm requests after the first (their median is shown)")
    parser.add_argument("--pending", action="store_true",
                        help="the first requests before the upload's runs are folded into their rows (see above)")
    args = parser.parse_args(argv)
    user, client = logged_in_client("benchmarks.first_request", "first-request-bench")
    from benchmarks.fleet import generate
    from collector import ingest, sketches

    if args.pending:  # what an upload does with a broker, without queueing: the benchmark folds when it chooses
        ingest.runs_in_process = lambda: False
        ingest.fold_soon = lambda: None

    stamp = int(time.time())

    # Imports, connection, templates and figure code loaded before any clock starts.
    warmup, token = new_project(user, f"first-warmup-{stamp}")
    upload(client, token, spread_over_models(list(generate(500, seed=stamp)), 5))
    for _, path in PAGES:
        timed_get(client, path, {"project": warmup.slug})
    if args.pending:
        sketches.fold_pending()

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'round':>5}  {'page':<9} {'first ms':>9} {'warm ms':>8} {'first/warm':>10} {'queries':>13}  upload")
    ratios = {name: [] for name, _ in PAGES}
    for r in range(args.rounds):
        project, token = new_project(user, f"first-{stamp}-{r}")
        runs = spread_over_models(list(generate(args.runs, seed=stamp + 1 + r)), args.models)
        seconds = upload(client, token, runs)
        params = {"project": project.slug}
        firsts = {name: timed_get(client, path, params) for name, path in PAGES}
        if args.pending:
            sketches.fold_pending()
        for name, path in PAGES:
            first, first_queries = firsts[name]
            warm = [timed_get(client, path, params) for _ in range(args.warm)]
            warm_ms = statistics.median(ms for ms, _ in warm)
            ratios[name].append(first / warm_ms)
            print(f"{r + 1:>5}  {name:<9} {first:>9.0f} {warm_ms:>8.0f} {first / warm_ms:>10.2f} "
                  f"{first_queries:>6} / {warm[-1][1]:<5} {len(runs):,} runs, {args.models} models, {seconds:.1f} s",
                  flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, values in ratios.items():
        print(f"{name}: first / warm {min(values):.2f}-{max(values):.2f} over {len(values)} rounds (goal <= 2)")


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    sys.exit(main())
