"""Quantile sketches compared on the synthetic fleet: accuracy of merged medians, update and merge speed, size.

Each candidate keeps one sketch per sketch row of Perfboard (model version, device, compute units, load kind, OS
version, source, variant, day), serialized as the database would hold it; the pages' cells (model version, chip,
compute units, metric) are then answered by deserializing and merging those rows, and compared with the exact
median (``percentile_cont``'s linear interpolation, numpy's default).

    python -m benchmarks.sketches --runs 100000
    DATABASE_URL=postgres://... python -m benchmarks.sketches --ingest 20000     # ingest and evidence-query cost

``--ingest N`` loads N fleet runs in 500-run uploads (the API's batches, through store_runs: COPY on PostgreSQL)
into scratch projects of the configured database, with and without the sketch update (interleaved, twice each),
then times the evidence query of the largest model version's overview (chip x compute units, the overview's
metrics) on the sketch rows and on the runs, with and without an OS filter. The scratch projects are deleted.

Candidates: Apache DataSketches KLL (k=200, doubles) and REQ (k=12, high rank accuracy), DDSketch (1% relative
accuracy, protobuf serialization) and t-digest (pytdigest, compression 100), where installed.
"""
import argparse
import time
from collections import defaultdict

import numpy as np

from benchmarks.fleet import CHIP_OF, generate

COLUMNS = {"load_cold": ("load", "cold"), "load_cached": ("load", "cached"), "load_in_memory": ("load", "in_memory"),
           "first_prediction": ("first_prediction", None), "prediction": ("prediction", None)}


class Kll:
    name = "datasketches KLL k=200"

    def __init__(self):
        import datasketches
        self.mod = datasketches

    def new(self):
        return self.mod.kll_doubles_sketch(200)

    def update(self, sketch, values):
        for v in values:
            sketch.update(v)

    def serialize(self, sketch):
        return sketch.serialize()

    def deserialize(self, data):
        return self.mod.kll_doubles_sketch.deserialize(data)

    def merge(self, into, other):
        into.merge(other)
        return into

    def median(self, sketch):
        return sketch.get_quantile(0.5)

    def bound(self):
        return f"normalized rank error {self.new().normalized_rank_error(False):.4f} (99% confidence); exact below k"


class Req(Kll):
    name = "datasketches REQ k=12"

    def new(self):
        return self.mod.req_floats_sketch(12, True)

    def deserialize(self, data):
        return self.mod.req_floats_sketch.deserialize(data)

    def bound(self):
        return "relative rank error (k=12), ~1% at the median"


class DD:
    name = "ddsketch alpha=0.01"

    def __init__(self):
        import ddsketch
        from ddsketch.pb.proto import DDSketchProto
        self.mod, self.proto = ddsketch, DDSketchProto

    def new(self):
        return self.mod.DDSketch(0.01)

    def update(self, sketch, values):
        for v in values:
            sketch.add(v)

    def serialize(self, sketch):
        return self.proto.to_proto(sketch).SerializeToString()

    def deserialize(self, data):
        from ddsketch.pb import ddsketch_pb2
        pb = ddsketch_pb2.DDSketch()
        pb.ParseFromString(data)
        return self.proto.from_proto(pb)

    def merge(self, into, other):
        into.merge(other)
        return into

    def median(self, sketch):
        return sketch.get_quantile_value(0.5)

    def bound(self):
        return "relative value error 1% of the rank-q order statistic"


class TDigest:
    name = "pytdigest compression=100"

    def __init__(self):
        import pytdigest
        self.mod = pytdigest

    def new(self):
        return self.mod.TDigest(100)

    def update(self, sketch, values):
        sketch.update(np.asarray(values, dtype=float))

    def serialize(self, sketch):
        return sketch.get_centroids().astype(np.float64).tobytes()

    def deserialize(self, data):
        return self.mod.TDigest.of_centroids(np.frombuffer(data, dtype=np.float64).reshape(-1, 2), 100)

    def merge(self, into, other):
        return self.mod.TDigest.combine(into, other)

    def median(self, sketch):
        return float(sketch.inverse_cdf(0.5))

    def bound(self):
        return "no guaranteed bound (empirical; tails accurate, median ~1e-3 relative typical)"


def rows_of(runs):
    """{(row key): {metric: [values]}} and {(cell): [(row key)]}: values of successful runs only."""
    rows = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r["status"] != "ok":
            continue
        key = (r["model"]["name"], r["model"]["version"], r["device"]["identifier"], r["compute_units"],
               r["load_kind"], r["device"]["os_version"], r["source"], r["variant"], r["started_at"][:10])
        t = r["timings_ms"]
        preds = r["predictions_ms"]
        values = {"load": t["load"], "first_prediction": t["first_prediction"],
                  "prediction": float(np.median(preds)) if preds else None}
        for metric, (column, kind) in COLUMNS.items():
            if (kind is None or kind == r["load_kind"]) and values[column] is not None:
                rows[key][metric].append(values[column])
    return rows


def ingest(n, seed):
    import os
    import uuid

    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    django.setup()
    from django.db.models import Count

    from collector import ingest as store
    from collector.bulk import bulk_load
    from collector.evidence import gather, gather_from_runs
    from collector.models import Project, Run, RunSketch
    from dashboard.queries import OVERVIEW_METRICS

    runs = list(generate(n, seed))
    hook = store.add_runs
    timings = defaultdict(list)
    kept = None
    try:
        for attempt in range(2):
            for label, add in (("with sketches", hook), ("without sketches", lambda rows: None)):
                slug = f"sketch-bench-{uuid.uuid4().hex[:8]}"
                store.add_runs = add
                started = time.perf_counter()
                bulk_load(slug, runs, chunk=500)
                timings[label].append(time.perf_counter() - started)
                project = Project.objects.get(slug=slug)
                if kept is None and add is hook:
                    kept = project
                else:
                    project.delete()
    finally:
        store.add_runs = hook
    try:
        for label, values in timings.items():
            best = min(values)
            print(f"ingest {n} runs in 500-run uploads, {label}: {n / best:,.0f} runs/s "
                  f"({best / n * 1e6:.0f} us/run; best of {len(values)})")
        rows = RunSketch.objects.filter(project=kept).count()
        print(f"{rows} sketch rows for {n} runs")
        version = (Run.objects.filter(project=kept).values("model_version").annotate(n=Count("id"))
                   .order_by("-n").first())
        scoped = Run.objects.filter(project=kept, model_version=version["model_version"])
        for name, qs in (("all", scoped), ("os_min=26", scoped.filter(os_major__gte=26))):
            for path, fn in (("sketches", gather), ("runs", gather_from_runs)):
                times = []
                for _ in range(7):
                    started = time.perf_counter()
                    fn(qs, ("chip", "compute_units"), OVERVIEW_METRICS)
                    times.append(time.perf_counter() - started)
                print(f"overview evidence of one version ({version['n']} runs), {name}, from {path}: "
                      f"median {sorted(times)[3] * 1000:.1f} ms")
    finally:
        kept.delete()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ingest", type=int, metavar="N", help="measure ingest and evidence-query cost with N runs")
    args = ap.parse_args(argv)
    if args.ingest:
        return ingest(args.ingest, args.seed)
    rows = rows_of(generate(args.runs, args.seed))
    cells = defaultdict(list)  # (model, version, chip, units, metric) -> [(row key, metric)]
    for key in rows:
        for metric in rows[key]:
            cells[(*key[:2], CHIP_OF[key[2]], key[3], metric)].append(key)
    exact = {}
    for cell, keys in cells.items():
        values = np.concatenate([rows[k][cell[-1]] for k in keys])
        exact[cell] = (float(np.percentile(values, 50)), np.sort(values))
    values_total = sum(len(v) for r in rows.values() for v in r.values())
    print(f"{args.runs} runs -> {len(rows)} sketch rows, {values_total} values, {len(cells)} cells "
          f"(model version x chip x units x metric), median cell {int(np.median([len(e[1]) for e in exact.values()]))}"
          f" values")
    print(f"{'library':28} {'update us/value':>15} {'bytes/sketch':>12} {'merge us/row':>12} "
          f"{'rel err median':>14} {'p99 rel err':>11} {'max rel err':>11} {'max rank err':>12}")
    for cls in (Kll, Req, DD, TDigest):
        try:
            lib = cls()
        except ImportError:
            print(f"{cls.name:28} not installed")
            continue
        started = time.perf_counter()
        blobs = {}
        for key, metrics in rows.items():
            for metric, values in metrics.items():
                s = lib.new()
                lib.update(s, values)
                blobs[key, metric] = lib.serialize(s)
        update_us = (time.perf_counter() - started) / values_total * 1e6
        size = np.mean([len(b) for b in blobs.values()])
        started = time.perf_counter()
        merged = 0
        rel, rank = [], []
        for cell, keys in cells.items():
            s = lib.new()
            for k in keys:
                s = lib.merge(s, lib.deserialize(blobs[k, cell[-1]]))
                merged += 1
            m = lib.median(s)
            truth, ordered = exact[cell]
            rel.append(abs(m - truth) / truth)
            n = len(ordered)
            lo = np.searchsorted(ordered, m, "left") / n
            hi = np.searchsorted(ordered, m, "right") / n
            rank.append(0.0 if lo <= 0.5 <= hi else min(abs(lo - 0.5), abs(hi - 0.5)))
        merge_us = (time.perf_counter() - started) / merged * 1e6
        rel = np.array(rel)
        print(f"{lib.name:28} {update_us:15.2f} {size:12.0f} {merge_us:12.1f} {np.median(rel):14.2e} "
              f"{np.quantile(rel, 0.99):11.2e} {rel.max():11.2e} {max(rank):12.4f}   bound: {lib.bound()}")


if __name__ == "__main__":
    main()
