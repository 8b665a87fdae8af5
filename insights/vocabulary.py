"""What Perfboard measures, in one place: compute units, configurations, load kinds, statuses, the metrics and the
order of model versions. The data model's choices, the wire schema's literals, the filters, the figures' labels and
the alerts' metric names are all built from these; nothing else in the tree spells them out again.

Pure Python: no Django, so ``insights`` and its tests stay free of the database.
"""
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from packaging.version import InvalidVersion, Version

# MLComputeUnits, from the most conservative to the most ambitious. cpuOnly runs on every iPhone.
COMPUTE_UNITS = ("cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine", "all")
NEURAL_ENGINE_UNITS = ("cpuAndNeuralEngine", "all")

# How the model reached memory before its load (docs/api.md, `load_kind`).
LOAD_KINDS = ("cold", "cached", "in_memory")
LOAD_KIND_LABELS = {"cold": "Cold load (first after install/OS update)", "cached": "Cached load",
                    "in_memory": "In-memory load (decrypted, never on disk)"}
LOAD_KIND_NAMES = {kind: kind.replace("_", "-") for kind in LOAD_KINDS}  # short, in figures: "in-memory"

OK = "ok"
STATUSES = (OK, "crash", "oom", "error", "timeout")
FAILURE_STATUSES = STATUSES[1:]  # every status but ok counts as a failure of the configuration

# The stages of a session, in order; a failure names the one it happened in. LAUNCH_STAGES are timed per run.
STAGES = ("decrypt", "compile", "load", "first_prediction", "prediction")
LAUNCH_STAGES = STAGES[:4]
STAGE_NAMES = {stage: stage.replace("_", " ") for stage in STAGES}  # in the user's words: "first prediction"

SOURCES = ("lab", "field")
PLAN_DEVICES = ("cpu", "gpu", "neural_engine")
THERMAL_STATES = ("nominal", "fair", "serious", "critical")

# MLOptimizationHints (iOS 17.4+/18+): part of a configuration, never pooled across values. Apple's defaults first.
SPECIALIZATION_STRATEGIES = ("default", "fastPrediction")
RESHAPE_FREQUENCIES = ("frequent", "infrequent")


@dataclass(frozen=True, order=True)
class Configuration:
    """What an app sets on ``MLModelConfiguration`` and the policy chooses among: the compute units and the
    optimization hints. Runs of different configurations are different evidence."""

    compute_units: str
    specialization_strategy: str = SPECIALIZATION_STRATEGIES[0]
    reshape_frequency: str = RESHAPE_FREQUENCIES[0]

    def __post_init__(self):
        for value, allowed, name in ((self.compute_units, COMPUTE_UNITS, "compute_units"),
                                     (self.specialization_strategy, SPECIALIZATION_STRATEGIES,
                                      "specialization_strategy"),
                                     (self.reshape_frequency, RESHAPE_FREQUENCIES, "reshape_frequency")):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")

    @property
    def hints(self) -> dict[str, str]:
        """The hints that differ from Apple's defaults (what an app must set), as the wire format names them."""
        hints = {}
        if self.specialization_strategy != SPECIALIZATION_STRATEGIES[0]:
            hints["specialization_strategy"] = self.specialization_strategy
        if self.reshape_frequency != RESHAPE_FREQUENCIES[0]:
            hints["reshape_frequency"] = self.reshape_frequency
        return hints

    @cached_property  # (the fields are frozen)
    def label(self) -> str:
        return " + ".join([self.compute_units, *self.hints.values()])


@dataclass(frozen=True)
class Metric:
    """One timing or size Perfboard summarises per group of runs.

    key: the name in URLs, ``GET /api/v1/stats`` and the pages. alert_name: the name alerts store and the API's
    alerts carry (docs/api.md). column: the run's summary column it reads. load_kind: the only load kind
    whose runs have it (None: every run). Timings are read from successful runs only: a failed run's numbers are
    those of a session that did not happen, and never enter a median.
    """

    key: str
    label: str
    unit: str
    column: str
    alert_name: str
    load_kind: str | None = None
    successful_only: bool = True


METRICS = {m.key: m for m in (
    Metric("load_cold", LOAD_KIND_LABELS["cold"], "ms", "load_ms", "load_ms_cold", "cold"),
    Metric("load_cached", LOAD_KIND_LABELS["cached"], "ms", "load_ms", "load_ms_cached", "cached"),
    Metric("load_in_memory", LOAD_KIND_LABELS["in_memory"], "ms", "load_ms", "load_ms_in_memory", "in_memory"),
    Metric("first_prediction", "First prediction", "ms", "first_prediction_ms", "first_prediction_ms"),
    Metric("prediction", "Warm prediction", "ms", "prediction_median_ms", "prediction_ms_median"),
    Metric("prediction_p90", "Warm prediction p90 (per run)", "ms", "prediction_p90_ms", "prediction_ms_p90"),
    Metric("peak_memory_mb", "Peak memory", "MB", "peak_memory_mb", "peak_memory_mb"),
)}
LOAD_METRICS = {m.load_kind: m for m in METRICS.values() if m.load_kind}  # load kind -> its load metric
METRICS_BY_ALERT_NAME = {m.alert_name: m for m in METRICS.values()}
# Alert metrics that are not timings: a failure rate, and the Neural Engine's share of a compute plan.
CRASH_METRIC = "crash_rate"
PLACEMENT_METRIC = "neural_engine_share"
ALERT_METRIC_LABELS = {**{m.alert_name: m.label for m in METRICS.values()},
                       CRASH_METRIC: "Failure rate", PLACEMENT_METRIC: "Neural Engine placement"}


_SEPARATORS = re.compile(r"[._\-+]")
_NUMBERS = re.compile(r"(\d+)")


@lru_cache(maxsize=4096)  # a check sorts thousands of runs of a few versions; parsing each dominated it
def version_key(version: str) -> tuple:
    """The one order of model versions: "latest", the versions page, the regression check and alerts use it.

    The numeric release comes first ("3.10.0" after "3.9.1", "1.0_10" after "1.0_9"; trailing zeros do not count,
    so "3.2" and "3.2.0" are one release). Within a release, a version PEP 440 can read sorts by PEP 440 ("2.0b1"
    before "2.0", "2.0.post1" after it) and before any it cannot read; those sort in natural order, numbers by value
    and text by letters ("3.4.0-int8" after "3.4.0", "fp16" before "int8").
    """
    try:
        parsed = Version(version)
    except InvalidVersion:
        parsed = None
    if parsed is not None:
        return _strip_zeros(parsed.release), 0, parsed, ()
    parts = _SEPARATORS.split(version)
    release = []
    for part in parts:
        if not part.isdigit():
            break
        release.append(int(part))
    rest = "".join(parts[len(release):])
    natural = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _NUMBERS.split(rest) if p)
    return _strip_zeros(release), 1, None, natural


def _strip_zeros(release) -> tuple[int, ...]:
    release = list(release)
    while release and release[-1] == 0:
        release.pop()
    return tuple(release)


def sort_versions(versions) -> list[str]:
    return sorted(versions, key=version_key)
