"""Where an upload's CPU goes: each step of POST /api/v1/runs timed in-process, per run.

    python -m benchmarks.ingest_steps --batches 8 --batch 500

Runs against the configured database (DATABASE_URL; migrate it first). Posts --batches bodies of --batch runs of the
synthetic fleet (benchmarks.fleet) into a new project (new runs, new sketch rows) through Django's test client after two
warm-up posts, with a process-CPU clock (time.process_time) around each step of collector.upload and
collector.ingest. The steps are the functions the upload calls, wrapped in place for this process only; what they
do not cover (Django and DRF, authentication, the response, the compute plan insert, the commit) is "rest".
The database server's CPU is not in these figures: benchmarks.ingest reports it per run.
"""
import argparse
import collections
import json
import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
import django  # noqa: E402

django.setup()
from django.test import Client  # noqa: E402

from benchmarks.fleet import generate  # noqa: E402
from benchmarks.ingest import sessions  # noqa: E402
from collector import ingest, sketches, upload  # noqa: E402
from collector.models import Project, RunnerToken, RunSketch  # noqa: E402

# (module or class, attribute, label): the upload's steps in the order it takes them.
STEPS = [
    (upload, "count_runs", "count runs (msgspec, before validation)"),
    (upload.BatchIn, "model_validate_json", "validate (pydantic, from JSON bytes)"),
    (ingest, "body_hash", "hash of each validated run"),
    (ingest, "stored_runs", "duplicate check (= ANY(uuid[]))"),
    (ingest, "_model_versions", "model versions"),
    (ingest, "_devices", "devices"),
    (ingest, "_columns", "row values + prediction summary"),
    (ingest, "insert_runs", "ids + COPY of the runs"),
    (ingest, "insert_predictions", "COPY of the warm predictions (RunPredictions)"),
    (sketches, "accumulate", "sketch: accumulate (Partial.add)"),
    (sketches, "write", "sketch: read, merge, upsert rows"),
    (sketches, "defer", "sketch: list the runs as pending (with a broker)"),
]


def instrument(cpu):
    for owner, name, label in STEPS:
        step = getattr(owner, name)

        def timed(*args, _step=step, _label=label, **kwargs):
            t0 = time.process_time()
            try:
                return _step(*args, **kwargs)
            finally:
                cpu[_label] += time.process_time() - t0

        setattr(owner, name, timed)  # write_all calls write once per tier, all under one label


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11, help="the fleet's (benchmarks.ingest uses 11)")
    parser.add_argument("--sessions", action="store_true",
                        help="each batch one lab session, one sketch row (benchmarks.ingest.sessions)")
    args = parser.parse_args(argv)

    runs = list(generate(args.batch * (args.batches + 2), seed=args.seed))
    if args.sessions:
        runs = sessions(runs, args.batch)
    bodies = [json.dumps({"runs": runs[i:i + args.batch]}).encode() for i in range(0, len(runs), args.batch)]
    project = Project.objects.create(slug=f"ingest-steps-{time.time_ns()}", name="ingest steps")
    token = RunnerToken.issue(project, "bench")[1]
    client = Client()

    def post(body):
        r = client.post("/api/v1/runs", data=body, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}")
        assert r.status_code == 201, r.content[:300]

    for body in bodies[:2]:  # warm: imports, pydantic's validators, the connection
        post(body)
    cpu = collections.defaultdict(float)
    instrument(cpu)
    t0, wall0 = time.process_time(), time.perf_counter()
    for body in bodies[2:]:
        post(body)
    total, wall = time.process_time() - t0, time.perf_counter() - wall0
    n = args.batch * args.batches
    print(f"{n} runs in {args.batches} posts of {args.batch}: {total / n * 1e6:.0f} µs of this process's CPU per run,"
          f" {n / wall:.0f} runs/s (one process, load average {os.getloadavg()[0]:.1f})")
    # The sketch update's cost grows with the rows it touches: the fleet spreads runs over days and devices.
    print(f"  sketch rows of the project: {RunSketch.objects.filter(project=project).count()} for "
          f"{n + 2 * args.batch} runs")
    cpu["rest (Django, DRF, auth, response, plan, commit)"] = total - sum(cpu.values())
    for label, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {label:50s} {seconds / n * 1e6:6.0f} µs/run  {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
