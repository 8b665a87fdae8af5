"""What the regression check finds in simulated fleets with injected regressions we did not choose by hand.

Run: ``/work/venv/bin/python -m benchmarks.fleet_detection [--fleets 10] [--runs 30000] [--seed 100] [--control 3]
[--alpha A] [--location-margin M]``

For each of ``--fleets`` fleets (seeds 100, 101, ...) a random truth is drawn: 1-3 slowdowns (a model version from
the second on, which keeps it; a chip; warm predictions, cold loads only, or cached loads on one OS major only;
factor 1.12-1.30, every compute unit) and 0-1 failure-rate rise (a model version from the second on, a chip,
``all`` and ``cpuAndNeuralEngine``, rate 0.15-0.35). benchmarks.fleet generates the runs; they become
:data:`insights.regressions.COLUMNS` rows as the collector would store them (warm median and p90 from
``insights.summary.prediction_summary``, as at ingest) and :func:`find_regressions` runs per model, no database.

A fact is found when an alert of its kind and metric (warm: median, p90 or first prediction; cold load; cached load;
failure rate) names its model, version and chip, for one of its compute units; device-level and OS-cohort alerts of
that chip count, and for a cached-load fact on one OS major the alert's cohort must be that OS or all OS versions.
Every other alert is an extra (an alert on noise, or a real change placed at the wrong version). A fact whose best
series (over its compute units) has fewer than 2 x ``min_runs_per_window`` runs before or from its version is
counted as untestable, not as missed. The control line runs GROUND_TRUTH (fleet seeds 1-3 by default).
"""

import argparse
import time
from collections import Counter
from datetime import datetime

import numpy as np

from benchmarks.fleet import CHIP_OF, GPU_SPEED, GROUND_TRUTH, MODELS, OS_VERSIONS, UNITS, facts, generate
from insights.regressions import COLUMNS, TIME_METRICS, find_regressions, metric_rows
from insights.settings import DetectionSettings
from insights.summary import prediction_summary

# fact kind -> the alert metrics that show it
KIND_METRICS = {
    "warm": ("prediction_ms_median", "prediction_ms_p90", "first_prediction_ms"),
    "cold_load": ("load_ms_cold",),
    "cached_load": ("load_ms_cached",),
    "crash": ("crash_rate",),
}
LATER_VERSIONS = [(m, v) for m, spec in MODELS.items() for v in spec["versions"][1:]]
OS_MAJORS = sorted({int(v.split(".")[0]) for v in OS_VERSIONS})
_I = {name: i for i, name in enumerate(COLUMNS)}


def random_truth(seed: int) -> dict:
    rng = np.random.default_rng([seed, 0x7247])  # not the fleet's own stream
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    slowdowns = []
    for _ in range(int(rng.integers(1, 4))):
        model, version = pick(LATER_VERSIONS)
        fact = {"model": model, "version": version, "chip": pick(list(GPU_SPEED)),
                "metric": pick(["warm", "cold_load", "cached_load"]), "factor": round(rng.uniform(1.12, 1.30), 3)}
        if fact["metric"] == "cached_load":
            fact["os_major"] = pick(OS_MAJORS)
        slowdowns.append(fact)
    crashes = []
    if rng.random() < 0.5:
        model, version = pick(LATER_VERSIONS)
        crashes.append({"model": model, "from_version": version, "chip": pick(list(GPU_SPEED)),
                        "compute_units": ["all", "cpuAndNeuralEngine"], "rate": round(rng.uniform(0.15, 0.35), 3)})
    return {**GROUND_TRUTH, "slowdown": slowdowns, "crash": crashes}


def rows_by_model(runs) -> dict[str, list[tuple]]:
    """Wire runs -> COLUMNS rows per model, as alerts.check reads them from the database."""
    out: dict[str, list[tuple]] = {}
    for i, r in enumerate(runs, 1):
        t, summary = r["timings_ms"], prediction_summary(r["predictions_ms"])
        device = r["device"]["identifier"]
        out.setdefault(r["model"]["name"], []).append((
            i, r["model"]["version"], device, CHIP_OF[device], r["compute_units"],
            int(r["device"]["os_version"].split(".")[0]), r["load_kind"], r["status"],
            datetime.fromisoformat(r["started_at"]), t["load"], t["first_prediction"], summary["median"],
            summary["p90"], r["peak_memory_mb"]))
    return out


def fact_list(truth: dict) -> list[dict]:
    """Slowdowns and crash rises as one list, each with its kind and the version where it starts."""
    out = [{**f, "kind": f.get("metric", "warm")} for f in facts(truth, "slowdown")]
    out += [{**f, "kind": "crash", "version": f["from_version"]} for f in facts(truth, "crash")]
    return out


def matches(fact: dict, finding) -> bool:
    k = finding.key
    return (k.model == fact["model"] and finding.version == fact["version"] and k.chip == fact["chip"]
            and k.metric in KIND_METRICS[fact["kind"]] and k.compute_units in fact.get("compute_units", UNITS)
            and (fact["kind"] != "cached_load" or k.os_major in (None, fact["os_major"])))


def series_sizes(fact: dict, rows: list[tuple]) -> tuple[int, int]:
    """Runs before and from the fact's version in its best chip-level series (over its compute units)."""
    versions = MODELS[fact["model"]]["versions"]
    at = versions.index(fact["version"])
    metric = KIND_METRICS[fact["kind"]][0]
    best = (0, 0)
    for units in fact.get("compute_units", UNITS):
        series = [r for r in rows if r[_I["chip"]] == fact["chip"] and r[_I["compute_units"]] == units
                  and (fact["kind"] != "cached_load" or r[_I["os_major"]] == fact["os_major"])]
        if metric in TIME_METRICS:  # the runs that measure it, as the check picks them
            series = metric_rows(series, metric)[1]
        sides = [0, 0]
        for r in series:
            sides[versions.index(r[_I["version"]]) >= at] += 1
        if min(sides) > min(best):
            best = tuple(sides)
    return best


def describe(fact: dict) -> str:
    what = {"warm": "warm predictions", "cold_load": "cold loads", "crash": "failure rate",
            "cached_load": f"cached loads on OS {fact.get('os_major')}"}[fact["kind"]]
    size = f"crashes in {fact['rate']:.0%} of runs" if fact["kind"] == "crash" else f"x{fact['factor']:.3f}"
    return f"{fact['model']} {fact['version']} on {fact['chip']}: {what} {size}"


def describe_alert(f) -> str:
    k = f.key
    where = " ".join(x for x in (k.chip, k.device, k.compute_units, k.metric,
                                 f"OS {k.os_major}" if k.os_major else "all OS") if x)
    change = f"{f.change:+.1%}" if f.kind == "slowdown" else f"rate {f.baseline:.3f}->{f.current:.3f}"
    p = f"p={f.p_value:.1e}" if f.p_value is not None else ""
    return (f"{f.kind} {k.model} {f.baseline_version}->{f.version} {where}: {change} {p} "
            f"({f.runs_baseline}/{f.runs_current} runs)")


def run_fleet(seed: int, truth: dict, n: int, settings: DetectionSettings) -> dict:
    started = time.perf_counter()
    by_model = rows_by_model(generate(n, seed, truth=truth))
    generated = time.perf_counter()
    findings = [f for model, rows in sorted(by_model.items()) for f in find_regressions(model, rows, settings)]
    checked = time.perf_counter()
    results = []
    for fact in fact_list(truth):
        hits = [f for f in findings if matches(fact, f)]
        sizes = series_sizes(fact, by_model.get(fact["model"], []))
        testable = min(sizes) >= 2 * settings.min_runs_per_window
        results.append({"fact": fact, "hits": hits, "sizes": sizes, "testable": testable})
    matched = {id(f) for r in results for f in r["hits"]}
    return {"seed": seed, "results": results, "extra": [f for f in findings if id(f) not in matched],
            "alerts": len(findings), "t_generate": generated - started, "t_check": checked - generated}


def report(fleet: dict, label: str) -> None:
    results = fleet["results"]
    found = sum(bool(r["hits"]) for r in results if r["testable"])
    missed = sum(not r["hits"] for r in results if r["testable"])
    untestable = sum(not r["testable"] for r in results)
    print(f"{label} seed {fleet['seed']:>4}: facts {len(results)}  found {found}  missed {missed}  "
          f"untestable {untestable}  extra {len(fleet['extra'])}  (alerts {fleet['alerts']}; "
          f"generate {fleet['t_generate']:.1f} s, check {fleet['t_check']:.1f} s)")
    for r in results:
        before, after = r["sizes"]
        if not r["testable"]:
            state = f"untestable: {before}/{after} runs" + (", found anyway" if r["hits"] else "")
        else:
            state = f"found ({len(r['hits'])} alerts)" if r["hits"] else "MISSED"
            state += f", {before}/{after} runs"
        print(f"    {describe(r['fact'])} -- {state}")
        if r["hits"] and r["fact"]["kind"] == "cached_load" and all(f.key.os_major is None for f in r["hits"]):
            print("        (alerted on all OS versions together, not on its OS cohort)")
    for f in fleet["extra"]:
        print(f"    extra: {describe_alert(f)}")


def summary(fleets: list[dict], label: str) -> None:
    results = [r for fleet in fleets for r in fleet["results"]]
    testable = [r for r in results if r["testable"]]
    found = sum(bool(r["hits"]) for r in testable)
    extras = [len(f["extra"]) for f in fleets]
    times = [f["t_generate"] + f["t_check"] for f in fleets]
    recall = f"{found / len(testable):.2f}" if testable else "-"
    print(f"{label}: {len(fleets)} fleets, {len(results)} facts, {len(testable)} testable, found {found}, "
          f"missed {len(testable) - found}, untestable {len(results) - len(testable)} "
          f"(found anyway {sum(bool(r['hits']) for r in results if not r['testable'])}); recall {recall}")
    for kind in KIND_METRICS:
        of_kind = [r for r in testable if r["fact"]["kind"] == kind]
        untested = sum(r["fact"]["kind"] == kind and not r["testable"] for r in results)
        if of_kind or untested:
            hit = sum(bool(r["hits"]) for r in of_kind)
            rate = f"{hit / len(of_kind):.2f}" if of_kind else "-"
            print(f"    recall {kind:<12} {hit}/{len(of_kind)} = {rate}   (+{untested} untestable)")
    kinds = Counter(f.key.metric for fleet in fleets for f in fleet["extra"])
    print(f"    extra alerts per fleet: {extras} (mean {np.mean(extras):.1f}); by metric: {dict(kinds)}")
    generating, checking = np.mean([f["t_generate"] for f in fleets]), np.mean([f["t_check"] for f in fleets])
    print(f"    time per fleet: mean {np.mean(times):.1f} s (generate+convert {generating:.1f} s, "
          f"find_regressions {checking:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", type=int, default=10, help="fleets with a random truth")
    parser.add_argument("--runs", type=int, default=30_000, help="runs per fleet")
    parser.add_argument("--seed", type=int, default=100, help="first fleet seed (then seed+1, ...)")
    parser.add_argument("--control", type=int, default=3, help="fleets with GROUND_TRUTH, seeds 1..N (0: none)")
    parser.add_argument("--alpha", type=float, default=DetectionSettings.alpha)
    parser.add_argument("--location-margin", type=float, default=DetectionSettings.location_margin)
    args = parser.parse_args()
    settings = DetectionSettings(alpha=args.alpha, location_margin=args.location_margin)
    print(f"{args.runs} runs per fleet; detector defaults but alpha={settings.alpha}, "
          f"location_margin={settings.location_margin}, "
          f"min_runs_per_window={settings.min_runs_per_window} (untestable: < {2 * settings.min_runs_per_window} runs "
          f"on a side of the fact's best series)")
    drawn = []
    for seed in range(args.seed, args.seed + args.fleets):
        drawn.append(run_fleet(seed, random_truth(seed), args.runs, settings))
        report(drawn[-1], "random truth")
    control = []
    for seed in range(1, args.control + 1):
        control.append(run_fleet(seed, GROUND_TRUTH, args.runs, settings))
        report(control[-1], "GROUND_TRUTH")
    print()
    if drawn:
        summary(drawn, "random truths")
    if control:
        summary(control, "control (GROUND_TRUTH)")


if __name__ == "__main__":
    main()
