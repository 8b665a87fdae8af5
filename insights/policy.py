"""Which configuration (MLComputeUnits plus MLOptimizationHints) to use on a device, with a crash-safe fallback
chain (issues 4 and 14).

Input is plain evidence per configuration (what ``collector`` aggregates from runs: a compute unit with its
specialization strategy and reshape frequency, :class:`insights.vocabulary.Configuration`); output is a
:class:`Policy` whose ``to_dict()`` is the ``GET /api/v1/policy`` answer. Times are milliseconds.

A configuration's expected session time for ``n`` predictions is

    load + first prediction + (n - 1) x warm prediction

so a configuration with a slow load (the Neural Engine's specialization, or ``fastPrediction``'s longer one) wins
only past a break-even number of predictions (:func:`break_even_predictions`). Configurations are never pooled: a
``fastPrediction`` run is evidence about ``fastPrediction`` alone. Evidence, vetoes and the fallback chain are keyed by
the configuration's ``label`` ("cpuAndNeuralEngine + fastPrediction"; a configuration with Apple's default hints is
labelled by its unit alone, so answers without hints read as before).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from .intervals import wilson_interval
from .settings import PolicySettings
from .vocabulary import (COMPUTE_UNITS, LOAD_KINDS, RESHAPE_FREQUENCIES, SPECIALIZATION_STRATEGIES,
                         Configuration)


class Configured:
    """The configuration (compute units and hints) of a line of evidence, and its label: computed once per object
    (a device-rows overview at 1M runs read them ~2,700 times a request, each a new validated Configuration)."""

    @cached_property
    def configuration(self) -> Configuration:
        return Configuration(self.compute_units, self.specialization_strategy, self.reshape_frequency)

    @cached_property
    def label(self) -> str:
        return self.configuration.label


@dataclass(frozen=True)
class UnitEvidence(Configured):
    """What the runs of one compute unit at one level (a device, or all devices with a chip) showed.

    runs: all runs, failed ones included. failures: count per failure status (crash, oom, error, timeout).
    load_ms_median / load_runs: median load time and successful load count per load kind (cold, cached, in_memory).
    first_prediction_ms_median, prediction_ms_median: from successful runs; None when there were none.
    specialization_strategy, reshape_frequency: the optimization hints of these runs (with ``compute_units``, the
    configuration). runs_on_cpu: when the runs asked for the Neural Engine but show it is not there (a silent
    fallback, ``insights.fallback``), the sentence that says so; such a configuration is never chosen.
    """

    compute_units: str
    runs: int
    failures: Mapping[str, int] = field(default_factory=dict)
    load_ms_median: Mapping[str, float] = field(default_factory=dict)
    load_runs: Mapping[str, int] = field(default_factory=dict)
    first_prediction_ms_median: float | None = None
    prediction_ms_median: float | None = None
    specialization_strategy: str = SPECIALIZATION_STRATEGIES[0]
    reshape_frequency: str = RESHAPE_FREQUENCIES[0]
    runs_on_cpu: str = ""

    def __post_init__(self):
        if self.compute_units not in COMPUTE_UNITS:
            raise ValueError(f"unknown compute_units {self.compute_units!r}")
        self.configuration  # validates the hints
        if self.runs < 0 or any(v < 0 for v in self.failures.values()):
            raise ValueError("runs and failures must not be negative")
        if self.failure_count > self.runs:
            raise ValueError(f"{self.compute_units}: more failures ({self.failure_count}) than runs ({self.runs})")

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    @property
    def failure_rate(self) -> float:
        return self.failure_count / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class UnitAssessment(Configured):
    """One unit's line in the policy's evidence; ``note`` says why an ineligible unit was left out."""

    compute_units: str
    runs: int
    crash_rate: float
    crash_rate_upper: float
    load_ms_median: float | None
    first_prediction_ms_median: float | None
    prediction_ms_median: float | None
    expected_session_ms: float | None
    eligible: bool
    note: str
    source: str = "device"  # whose runs: "device" or "chip"
    failures: int = 0  # failed runs among ``runs`` (not in to_dict: the API's evidence carries the rate)
    specialization_strategy: str = SPECIALIZATION_STRATEGIES[0]
    reshape_frequency: str = RESHAPE_FREQUENCIES[0]
    runs_on_cpu: str = ""  # the silent-fallback sentence, when the runs show the Neural Engine is not there

    def to_dict(self) -> dict:
        def ms(v):
            return None if v is None else round(float(v), 1)
        return {"compute_units": self.compute_units, "optimization_hints": self.configuration.hints,
                "runs": self.runs, "crash_rate": round(self.crash_rate, 4),
                "crash_rate_upper": round(self.crash_rate_upper, 4), "load_ms_median": ms(self.load_ms_median),
                "first_prediction_ms_median": ms(self.first_prediction_ms_median),
                "prediction_ms_median": ms(self.prediction_ms_median),
                "expected_session_ms": ms(self.expected_session_ms), "eligible": self.eligible, "note": self.note,
                "source": self.source, "runs_on_cpu": bool(self.runs_on_cpu)}


@dataclass(frozen=True)
class EvidenceNeeded:
    """More runs that would decide between the policy's answer and a unit the gates keep out, though its own
    runs say it is faster at the workload (see :func:`what_would_change`).

    more_runs: runs of ``compute_units`` still needed; ``clean``: they must not fail (the unit is out on its failure
    rate), else any runs will do (it is out on its number of runs). None: no number of runs would do (the gate
    allows no failure). level: whose runs fall short or fail, "device" or "chip". runs, failures: those runs so far.
    speedup: the chosen unit's expected session over this unit's, at the workload (None when the chosen unit has no
    measured session: the conservative default). failure_low: the lower end of the failure rate's interval (at the
    settings' confidence): when it is above the gate, the failures are likely real and clean runs unlikely.
    """

    compute_units: str
    chosen: str
    more_runs: int | None
    clean: bool
    level: str
    runs: int
    failures: int
    speedup: float | None
    failure_low: float = 0.0
    max_failure_rate: float = 0.0
    confidence: float = 0.95
    label: str = ""  # the configuration ("cpuAndNeuralEngine + fastPrediction"); empty: the unit with default hints

    @property
    def configuration_label(self) -> str:
        return self.label or self.compute_units

    def text(self, device: str = "this device", chip: str = "") -> str:
        """One sentence, e.g. "1 more run of cpuAndNeuralEngine on iPhone 16 Pro Max: it is 4.3× faster at this
        workload by its 9 runs". ``device`` and ``chip`` name where the runs are wanted."""
        where = device if self.level == "device" or not chip else f"{device} or another {chip} device"
        name = self.configuration_label
        faster = (f"it is {self.speedup:.1f}× faster at this workload" if self.speedup
                  else "the default is unmeasured")
        if not self.clean:
            return (f"{self.more_runs} more run{'s' if self.more_runs != 1 else ''} of {name} on "
                    f"{where}: {faster} by its {self.runs} run{'s' if self.runs != 1 else ''}")
        failed = (f"{name} is out after {self.failures} failure{'s' if self.failures != 1 else ''} "
                  f"in {self.runs} runs{' of its chip' if self.level == 'chip' else ''}")
        if self.more_runs is None:
            return f"{failed}; the gate allows no failure"
        likely = (f" (unlikely: ≥ {self.failure_low:.1%} at {self.confidence:.0%})"
                  if self.failure_low > self.max_failure_rate else "")
        return (f"{failed}: {self.more_runs:,} clean runs would bring it under the {self.max_failure_rate:.1%} "
                f"gate{likely}; {faster}")

    def to_dict(self) -> dict:
        return {"compute_units": self.compute_units, "configuration": self.configuration_label,
                "more_runs": self.more_runs, "clean": self.clean,
                "level": self.level, "runs": self.runs, "failures": self.failures,
                "speedup": None if self.speedup is None else round(self.speedup, 2)}


@dataclass(frozen=True)
class Policy:
    """The answer for one device. ``configuration`` is what to set (units and hints); ``compute_units`` is its unit.
    ``fallback_configurations`` is the chain to walk when it fails, and ``fallback`` the same chain as unit names
    (the wire contract's list: each unit once, the chosen unit left out, cpuOnly last), for apps that set no hints.
    ``evidence`` is keyed by configuration label (a unit's name when its hints are Apple's defaults)."""

    compute_units: str
    fallback: list[str]
    basis: str  # "device", "chip" or "default"
    reason: str
    evidence: dict[str, UnitAssessment]
    # What more runs would decide it (what_would_change), fastest unit first. Not in to_dict: the pages show it.
    changes: tuple[EvidenceNeeded, ...] = ()
    configuration: Configuration | None = None  # None: the unit with Apple's default hints
    fallback_configurations: tuple[Configuration, ...] = ()

    def __post_init__(self):
        if self.configuration is None:
            object.__setattr__(self, "configuration", Configuration(self.compute_units))
        if not self.fallback_configurations:
            object.__setattr__(self, "fallback_configurations", tuple(Configuration(u) for u in self.fallback))

    @property
    def label(self) -> str:
        return self.configuration.label

    @property
    def chosen(self) -> UnitAssessment | None:
        """The chosen configuration's evidence (None for an unmeasured default)."""
        return self.evidence.get(self.label)

    def to_dict(self) -> dict:
        return {"compute_units": self.compute_units, "optimization_hints": self.configuration.hints,
                "fallback": list(self.fallback),
                "fallback_configurations": [{"compute_units": c.compute_units, "optimization_hints": c.hints}
                                            for c in self.fallback_configurations],
                "basis": self.basis, "reason": self.reason,
                "evidence": {label: a.to_dict() for label, a in self.evidence.items()}}


def load_mix(evidence: Sequence[UnitEvidence]) -> dict[str, float]:
    """Share of each load kind among all successful loads of the evidence, pooled over units.

    Pooled so that every unit is priced with the same mix: a lab that happened to run more cold loads on one unit
    must not make that unit look slower.
    """
    counts = {kind: 0 for kind in LOAD_KINDS}
    for unit in evidence:
        for kind, n in unit.load_runs.items():
            if unit.load_ms_median.get(kind) is not None:
                counts[kind] = counts.get(kind, 0) + n
    total = sum(counts.values())
    return {kind: n / total for kind, n in counts.items() if n} if total else {}


def expected_load_ms(unit: UnitEvidence, mix: Mapping[str, float], load_kind: str | None = None) -> float | None:
    """Load time of ``load_kind`` if named, else the mix-weighted median load (weights renormalised over the kinds
    this unit has measured). None when the unit has no load of the kind asked for."""
    if load_kind is not None:
        return unit.load_ms_median.get(load_kind)
    kinds = [k for k in mix if unit.load_ms_median.get(k) is not None]
    weight = sum(mix[k] for k in kinds)
    if not weight:
        return None
    return sum(mix[k] * unit.load_ms_median[k] for k in kinds) / weight


def expected_session_ms(load_ms: float, first_prediction_ms: float, prediction_ms: float,
                        predictions_per_session: int) -> float:
    """load + first prediction + (n - 1) x warm prediction."""
    if predictions_per_session < 1:
        raise ValueError("predictions_per_session must be at least 1")
    return load_ms + first_prediction_ms + (predictions_per_session - 1) * prediction_ms


def break_even_predictions(a: UnitAssessment, b: UnitAssessment) -> float | None:
    """Predictions per session at which the expected session times of ``a`` and ``b`` are equal.

    Beyond it the unit with the faster warm prediction wins; below it the one with the cheaper load and first
    prediction. None when the lines never cross at n >= 1 (one unit is faster for every workload) or a time is
    missing. Real-valued: the chart marks the crossing; the first whole number above it is the smallest session
    size at which the faster-predicting unit wins.
    """
    parts = (a.load_ms_median, a.first_prediction_ms_median, a.prediction_ms_median,
             b.load_ms_median, b.first_prediction_ms_median, b.prediction_ms_median)
    if any(p is None for p in parts):
        return None
    start_a = a.load_ms_median + a.first_prediction_ms_median
    start_b = b.load_ms_median + b.first_prediction_ms_median
    slope = a.prediction_ms_median - b.prediction_ms_median
    if slope == 0:
        return None
    n = 1 + (start_b - start_a) / slope
    return n if n >= 1 else None


def assess_units(evidence: Sequence[UnitEvidence], predictions_per_session: int, load_kind: str | None = None,
                 vetoed: Mapping[str, str] | None = None,
                 settings: PolicySettings = PolicySettings(),
                 sources: Mapping[str, str] | None = None) -> dict[str, UnitAssessment]:
    """Price and gate every configuration, keyed by its label. ``vetoed`` maps a label to the reason it is excluded
    whatever its evidence says (failures seen on the device itself). A configuration whose runs silently fell back
    to the CPU (``runs_on_cpu``) is out too: it is not the Neural Engine it names, and cpuOnly is that answer.
    ``sources``: whose runs each label's evidence is ("device" or "chip"; "device" where not named)."""
    if predictions_per_session < 1:
        raise ValueError("predictions_per_session must be at least 1")
    if load_kind is not None and load_kind not in LOAD_KINDS:
        raise ValueError(f"load_kind must be one of {', '.join(LOAD_KINDS)}")
    vetoed = vetoed or {}
    sources = sources or {}
    mix = load_mix(evidence)
    out = {}
    for unit in evidence:
        upper = wilson_interval(unit.failure_count, unit.runs, settings.confidence).high
        load = expected_load_ms(unit, mix, load_kind)
        session = None
        if None not in (load, unit.first_prediction_ms_median, unit.prediction_ms_median):
            session = expected_session_ms(load, unit.first_prediction_ms_median, unit.prediction_ms_median,
                                          predictions_per_session)
        if unit.label in vetoed:
            note = vetoed[unit.label]
        elif unit.runs_on_cpu:
            note = unit.runs_on_cpu
        elif unit.runs < settings.min_runs:
            note = f"{unit.runs} runs, fewer than {settings.min_runs}"
        elif unit.failure_rate > settings.max_failure_rate:
            note = (f"failure rate {unit.failure_rate:.1%} ({unit.failure_count} of {unit.runs}) "
                    f"above {settings.max_failure_rate:.1%}")
        elif session is None:
            missing = f"no {load_kind} load" if load is None and load_kind else "no successful timings"
            note = missing
        else:
            note = ""
        out[unit.label] = UnitAssessment(
            unit.compute_units, unit.runs, unit.failure_rate, upper, load, unit.first_prediction_ms_median,
            unit.prediction_ms_median, session, eligible=not note, note=note,
            source=sources.get(unit.label, "device"), failures=unit.failure_count,
            specialization_strategy=unit.specialization_strategy, reshape_frequency=unit.reshape_frequency,
            runs_on_cpu=unit.runs_on_cpu)
    return out


def _failure_vetoes(evidence: Sequence[UnitEvidence], level: str,
                    settings: PolicySettings) -> dict[str, str]:
    """Units whose observed failure rate at ``level`` is above the threshold, however few their runs.

    Without this a device whose 3 runs of ``all`` crashed twice would get ``all`` from its chip's clean record.
    """
    return {unit.label: (f"failure rate {unit.failure_rate:.1%} ({unit.failure_count} of {unit.runs} runs) "
                                 f"on this {level}, above {settings.max_failure_rate:.1%}")
            for unit in evidence if unit.runs and unit.failure_rate > settings.max_failure_rate}


def clean_runs_to_pass(failures: int, runs: int, max_failure_rate: float) -> int | None:
    """Failure-free runs to add so that ``failures`` in all runs is at most ``max_failure_rate`` (the gate is on the
    observed rate); None when the gate allows no failure at all."""
    if failures == 0:
        return 0
    if max_failure_rate <= 0:
        return None
    total = max(math.ceil(failures / max_failure_rate) - 1, runs)  # then step up past float rounding
    while failures / total > max_failure_rate:
        total += 1
    return total - runs


def what_would_change(assessed: Mapping[str, UnitAssessment], chosen: str, device: Sequence[UnitEvidence],
                      settings: PolicySettings = PolicySettings()) -> tuple[EvidenceNeeded, ...]:
    """The evidence that would decide the answer: for each unit the gates keep out although its own runs price a
    shorter session than the chosen unit's, how many more runs it needs to pass them. The gates stay as they are
    (they are the crash safety); this only says what to measure.

    A unit out on failures (on the device, whatever its runs, or at the level that judged it) needs clean runs until
    its observed failure rate is at most ``max_failure_rate``, and at least ``min_runs`` in all; a unit out on too
    few runs needs ``min_runs`` minus its runs. Units without a priced session (no successful timings) are left out:
    nothing says they would win. Fastest first.
    """
    mine = assessed.get(chosen)
    chosen_ms = mine.expected_session_ms if mine is not None else None
    on_device = {u.label: u for u in device}
    out = []
    for a in sorted(assessed.values(), key=lambda a: (a.expected_session_ms is None, a.expected_session_ms or 0)):
        if a.label == chosen or a.eligible or a.expected_session_ms is None or a.runs_on_cpu:
            continue
        if chosen_ms is not None and a.expected_session_ms >= chosen_ms:
            continue
        speedup = chosen_ms / a.expected_session_ms if chosen_ms and a.expected_session_ms > 0 else None
        own = on_device.get(a.label)
        if own is not None and own.runs and own.failure_rate > settings.max_failure_rate:
            failures, runs, level = own.failure_count, own.runs, "device"
        elif a.runs and a.failures / a.runs > settings.max_failure_rate:
            failures, runs, level = a.failures, a.runs, a.source
        elif a.runs < settings.min_runs:
            out.append(EvidenceNeeded(a.compute_units, chosen, settings.min_runs - a.runs, False, a.source, a.runs,
                                      a.failures, speedup, max_failure_rate=settings.max_failure_rate,
                                      label=_own_label(a)))
            continue
        else:
            continue
        more = clean_runs_to_pass(failures, runs, settings.max_failure_rate)
        if more is not None:
            more = max(more, settings.min_runs - runs, 1)
        low = wilson_interval(failures, runs, settings.confidence).low
        out.append(EvidenceNeeded(a.compute_units, chosen, more, True, level, runs, failures, speedup, low,
                                  settings.max_failure_rate, settings.confidence, _own_label(a)))
    return tuple(out)


def _own_label(a: UnitAssessment) -> str:
    return a.label if a.label != a.compute_units else ""


def _chain(chosen: Configuration, ranked: Sequence[Configuration],
           settings: PolicySettings) -> tuple[list[str], tuple[Configuration, ...]]:
    """The other eligible configurations by expected time, then the final fallback (cpuOnly with default hints),
    which always ends the chain; and the same chain as unit names (each once, the chosen unit left out: an app
    that sets no hints retries a unit only under another unit)."""
    final = Configuration(settings.final_fallback)
    chain = [c for c in ranked if c not in (chosen, final)]
    if chosen != final:
        chain.append(final)
    units = []
    for c in chain:
        if c.compute_units != chosen.compute_units and c.compute_units not in units:
            units.append(c.compute_units)
    if chosen.compute_units != settings.final_fallback and units[-1:] != [settings.final_fallback]:
        units = [u for u in units if u != settings.final_fallback] + [settings.final_fallback]
    return units, tuple(chain)


def _evidence_per_unit(device: Sequence[UnitEvidence], chip: Sequence[UnitEvidence],
                       settings: PolicySettings) -> tuple[list[UnitEvidence], dict[str, str]]:
    """For each configuration, the device's evidence if it has enough runs (or the chip has none), else the chip's.

    Per configuration, not per level: a device measured at length on the Neural Engine but only 9 times on the GPU
    must not lose the GPU from the comparison (for a one-step diffusion session the GPU's fast load is the right
    answer). Ordered by unit, then hints (Apple's defaults first).
    """
    on_device = {u.label: u for u in device}
    on_chip = {u.label: u for u in chip}
    chosen, sources = [], {}
    for name in sorted({*on_device, *on_chip}, key=lambda label: _order((on_device.get(label) or on_chip[label]))):
        mine, shared = on_device.get(name), on_chip.get(name)
        if mine and (mine.runs >= settings.min_runs or not shared or shared.runs <= mine.runs):
            chosen.append(mine)
            sources[name] = "device"
        elif shared:
            chosen.append(shared)
            sources[name] = "chip"
    return chosen, sources


def judged_on_chip(device: Sequence[UnitEvidence], chip: Sequence[UnitEvidence],
                   settings: PolicySettings) -> list[UnitEvidence]:
    """The chip's evidence that :func:`recommend_compute_units` judges a device by: the configurations the device has
    too few runs of, or none. Only these need the chip's checks (a silent fallback to the CPU, say)."""
    chosen, sources = _evidence_per_unit(device, chip, settings)
    return [e for e in chosen if sources[e.label] == "chip"]


def _order(unit: UnitEvidence) -> tuple:
    return (COMPUTE_UNITS.index(unit.compute_units), SPECIALIZATION_STRATEGIES.index(unit.specialization_strategy),
            RESHAPE_FREQUENCIES.index(unit.reshape_frequency))


def recommend_compute_units(device: Sequence[UnitEvidence], chip: Sequence[UnitEvidence],
                            predictions_per_session: int, load_kind: str | None = None,
                            settings: PolicySettings = PolicySettings()) -> Policy:
    """The policy for one device from its own runs, backed off to its chip's runs, then to a conservative default.

    ``chip`` is the evidence of all devices with the device's chip (the device's own runs may be included). Each unit
    is judged on the device's runs when it has at least ``min_runs`` there, else on the chip's. Among eligible units
    (enough runs, observed failure rate at most the threshold) the shortest expected session wins. ``basis`` is
    ``device`` when every eligible unit (the final fallback aside) was judged on the device, ``chip`` when any leaned
    on the chip, ``default`` when none was eligible. A unit that failed too often on the device is excluded whatever
    its chip shows.
    """
    vetoes = _failure_vetoes(device, "device", settings)
    evidence, sources = _evidence_per_unit(device, chip, settings)
    assessed = assess_units(evidence, predictions_per_session, load_kind, vetoes, settings, sources)
    workload = f"{predictions_per_session} prediction{'s' if predictions_per_session != 1 else ''} per session"
    gate = (f"at least {settings.min_runs} runs and an observed failure rate of at most "
            f"{settings.max_failure_rate:.1%}")
    on_cpu = [a.label for a in assessed.values() if a.runs_on_cpu]
    silent = (f"; left out: {', '.join(on_cpu)} (its runs show it runs on the CPU, not the Neural Engine)"
              if on_cpu else "")
    final = Configuration(settings.final_fallback)
    ranked = sorted((a for a in assessed.values() if a.eligible),  # on a tie the final fallback goes last
                    key=lambda a: (a.expected_session_ms, a.configuration == final,
                                   a.compute_units == final.compute_units, a.configuration))
    if ranked:
        chosen = ranked[0].configuration
        from_chip = [a.label for a in ranked if a.source == "chip" and a.configuration != final]
        basis = "chip" if from_chip else "device"
        where = "this device" if not from_chip else (
            f"devices with the same chip for {', '.join(from_chip)} (too few runs on this device)")
        what = "configurations (units and hints)" if any(a.configuration.hints for a in assessed.values()) else "units"
        reason = f"fastest expected session for {workload} among {what} with {gate}, measured on {where}{silent}"
        units, chain = _chain(chosen, [a.configuration for a in ranked], settings)
        return Policy(chosen.compute_units, units, basis, reason, assessed,
                      what_would_change(assessed, chosen.label, device, settings), chosen, chain)
    default = settings.default_compute_units
    reason = (f"too little data: no unit has {gate} on this device or its chip; "
              f"{default} is the conservative default (no Neural Engine compile){silent}")
    failing = {**_failure_vetoes(chip, "chip", settings), **vetoes}
    if default in failing:
        reason = (f"too little data, and the default {default} has a {failing[default]}; falling back to "
                  f"{settings.final_fallback}{silent}")
        default = settings.final_fallback
    units, chain = _chain(Configuration(default), [], settings)
    return Policy(default, units, "default", reason, assessed,
                  what_would_change(assessed, default, device, settings), Configuration(default), chain)
