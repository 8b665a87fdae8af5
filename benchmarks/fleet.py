"""Synthetic fleet of benchmark runs with known ground truth, seeded and reproducible.

Used by `manage.py load_demo`, the tests and the benchmarks. Facts it carries (GROUND_TRUTH, for checks):
- On A17 Pro / A18 Pro (and newer) `cpuAndNeuralEngine` and `all` predict several times faster than `cpuAndGPU`.
- face-retouch from 3.2.0 crashes on A15 Bionic (iPhone 13/14) with `all` and `cpuAndNeuralEngine` in ~30% of runs.
- Cold Neural Engine loads take several times the GPU load (up to ~10x for style-diffusion); cached loads are far
  shorter; in-memory loads (decrypted, never on disk) pay decrypt + compile every launch.
- The first prediction is slower than warm ones; the `prewarm` variant of segmenter-lite moves that cost into load.
- face-retouch 3.3.0 is ~15% slower than 3.2.0 on A16 Bionic, whatever the unit.
- style-diffusion's Neural Engine runs set ``specializationStrategy = .fastPrediction`` in ~30% of runs
  (``optimization_hints``; the truth's "fast_prediction": model -> share): per chip (FAST_PREDICTION) a longer load
  for faster warm predictions, so on one device the default strategy wins short sessions and ``fastPrediction``
  long ones. Which runs are hinted is drawn from a side stream of the seed, so every other draw of a seed is what it
  was before hints existed.
- The demo (``demo_fleet``, what ``manage.py load_demo`` loads) adds HINTS_STUDY to the draw: a lab's runs of
  style-diffusion's latest version on one device (iPhone 14 Pro), half with each strategy, so that device's policy
  has enough runs of both to pick the default strategy for short sessions and ``fastPrediction`` for long ones.
Latencies are log-normal per run and per prediction, with occasional thermal outliers (1.6x, thermal_state serious).

The injected regressions are a parameter, ``generate(..., truth=...)`` (GROUND_TRUTH by default; same seed and truth,
same runs). A truth's "slowdown" and "crash" are each one fact (as in GROUND_TRUTH) or a list of zero or more:
- slowdown: model, version (it stays in later versions), chip, factor, optionally compute_units (a list; absent:
  every unit) and metric: "warm" (default: warm predictions, and so the first prediction), "cold_load" (loads of
  cold runs only) or "cached_load" with os_major (cached loads on that OS major only: an OS update that invalidates
  the compile cache);
- crash: model, from_version, chip, compute_units, rate (several facts on one run: independent chances).
- silent_fallback (not in GROUND_TRUTH; SILENT_FALLBACK_TRUTH adds it): model, from_version, chip, compute_units. Runs
  of those units from that version on report "ok" but ran on the CPU (an ``ANECCompile() FAILED`` in the log): their
  timings are cpuOnly's, and lab runs upload a compute plan with every op on the CPU (before that version, the plan
  of such runs places the convolutions on the Neural Engine).
benchmarks/fleet_detection.py draws random truths and counts what the regression check finds.

    python -m benchmarks.fleet --runs 100000 --bulk            # into the configured database (COPY on PostgreSQL)
    python -m benchmarks.fleet --runs 5000 --post http://127.0.0.1:8000 --token pb_...
    python -m benchmarks.fleet --runs 20000 --bulk --project fallback --silent-fallback
"""
import argparse
import bisect
import math
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

from collector.catalogue import CHIPS, DEVICES
from insights.vocabulary import COMPUTE_UNITS as UNITS, LOAD_KINDS, NEURAL_ENGINE_UNITS

UNIT_SHARE = [0.1, 0.3, 0.3, 0.3]  # of UNITS, in their order
CHIP_OF = {identifier: chip for identifier, _, chip, _ in DEVICES}
RAM_OF = {identifier: ram for identifier, _, _, ram in DEVICES}
# Field popularity: newer phones are more common; iPads are rare.
DEVICE_WEIGHT = {i: (0.3 if i.startswith("iPad") else 1.0 + 0.15 * (CHIPS[c][0] - 13)) for i, _, c, _ in DEVICES}

# GPU warm-prediction speed relative to A13, and the Neural Engine's speed-up over the GPU on that chip.
GPU_SPEED = {"A13 Bionic": 1.0, "A14 Bionic": 1.2, "A15 Bionic": 1.45, "A16 Bionic": 1.7, "A17 Pro": 2.1, "A18": 2.2,
             "A18 Pro": 2.5, "A19": 2.6, "A19 Pro": 2.9, "M1": 2.6, "M2": 3.0, "M3": 3.4, "M4": 4.0, "M5": 4.6}
ANE_SPEEDUP = {"A13 Bionic": 1.1, "A14 Bionic": 1.6, "A15 Bionic": 2.0, "A16 Bionic": 2.3, "A17 Pro": 4.0,
               "A18": 3.8, "A18 Pro": 4.5, "A19": 4.4, "A19 Pro": 5.0, "M1": 1.6, "M2": 2.0, "M3": 2.2, "M4": 4.0,
               "M5": 4.5}

# name: versions, warm GPU ms on A13, cold GPU load ms, cold ANE load / cold GPU load, size, precision
MODELS = {
    "face-retouch": dict(versions=["3.1.0", "3.2.0", "3.3.0"], warm_ms=40.0, load_ms=300.0, ane_load_x=4.0,
                         size=48_123_456, precision="fp16"),
    "style-diffusion": dict(versions=["1.0.0", "1.1.0"], warm_ms=900.0, load_ms=900.0, ane_load_x=10.0,
                            size=1_650_000_000, precision="fp16"),
    "segmenter-lite": dict(versions=["2.0.0"], warm_ms=4.0, load_ms=60.0, ane_load_x=3.0, size=6_400_000,
                           precision="int8"),
}
MODEL_SHARE = [0.55, 0.15, 0.30]
OS_VERSIONS = ["17.6.1", "18.1.1", "18.6.2", "26.0.1", "26.1"]
OS_SHARE = [0.1, 0.2, 0.3, 0.25, 0.15]
LOAD_SHARE = [0.15, 0.6, 0.25]  # of LOAD_KINDS, in their order
DAYS = 30

GROUND_TRUTH = {
    "crash": {"model": "face-retouch", "from_version": "3.2.0", "chip": "A15 Bionic",
              "compute_units": ["all", "cpuAndNeuralEngine"], "rate": 0.3},
    "slowdown": {"model": "face-retouch", "version": "3.3.0", "baseline_version": "3.2.0", "chip": "A16 Bionic",
                 "factor": 1.15},
    "fast_neural_engine_chips": ["A17 Pro", "A18 Pro", "A19 Pro"],
    "background_failure_rate": 0.001,
    # model -> share of its Neural Engine runs that set specializationStrategy .fastPrediction (FAST_PREDICTION)
    "fast_prediction": {"style-diffusion": 0.3},
}
# A silent Neural Engine fallback from face-retouch 3.3.0 on the A14 Bionic (iPhone 12), for the tests that want one.
SILENT_FALLBACK = {"model": "face-retouch", "from_version": "3.3.0", "chip": "A14 Bionic",
                   "compute_units": ["cpuAndNeuralEngine"]}
SILENT_FALLBACK_TRUTH = {**GROUND_TRUTH, "silent_fallback": SILENT_FALLBACK}

# specializationStrategy .fastPrediction on the Neural Engine, per chip: (load factor, warm-prediction factor). Apple
# says only "prefer the prediction latency at the potential cost of specialization time"; these are invented.
FAST_PREDICTION = {"A13 Bionic": (1.3, 0.95), "A14 Bionic": (1.4, 0.9), "A15 Bionic": (1.5, 0.85),
                   "A16 Bionic": (1.5, 0.8), "A17 Pro": (1.6, 0.75), "A18": (1.6, 0.75), "A18 Pro": (1.7, 0.7),
                   "A19": (1.7, 0.7), "A19 Pro": (1.8, 0.68), "M1": (1.4, 0.9), "M2": (1.5, 0.85),
                   "M3": (1.5, 0.8), "M4": (1.6, 0.75), "M5": (1.7, 0.7)}
# A lab study of the specialization strategies on one device (demo_fleet): `runs` runs of `compute_units`, every
# other one with fastPrediction, on iOS 18 or later (specializationStrategy needs iOS 18), in the version's window.
HINTS_STUDY = {"model": "style-diffusion", "version": "1.1.0", "device": "iPhone15,2",
               "compute_units": "cpuAndNeuralEngine", "runs": 60}
# A compute plan as the lab uploads it: (op, type); on the Neural Engine these are the convolutions and activations.
PLAN_OPS = [("conv_0", "conv"), ("relu_0", "relu"), ("conv_1", "conv"), ("relu_1", "relu"), ("pool_0", "avg_pool"),
            ("linear_0", "linear")]

CRASH_MESSAGES = {
    "load": "MLModel load failed: E5RT: ANE compiler service error (11)",
    "first_prediction": "EXC_BAD_ACCESS in ANEServices during first prediction",
}


def _version_window(versions, version):
    """Each model version was live for an equal consecutive share of the DAYS days."""
    k, i = len(versions), versions.index(version)
    return DAYS * i / k, DAYS * (i + 1) / k


def _picker(rng, options, weights):
    """A fast weighted choice (rng.choice with p= costs ~20 us a call; this is a bisect)."""
    cum = np.cumsum(np.asarray(weights, dtype=float))
    cum = (cum / cum[-1]).tolist()
    return lambda: options[min(bisect.bisect_right(cum, rng.random()), len(options) - 1)]


def generate(n: int, seed: int = 7, end: datetime | None = None, truth: dict = GROUND_TRUTH):
    """Yield n runs in the wire format of POST /api/v1/runs, carrying the regressions of ``truth``."""
    rng = np.random.default_rng(seed)
    side = np.random.default_rng([seed, 14])  # hints: one draw a run, apart from the stream every other draw uses
    end = end or datetime(2026, 11, 25, tzinfo=timezone.utc)
    start = end - timedelta(days=DAYS)
    device = _picker(rng, list(DEVICE_WEIGHT), list(DEVICE_WEIGHT.values()))
    model = _picker(rng, list(MODELS), MODEL_SHARE)
    compute_units = _picker(rng, UNITS, UNIT_SHARE)
    load_kind = _picker(rng, LOAD_KINDS, LOAD_SHARE)
    os_version = _picker(rng, OS_VERSIONS, OS_SHARE)
    for _ in range(n):
        name = model()
        spec = MODELS[name]
        version = spec["versions"][int(rng.random() * len(spec["versions"]))]
        lo, hi = _version_window(spec["versions"], version)
        started = start + timedelta(days=lo + (hi - lo) * rng.random())
        identifier = device()
        source = "lab" if rng.random() < 0.2 else "field"
        variant = ("prewarm" if rng.random() < 0.5 else "baseline") if name == "segmenter-lite" else None
        yield _run(rng, name, spec, version, identifier, CHIP_OF[identifier], compute_units(), source, load_kind(),
                   variant, started, os_version(), truth, side.random())


def hints_study(seed: int = 7, end: datetime | None = None, study: dict = HINTS_STUDY, truth: dict = GROUND_TRUTH):
    """The runs of ``study`` (HINTS_STUDY), drawn as :func:`generate` draws a lab run, from a stream of their own."""
    rng = np.random.default_rng([seed, 1401])
    end = end or datetime(2026, 11, 25, tzinfo=timezone.utc)
    name, version, identifier = study["model"], study["version"], study["device"]
    spec = MODELS[name]
    lo, hi = _version_window(spec["versions"], version)
    load_kind = _picker(rng, LOAD_KINDS, LOAD_SHARE)
    recent = [(v, share) for v, share in zip(OS_VERSIONS, OS_SHARE) if int(v.split(".")[0]) >= 18]
    os_version = _picker(rng, [v for v, _ in recent], [share for _, share in recent])
    hinted = {**truth, "fast_prediction": {name: 1.0}}
    for i in range(study["runs"]):
        started = end - timedelta(days=DAYS) + timedelta(days=lo + (hi - lo) * rng.random())
        yield _run(rng, name, spec, version, identifier, CHIP_OF[identifier], study["compute_units"], "lab",
                   load_kind(), None, started, os_version(), hinted, hint_draw=0.0 if i % 2 else 1.0)


def demo_fleet(n: int, seed: int = 7):
    """The demo: :func:`generate`'s n runs, then HINTS_STUDY's."""
    yield from generate(n, seed)
    yield from hints_study(seed)


def facts(truth: dict, kind: str) -> list[dict]:
    """A truth's facts of one kind ("slowdown" or "crash") as a list: GROUND_TRUTH states one of each."""
    listed = truth.get(kind) or []
    return [listed] if isinstance(listed, dict) else list(listed)


def _applies(fact, name, spec, version, chip, units, since) -> bool:
    """Does the fact hit a run of this model version, chip and compute units? It holds from fact[since] on."""
    return (name == fact["model"] and chip == fact["chip"] and units in fact.get("compute_units", UNITS)
            and spec["versions"].index(version) >= spec["versions"].index(fact[since]))


def _run(rng, name, spec, version, identifier, chip, units, source, load_kind, variant, started, os_version,
         truth=GROUND_TRUTH, hint_draw=1.0):
    asked_ane = units in NEURAL_ENGINE_UNITS
    fallback = [f for f in facts(truth, "silent_fallback")
                if _applies(f, name, spec, version, chip, units, "from_version")]
    # specializationStrategy needs iOS 18 (MLOptimizationHints.SpecializationStrategy): an older OS runs no hint.
    fast = (asked_ane and hint_draw < truth.get("fast_prediction", {}).get(name, 0.0)
            and int(os_version.split(".")[0]) >= 18)
    ane = asked_ane and not fallback  # a silent fallback runs (and times) as cpuOnly
    warm = spec["warm_ms"] / GPU_SPEED[chip]
    if units == "cpuOnly" or fallback:
        warm *= 3.0
    elif ane:
        warm /= ANE_SPEEDUP[chip] * (1.03 if units == "all" else 1.0)
    if fast and ane:
        warm *= FAST_PREDICTION[chip][1]
    slowdowns = [f for f in facts(truth, "slowdown") if _applies(f, name, spec, version, chip, units, "version")]
    for slow in slowdowns:
        if slow.get("metric", "warm") == "warm":
            warm *= slow["factor"]
    thermal = "serious" if rng.random() < 0.03 else ("fair" if rng.random() < 0.1 else "nominal")
    run_factor = math.exp(rng.normal(0, 0.08)) * (1.6 if thermal == "serious" else 1.0)

    size_factor = spec["load_ms"] / GPU_SPEED[chip] ** 0.5
    load_cold = size_factor * (spec["ane_load_x"] if ane else (0.7 if units == "cpuOnly" or fallback else 1.0))
    if fast and ane:
        load_cold *= FAST_PREDICTION[chip][0]
    if load_kind == "cached":
        load = load_cold * (0.12 if ane else 0.4)
    else:
        load = load_cold
    os_major = int(os_version.split(".")[0])
    for slow in slowdowns:
        if (slow.get("metric") == "cold_load" and load_kind == "cold"
                or slow.get("metric") == "cached_load" and load_kind == "cached" and os_major == slow["os_major"]):
            load *= slow["factor"]
    compile_ms = None if load_kind == "cached" else size_factor * 0.6
    decrypt = spec["size"] / 400_000_000 * 1000 if load_kind == "in_memory" else None
    first = warm * (5.0 if ane else 2.5)
    if variant == "prewarm":
        # A dummy prediction during load: load pays it, the user's first prediction does not.
        load += first * 0.9
        first = warm * 1.3
    jitter = lambda x: float(round(x * math.exp(rng.normal(0, 0.1)) * run_factor, 3))  # noqa: E731
    count = int(rng.integers(20, 60)) if source == "lab" else int(rng.integers(5, 15))
    predictions = np.round(warm * run_factor * np.exp(rng.normal(0, 0.06, count)), 3).tolist()

    status, failure = "ok", None
    crashes = [f for f in facts(truth, "crash") if _applies(f, name, spec, version, chip, units, "from_version")]
    if any(rng.random() < crash["rate"] for crash in crashes):
        stage = "load" if rng.random() < 0.7 else "first_prediction"
        status, failure = "crash", {"stage": stage, "message": CRASH_MESSAGES[stage]}
    elif name == "style-diffusion" and RAM_OF[identifier] <= 4 and rng.random() < 0.03:
        status, failure = "oom", {"stage": "prediction", "message": "Jetsam: memory limit exceeded"}
    elif rng.random() < truth.get("background_failure_rate", GROUND_TRUTH["background_failure_rate"]):
        status, failure = "timeout", {"stage": "prediction", "message": "watchdog: prediction took over 10 s"}

    timings = {"decrypt": jitter(decrypt) if decrypt else None, "compile": jitter(compile_ms) if compile_ms else None,
               "load": jitter(load), "first_prediction": jitter(first)}
    if failure:
        stages = ["decrypt", "compile", "load", "first_prediction"]
        if failure["stage"] in stages:
            for later in stages[stages.index(failure["stage"]):]:
                timings[later] = None
        predictions = [] if failure["stage"] != "prediction" else predictions[: len(predictions) // 2]
    peak = spec["size"] / 1e6 * (2.5 if units == "cpuOnly" else 1.6) * math.exp(rng.normal(0, 0.05))
    extra = {}
    if fast:
        extra["optimization_hints"] = {"specialization_strategy": "fastPrediction"}
    if source == "lab" and asked_ane and any(_fallback_series(f, name, chip, units) for f in
                                             facts(truth, "silent_fallback")):
        on = "cpu" if fallback else "neural_engine"
        extra["compute_plan"] = [{"op": op, "type": kind, "device": on if kind in ("conv", "relu") else "cpu"}
                                 for op, kind in PLAN_OPS]
    return {
        "run_id": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
        "source": source,
        "model": {"name": name, "version": version, "format": "mlprogram", "precision": spec["precision"],
                  "size_bytes": spec["size"]},
        "device": {"identifier": identifier, "os_version": os_version},
        "app_build": "5.12.0 (1234)",
        "compute_units": units,
        "variant": variant,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "status": status,
        "failure": failure,
        "load_kind": load_kind,
        "timings_ms": timings,
        "predictions_ms": predictions,
        "peak_memory_mb": round(peak, 1),
        "thermal_state": thermal,
        **extra,
    }


def _fallback_series(fact, name, chip, units) -> bool:
    """Runs of the fact's model, chip and units, at any version: their lab runs upload compute plans."""
    return name == fact["model"] and chip == fact["chip"] and units in fact["compute_units"]


def post(url: str, token: str, runs, batch_size: int = 500) -> int:
    """Upload through the HTTP API; returns the number of runs sent."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    sent, batch = 0, []
    for run in runs:
        batch.append(run)
        if len(batch) == batch_size:
            sent += _post_batch(session, url, batch)
            batch = []
    if batch:
        sent += _post_batch(session, url, batch)
    return sent


def _post_batch(session, url, batch):
    r = session.post(url.rstrip("/") + "/api/v1/runs", json={"runs": batch}, timeout=300)
    if r.status_code not in (200, 201):
        raise SystemExit(f"upload failed: {r.status_code} {r.text[:500]}")
    return len(batch)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="how many runs (1k to 1M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--project", default="demo", help="project slug (bulk load)")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--bulk", action="store_true", help="load into the configured database directly")
    how.add_argument("--post", metavar="URL", help="upload through the API at URL")
    parser.add_argument("--token", help="runner token, with --post")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--silent-fallback", action="store_true",
                        help="add SILENT_FALLBACK: face-retouch's cpuAndNeuralEngine on the A14 runs on the CPU from "
                             "3.3.0")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    runs = generate(args.runs, args.seed, truth=SILENT_FALLBACK_TRUTH if args.silent_fallback else GROUND_TRUTH)
    if args.post:
        if not args.token:
            parser.error("--post needs --token")
        n = post(args.post, args.token, runs, args.batch)
    else:
        import django

        django.setup()
        from collector.bulk import bulk_load

        n = bulk_load(args.project, runs)
    print(f"{n} runs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    main()
