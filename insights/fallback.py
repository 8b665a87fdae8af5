"""Silent Neural Engine fallback (issue 14, item 2): runs that asked for the Neural Engine and ran on the CPU.

When the Neural Engine compiler fails, Core ML often neither crashes nor throws: the log says ``ANECCompile()
FAILED`` and the model runs on the CPU (coremltools#1548, #2247). Such runs report ``"status": "ok"``; only placement
or timing tells. Two pieces of evidence, each enough on its own:

* **Compute plans.** A run on ``cpuAndNeuralEngine`` or ``all`` whose plan (``MLComputePlan``) places no operation
  on the Neural Engine and some on the CPU (:func:`plan_on_cpu`). A group is marked when at least
  ``fallback_min_plans`` of its plans were uploaded and most of them show it.
* **Timing.** The group's warm predictions (each run's median) *match* the same device's (or chip's, same model
  version) ``cpuOnly`` runs: an equivalence test (two one-sided Mann-Whitney tests, TOST) that the Neural Engine
  runs are neither more than ``fallback_margin`` faster nor more than that much slower than the CPU's
  (``cpuOnly`` scaled by ``1 - margin`` and ``1 / (1 - margin)``), each at ``fallback_alpha``, with at least
  ``fallback_min_runs`` runs on both sides (:func:`timing_matches_cpu`). Failing to tell them apart is not
  evidence: the test asks for proof that they are the same within the margin. A model the Neural Engine cannot
  speed up by more than the margin is marked too; that is the point (the unit buys nothing but its compile).

Pure Python (scipy), no Django: ``policy.evidence`` marks the policy's evidence with it, ``alerts.check`` raises
``silent_fallback`` alerts from :func:`find_silent_fallbacks` when it starts at a version (an alert's ``baseline``
and ``current`` are the unit's median warm prediction, ms, at the two versions; its metric is the warm median's).
"""
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .columns import RunColumns
from .detection import mann_whitney_one_sided_p, mann_whitney_one_sided_ps
from .regressions import Finding, SeriesKey
from .settings import DetectionSettings
from .vocabulary import COMPUTE_UNITS, METRICS, NEURAL_ENGINE_UNITS, OK, version_key
from .weighted import Weighted

KIND = "silent_fallback"
METRIC = METRICS["prediction"].alert_name  # what the alert's baseline and current are: the warm median, ms


@dataclass(frozen=True)
class Fallback:
    """What the runs of one Neural Engine unit showed against the CPU.

    on_cpu: the runs ran on the CPU by ``by`` ("compute plans", "timing" or both). ratio: the unit's median warm
    prediction over cpuOnly's (about 1 when on the CPU; a working Neural Engine is usually well under 1). p_value:
    the equivalence test's (the larger one-sided p; the first alone where it already fails the test), None when it
    was not run. runs, cpu_runs: timed runs on each side. plans, plans_on_cpu: uploaded plans of the unit and those
    with no op on the Neural Engine.
    """

    compute_units: str
    on_cpu: bool
    by: str = ""
    ratio: float | None = None
    p_value: float | None = None
    runs: int = 0
    cpu_runs: int = 0
    plans: int = 0
    plans_on_cpu: int = 0
    faster_than_cpu: bool = False  # shown faster than cpuOnly by more than the margin (one-sided, at alpha)
    median_ms: float | None = None  # the unit's median warm prediction (of its runs' medians)

    @property
    def text(self) -> str:
        """"cpuAndNeuralEngine runs on the CPU: its warm predictions match cpuOnly's (1.02×, 40 and 40 runs)"."""
        if not self.on_cpu:
            return ""
        why = []
        if self.plans_on_cpu and "compute plans" in self.by:
            why.append(f"{self.plans_on_cpu} of {self.plans} compute plan{'s' if self.plans != 1 else ''} place "
                       f"no op on the Neural Engine")
        if "timing" in self.by:
            why.append(f"its warm predictions match cpuOnly's ({self.ratio:.2f}×, {self.runs} and {self.cpu_runs} "
                       f"runs)")
        return f"{self.compute_units} runs on the CPU: {'; '.join(why)}"


def plan_on_cpu(plan: Iterable[Mapping]) -> bool:
    """A compute plan (``[{"op", "device", ...}]``) with ops on the CPU and none on the Neural Engine."""
    devices = {op["device"] for op in plan}
    return "cpu" in devices and "neural_engine" not in devices


def timing_matches_cpu(neural_engine: Sequence[float] | Weighted, cpu_only: Sequence[float] | Weighted,
                       settings: DetectionSettings = DetectionSettings()
                       ) -> tuple[bool, float | None, float | None, bool]:
    """(matches, ratio of medians, p-value, faster) of the equivalence test described in the module docstring;
    ``faster``: the Neural Engine runs are shown faster than cpuOnly by more than the margin (one-sided Mann-Whitney
    at ``fallback_alpha``), the evidence that they did use it.
    The p-value is the larger one-sided p; where the first is already at least ``fallback_alpha`` (no match), that one,
    the second not computed.

    None for the ratio and p-value when either side has fewer than ``fallback_min_runs`` runs."""
    a, b = _present(neural_engine), _present(cpu_only)
    if a.n < settings.fallback_min_runs or b.n < settings.fallback_min_runs or b.median() <= 0:
        return False, None, None, False
    ratio = a.median() / b.median()
    low, high = 1.0 - settings.fallback_margin, 1.0 / (1.0 - settings.fallback_margin)
    p_not_faster, p_faster = mann_whitney_one_sided_ps(a, b.scaled(low))  # "greater", "less": one ranking
    faster = p_faster < settings.fallback_alpha
    if p_not_faster >= settings.fallback_alpha:
        # The equivalence already fails (its p is the larger of the two): a working Neural Engine, most units of a
        # fleet, skips the second ranking (half the rank tests of a device-rows overview).
        return False, ratio, p_not_faster, faster
    p_not_slower = mann_whitney_one_sided_p(a, b.scaled(high), "less")
    p = max(p_not_faster, p_not_slower)
    return p < settings.fallback_alpha, ratio, p, faster


def assess(compute_units: str, predictions: Sequence[float] | Weighted, cpu_predictions: Sequence[float] | Weighted,
           plans_on_cpu: Sequence[bool] = (), settings: DetectionSettings = DetectionSettings()) -> Fallback:
    """Whether the runs of a Neural Engine unit ran on the CPU. ``predictions``: each successful run's median warm
    prediction (or a :class:`Weighted` sample of them); ``cpu_predictions``: the same for cpuOnly runs of the same
    device (or chip) and model version; ``plans_on_cpu``: per uploaded compute plan of the unit, :func:`plan_on_cpu`.
    Units without the Neural Engine are never marked."""
    if compute_units not in NEURAL_ENGINE_UNITS:
        return Fallback(compute_units, False)
    plans = list(plans_on_cpu)
    on_cpu_plans = sum(bool(p) for p in plans)
    by_plan = len(plans) >= settings.fallback_min_plans and on_cpu_plans * 2 > len(plans)
    predictions, cpu_predictions = _present(predictions), _present(cpu_predictions)
    by_timing, ratio, p, faster = timing_matches_cpu(predictions, cpu_predictions, settings)
    by = " and ".join(name for name, yes in (("compute plans", by_plan), ("timing", by_timing)) if yes)
    return Fallback(compute_units, by_plan or by_timing, by, ratio, p, predictions.n, cpu_predictions.n,
                    len(plans), on_cpu_plans, faster, predictions.median() if predictions.n else None)


def _present(values) -> Weighted:
    """The values given (a sequence, or a :class:`Weighted` sample: a merged sketch's items), without the missing
    ones (None): whole arrays at once, since the samples of a large fleet hold thousands of values."""
    return Weighted.of(values).present()


# --- when it starts: the alert ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FallbackStart:
    """A Neural Engine unit of a chip that runs on the CPU from ``version`` on, and did not at ``baseline_version``
    (the latest earlier version assessed). ``current``/``baseline``: the two versions' assessments."""

    model: str
    chip: str
    compute_units: str
    version: str
    baseline_version: str
    current: Fallback
    baseline: Fallback
    run_ids: tuple[int, ...] = ()
    baseline_run_ids: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        return f"from {self.version}, {self.compute_units} on {self.chip} runs on the CPU"


@dataclass(frozen=True)
class TimedRuns:
    """The successful runs with a warm median of each (chip, compute units, version): medians and ids, in order."""

    times: dict[tuple, list[float]]
    ids: dict[tuple, list[int]]

    @classmethod
    def of(cls, runs: Iterable[tuple]) -> "TimedRuns":
        """From (id, version, chip, compute units, status, prediction_median_ms or None) tuples."""
        times: dict[tuple, list[float]] = defaultdict(list)
        ids: dict[tuple, list[int]] = defaultdict(list)
        for run_id, version, chip, units, status, prediction in runs:
            if status != OK or prediction is None:
                continue
            times[chip, units, version].append(prediction)
            ids[chip, units, version].append(run_id)
        return cls(dict(times), dict(ids))

    @classmethod
    def of_columns(cls, cols: RunColumns) -> "TimedRuns":
        """The same from one chip's columns, grouped by numpy: the check's runs are never tuples (at 1M runs the
        tuples alone took seconds)."""
        median = cols.values["prediction_median_ms"]
        index = np.flatnonzero(cols.ok & ~np.isnan(median))
        key = cols.compute_units[index].astype(np.int64) * len(cols.versions) + cols.version[index]
        order = np.argsort(key, kind="stable")  # within a key, the runs keep their order
        found, starts = np.unique(key[order], return_index=True)
        times, ids = {}, {}
        for k, a, b in zip(found.tolist(), starts.tolist(), [*starts[1:].tolist(), order.size]):
            runs = index[order[a:b]]
            units, version = divmod(k, len(cols.versions))
            times[cols.chip, COMPUTE_UNITS[units], cols.versions[version]] = median[runs].tolist()
            ids[cols.chip, COMPUTE_UNITS[units], cols.versions[version]] = cols.ids[runs].tolist()
        return cls(times, ids)


def find_fallback_starts(model: str, runs: Iterable[tuple] | TimedRuns,
                         plans: Mapping[tuple, Sequence[bool]] | None = None,
                         settings: DetectionSettings = DetectionSettings(),
                         versions: Iterable[str] | None = None) -> list[FallbackStart]:
    """Per chip and Neural Engine unit, the versions from which its runs run on the CPU after an earlier version's
    did not: one start per change, so a fallback that goes on for five versions is one alert, at its first.

    ``runs``: (id, version, chip, compute units, status, prediction_median_ms), every unit (cpuOnly's are the
    reference), or those grouped (:class:`TimedRuns`). ``plans``: (chip, compute units, version) -> per uploaded
    plan, :func:`plan_on_cpu`. ``versions``: report starts at these only. A version whose unit cannot be assessed
    either way (too few runs, no plans) is skipped, not a break."""
    plans = plans or {}
    wanted = set(versions) if versions is not None else None
    timed = runs if isinstance(runs, TimedRuns) else TimedRuns.of(runs)
    times, ids = timed.times, timed.ids
    keys = {(chip, units) for chip, units, _ in [*times, *plans] if units in NEURAL_ENGINE_UNITS}
    found = []
    for chip, units in sorted(keys):
        series = sorted({v for c, u, v in [*times, *plans] if (c, u) == (chip, units)}, key=version_key)
        previous = None  # (version, Fallback) of the latest assessed version
        for version in series:
            result = assess(units, times.get((chip, units, version), []),
                            times.get((chip, "cpuOnly", version), []),
                            plans.get((chip, units, version), ()), settings)
            decided = result.on_cpu or _runs_on_neural_engine(result, settings)
            if not decided:
                continue
            if (result.on_cpu and previous is not None and not previous[1].on_cpu
                    and (wanted is None or version in wanted)):
                found.append(FallbackStart(model, chip, units, version, previous[0], result, previous[1],
                                           tuple(ids.get((chip, units, version), ())),
                                           tuple(ids.get((chip, units, previous[0]), ()))))
            previous = (version, result)
    return found


def _runs_on_neural_engine(result: Fallback, settings: DetectionSettings) -> bool:
    """Evidence that the unit did use the Neural Engine: shown faster than the CPU by more than the margin, or
    uploaded plans that mostly place ops on it. A baseline must be this, so that a start is a change and not a first
    sight."""
    if result.on_cpu:
        return False
    return result.faster_than_cpu or result.plans >= settings.fallback_min_plans


def find_silent_fallbacks(model: str, runs: Iterable[tuple] | TimedRuns,
                          plans: Mapping[tuple, Sequence[bool]] | None = None,
                          settings: DetectionSettings = DetectionSettings(),
                          versions: Iterable[str] | None = None) -> list[Finding]:
    """:func:`find_fallback_starts` as the regression check's findings (kind ``silent_fallback``, per chip): baseline
    and current are the unit's median warm prediction at the two versions, change their relative difference,
    p_value the equivalence test's (None when the plans alone showed it)."""
    found = []
    for start in find_fallback_starts(model, runs, plans, settings, versions):
        times = {}
        for run_ids, label in ((start.baseline_run_ids, "baseline"), (start.run_ids, "current")):
            times[label] = len(run_ids)
        baseline, current = start.baseline.median_ms, start.current.median_ms
        change = current / baseline - 1.0 if baseline and current is not None else 0.0
        found.append(Finding(KIND, SeriesKey(model, start.chip, None, start.compute_units, METRIC), start.version,
                             start.baseline_version, baseline or 0.0, current or 0.0, change, start.current.p_value,
                             times["baseline"], times["current"], list(start.baseline_run_ids),
                             list(start.run_ids)))
    return found
