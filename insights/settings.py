"""Every threshold the statistics use, in one place.

The field defaults below are the documented behaviour and the defaults of the PERFBOARD keys that feed them
(perfboard/settings.py declares each key once, perfboard/conf.py builds these objects). Nothing else in ``insights``
hard-codes a threshold.
"""

from dataclasses import dataclass

from .vocabulary import COMPUTE_UNITS


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

    def __post_init__(self):
        for name in ("default_compute_units", "final_fallback"):
            if getattr(self, name) not in COMPUTE_UNITS:
                raise ValueError(f"{name} must be one of {', '.join(COMPUTE_UNITS)}, not {getattr(self, name)!r}")


@dataclass(frozen=True)
class DetectionSettings:
    """Thresholds of the regression check (issue 6).

    min_runs_per_window: fewer runs than this in the baseline or the current window -> no test, no alert.
    max_baseline_runs: the baseline is at most this many runs right before the version under test (Perfherder's
        back window); older runs describe an older state of the device and OS.
    max_current_runs: the current window is at most this many runs from the version under test on (Perfherder's
        fore window): the following versions' runs confirm a step too small to show in one version's.
    alpha: two-sided p-value of the Mann-Whitney test under which a split counts, for a series as the benchmark
        and a chip's own series see it (insights.regressions divides it among the metrics of one group of runs).
        benchmarks/detection.py, 10-20 runs per version, location_margin 0.75, seed 1: recall at 10% steps 0.936 at
        0.001, 0.951 at 0.003, 0.953 at 0.005 (0.957-0.963 on seeds 2-5); false alerts 51, 66, 78 against the
        plain rule's 110 (seeds 2-5: 72-90 against 88-117).
    drilldown_alpha: the same for the finer series a check also tests (each device, each OS cohort), before the
        Bonferroni share of each: there are five to ten of them per chip, and they raised most false alerts in
        simulated fleets (benchmarks/fleet_detection.py, seeds 100-115: 10 extra alerts with 0.005 for every
        level, 2 with 0.001 for the finer ones, 1 with 0.001 everywhere; seeds 116-131: 3 and 1).
    location_margin: a change raises an alert only when its split fits better than all other splits of its
        stretch together by this much: the log-odds of the split, its cost and theirs read as negative
        log-likelihoods (0.75: about 2.1 times likelier than all the others, a probability of 0.68). An alert names
        a version; a step the data place about as well one version earlier or later would send a team to the wrong
        change. It still splits the series, so the next change is measured from the new level. At alpha 0.005,
        seed 1: 0.5 gains 0.003 recall at 10% steps for 20 more false alerts (98); 1.0 loses 0.003 for 10 fewer.
        Against the next best split alone (the rule before) the same recall cost 10-20 more false alerts, most of
        them 3-5% steps placed a version off.
    shared_unit_alpha: a slowdown found on all compute units of a chip together is alerted for each unit whose own
        runs show it at this two-sided level (and with ``min_effect``, from ``min_runs_per_window // 2`` runs a
        side). Asked only after the shared step passed ``alpha``, so it is not a test of its own. At 0.05, two
        units of one noise step in a control fleet passed (benchmarks/fleet_detection.py, GROUND_TRUTH seed 2,
        +5.1% and +6.6%); at 0.01 none did, and 65 of 66 testable facts of seeds 100-131 were still found.
    min_effect: smallest relative change of the median worth an alert (5%): below it, noise and thermal state
        explain more than the model does.
    crash_alpha: p-value for the one-sided two-proportion (Fisher exact) test on failure rates. Looser than
        ``alpha`` because failures are counted, not timed: 7 crashes in 21 runs against none in 20 give p = 0.005.
    min_failure_rate_ratio: the new failure rate must be at least this multiple of the baseline's (the failure-rate
        counterpart of ``min_effect``). Without it, a series that really started crashing at one version raised a
        second alert at the next one whenever the first version's sample came out low (benchmarks/fleet_detection.py,
        control seed 2: 22% -> 31% of ~300 runs, p = 0.0099).
    max_failure_baseline_runs: the failure-rate baseline reaches further back than the timing one: failures are
        rare, and 24 clean runs cannot show that 20% of 30 is new (Fisher p = 0.02), 500 can.
    min_placement_share_drop: fall of the Neural Engine share (of ops or of estimated cost) that makes a placement
        shift an alert; 0 means any op that leaves the Neural Engine counts.
    fallback_min_runs, fallback_margin, fallback_alpha: the silent Neural Engine fallback's timing test
        (insights.fallback, issue 14): a Neural Engine unit "runs on the CPU" when, with at least ``fallback_min_runs``
        successful runs of it and of cpuOnly, two one-sided Mann-Whitney tests at ``fallback_alpha`` show its warm
        predictions within ``fallback_margin`` (20%: neither 20% faster nor 25% slower) of cpuOnly's.
        fallback_min_plans: compute plans a unit needs before its plans alone may mark it.
    """

    min_runs_per_window: int = 8
    max_baseline_runs: int = 96
    max_current_runs: int = 96
    alpha: float = 0.005
    drilldown_alpha: float = 0.001
    min_effect: float = 0.05
    location_margin: float = 0.75
    shared_unit_alpha: float = 0.01
    crash_alpha: float = 0.01
    min_failure_rate_ratio: float = 1.5
    max_failure_baseline_runs: int = 500
    min_placement_share_drop: float = 0.0
    fallback_min_runs: int = 10
    fallback_margin: float = 0.2
    fallback_alpha: float = 0.001
    fallback_min_plans: int = 1


@dataclass(frozen=True)
class ComparisonSettings:
    """A/B comparison of variants (loading or warm-up strategies)."""

    min_runs: int = 5
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
