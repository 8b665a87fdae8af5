"""How well the regression detector finds injected slowdowns, against the plain "median 10% above" rule.

Run: ``/work/venv/bin/python -m benchmarks.detection [--per-step 2000] [--seed 1] [--alpha A] [--runs-per-version 10-20]``

Each series is one device/unit/metric over 6 model versions with 10-20 runs each. Noise is device-like: log-normal
with a per-series spread drawn from 2-8% (a run's warm median varies 2-5% run to run in a lab, loads more), plus
thermal outliers: 5% of runs are 1.2-2x slower. A step of 0, 3, 5, 10 or 25% starts at a random version from the
third on and stays. An alert counts as a true positive when it is at the step's version, anything else (an alert
on noise, or a real step placed at the wrong version) is a false alert. The plain rule compares each version's
runs with up to 48 runs before it (fixed, so the yardstick does not move with the detector's settings),
restarting after an alert, at least ``min_runs_per_window`` runs each. Prints precision and recall per step size and the wall time of
``detect_slowdowns`` over all series (5 x per-step = 10,000 by default).
"""

import argparse
import time

import numpy as np

from insights.detection import detect_slowdowns, version_groups
from insights.settings import DetectionSettings

STEPS = (0.0, 0.03, 0.05, 0.10, 0.25)
VERSIONS = [f"1.{i}.0" for i in range(6)]
NAIVE_BASELINE_RUNS = 48


def make_series(rng: np.random.Generator, step: float, runs_per_version=(10, 20)) -> tuple[list[tuple[str, float]], str, float]:
    """One series: its (version, value) points, the version where the step starts, and its noise spread."""
    sigma = rng.uniform(0.02, 0.08)
    level = rng.uniform(5.0, 2000.0)
    step_at = int(rng.integers(2, len(VERSIONS)))
    points = []
    for i, version in enumerate(VERSIONS):
        runs = int(rng.integers(runs_per_version[0], runs_per_version[1] + 1))
        values = level * (1 + step * (i >= step_at)) * np.exp(rng.normal(0.0, sigma, runs))
        hot = rng.random(runs) < 0.05
        values[hot] *= rng.uniform(1.2, 2.0, hot.sum())
        points += [(version, float(v)) for v in values]
    return points, VERSIONS[step_at], sigma


def naive_alerts(points, settings: DetectionSettings, threshold: float = 0.10) -> list[str]:
    """The plain rule on the detector's windows: alert when the version's median is >10% above the baseline's."""
    values = np.asarray([v for _, v in points])
    alerts, floor = [], 0
    for version, current in version_groups([v for v, _ in points])[1:]:
        base = range(max(floor, current.start - NAIVE_BASELINE_RUNS), current.start)
        if min(len(base), len(current)) < settings.min_runs_per_window:
            continue
        if np.median(values[current.start:current.stop]) > (1 + threshold) * np.median(values[base.start:base.stop]):
            alerts.append(version)
            floor = current.start
    return alerts


def score(found: list[list[str]], truth: list[str]) -> tuple[int, int, int]:
    """(true positives, false alerts, series with the step found)."""
    tp = sum(t in f for f, t in zip(found, truth))
    fp = sum(len(f) for f in found) - tp
    return tp, fp, tp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-step", type=int, default=2000, help="series per step size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=DetectionSettings.alpha)
    parser.add_argument("--location-margin", type=float, default=DetectionSettings.location_margin)
    parser.add_argument("--runs-per-version", default="10-20", help="range of runs per version, e.g. 30-60")
    args = parser.parse_args()
    runs_per_version = tuple(int(x) for x in args.runs_per_version.split("-"))
    settings = DetectionSettings(alpha=args.alpha, location_margin=args.location_margin)
    rng = np.random.default_rng(args.seed)
    series = {step: [make_series(rng, step, runs_per_version) for _ in range(args.per_step)] for step in STEPS}

    started = time.perf_counter()
    detected = {step: [[c.version for c in detect_slowdowns(points, settings) if c.is_regression]
                       for points, _, _ in cases] for step, cases in series.items()}
    elapsed = time.perf_counter() - started
    naive = {step: [naive_alerts(points, settings) for points, _, _ in cases] for step, cases in series.items()}

    print(f"{args.per_step} series per step size, 6 versions x {args.runs_per_version} runs, noise 2-8% log-normal + 5% thermal "
          f"outliers; detector: Mann-Whitney p < {settings.alpha} and |change| >= {settings.min_effect:.0%}, placed with "
          f"a margin of {settings.location_margin}")
    print(f"{'step':>5} | {'detector':^32} | {'naive: median > +10%':^32}")
    print(f"{'':>5} | {'precision':>9} {'recall':>7} {'false alerts':>14} | "
          f"{'precision':>9} {'recall':>7} {'false alerts':>14}")
    for step, cases in series.items():
        truth = [t for _, t, _ in cases]
        cells = []
        for found in (detected[step], naive[step]):
            tp, fp, hit = score(found, truth)
            if step == 0:
                tp, hit = 0, 0
                fp = sum(len(f) for f in found)
            precision = f"{tp / (tp + fp):.3f}" if tp + fp and step else "-"
            recall = f"{hit / len(cases):.3f}" if step else "-"
            cells.append(f"{precision:>9} {recall:>7} {fp:>14}")
        print(f"{step:>5.0%} | {cells[0]} | {cells[1]}")
    total_fp = {name: sum(score(found[s], [t for _, t, _ in series[s]])[1] if s else sum(map(len, found[s]))
                          for s in STEPS) for name, found in (("detector", detected), ("naive", naive))}
    print(f"false alerts over all {len(STEPS) * args.per_step} series: detector {total_fp['detector']}, "
          f"naive {total_fp['naive']}")
    for low, high in ((0.02, 0.04), (0.04, 0.06), (0.06, 0.08)):
        for step in (0.05, 0.10):
            cases = [(d, t) for d, (_, t, s) in zip(detected[step], series[step]) if low <= s < high]
            print(f"recall at {step:.0%} step, noise {low:.0%}-{high:.0%}: "
                  f"{sum(t in d for d, t in cases) / len(cases):.3f} ({len(cases)} series)")
    n = sum(len(c) for c in series.values())
    print(f"detect_slowdowns over {n} series: {elapsed:.1f} s wall ({elapsed / n * 1e3:.2f} ms per series)")


if __name__ == "__main__":
    main()
