"""Every threshold the statistics use, in one place.

Django settings feed these dataclasses later (``PolicySettings(**settings.PERFBOARD_POLICY)``); until then the
defaults below are the documented behaviour. Nothing else in ``insights`` hard-codes a threshold.
"""

from dataclasses import dataclass

COMPUTE_UNITS = ("cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine", "all")
LOAD_KINDS = ("cold", "cached", "in_memory")
FAILURE_STATUSES = ("crash", "oom", "error", "timeout")


@dataclass(frozen=True)
class PolicySettings:
    """Thresholds of the compute-unit policy (issue 4).

    min_runs: runs a unit needs at one level (device or chip) before it may be chosen there.
    max_failure_rate: highest *observed* failure rate (crash, oom, error, timeout) a chosen unit may have. The Wilson
        upper bound is reported, not used as the gate: 0 failures in 25 runs still allows ~13%, so gating on it would
        reject every lab-sized sample.
    default_compute_units: the unit used when neither the device nor its chip has enough evidence. ``cpuAndGPU``
        never compiles for the Neural Engine, which is where the crashes and the 10x slower loads come from in the
        field reports; it is what careful teams ship today, and ``cpuOnly`` stays behind it in the fallback chain.
    final_fallback: the unit every fallback chain ends with, tested or not: it runs on every iPhone.
    confidence: level of the reported intervals.
    """

    min_runs: int = 10
    max_failure_rate: float = 0.005
    default_compute_units: str = "cpuAndGPU"
    final_fallback: str = "cpuOnly"
    confidence: float = 0.95


@dataclass(frozen=True)
class DetectionSettings:
    """Thresholds of the regression check (issue 6).

    min_runs_per_window: fewer runs than this in the baseline or the current window -> no test, no alert.
    max_baseline_runs: the baseline is at most this many runs right before the version under test (Perfherder's
        back window); older runs describe an older state of the device and OS. 48 rather than Perfherder's 24: in
        benchmarks/detection.py it lifts recall at a 10% step from 0.69 to 0.81 with no more false alerts.
    alpha: p-value under which a difference counts. Strict because every version boundary of every series is tested
        on each check; the benchmark (benchmarks/detection.py) shows the false-alert rate it buys.
    min_effect: smallest relative change of the median worth an alert (5%): below it, noise and thermal state
        explain more than the model does.
    crash_alpha: p-value for the one-sided two-proportion (Fisher exact) test on failure rates.
    max_failure_baseline_runs: the failure-rate baseline reaches further back than the timing one: failures are
        rare, and 24 clean runs cannot show that 20% of 30 is new (Fisher p = 0.02), 60 can.
    max_failure_rate: failure rate ``failure_rate_above_allowed`` holds a unit against (as in the policy).
    min_placement_share_drop: fall of the Neural Engine share (of ops or of estimated cost) that makes a placement
        shift an alert; 0 means any op that leaves the Neural Engine counts.
    """

    min_runs_per_window: int = 8
    max_baseline_runs: int = 48
    alpha: float = 0.001
    min_effect: float = 0.05
    crash_alpha: float = 0.01
    max_failure_baseline_runs: int = 500
    max_failure_rate: float = 0.005
    min_placement_share_drop: float = 0.0


@dataclass(frozen=True)
class ComparisonSettings:
    """A/B comparison of variants (loading or warm-up strategies)."""

    min_runs: int = 5
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
