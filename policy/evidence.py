"""Evidence for the compute-unit policy, aggregated in the database, and the policies computed from it.

This is the bridge between ``collector`` (the runs) and ``insights.policy`` (the pure statistics): it reads the
evidence query (``collector.evidence.gather``: runs, failures per status, and medians of the load per load kind,
the first and the warm prediction, from successful runs only) per (device or chip, compute units), turns its rows
into :class:`insights.policy.UnitEvidence`, and calls :func:`insights.policy.recommend_compute_units`. The
dashboard's pages and GET /api/v1/stats read the same query, so they cannot disagree with the policy.

Evidence is per configuration (compute units and optimization hints: ``insights.vocabulary.Configuration``), and
each Neural Engine configuration is checked for a silent fallback to the CPU (``insights.fallback``: its warm
predictions against cpuOnly's at the same level, and its compute plans); a marked configuration is never chosen.

Query budget: evidence for one level (a device, or all devices of a chip) is one read of sketch rows whatever the
number of runs (of runs when a filter is not a row key: ``collector.evidence``), and a device's policy reads the
silent-fallback samples once for both levels (when a Neural Engine unit has runs: sketch rows again, and the runs
that uploaded a compute plan); a whole table (every device of a model version) is two (one per level), the samples
once, plus the device list.
"""
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.db.models import Count, Q

from collector.evidence import gather_each, gather_values
from collector.models import Device, ModelVersion, Run
from collector.sketches import shared_reads
from insights.fallback import Fallback, assess
from insights.policy import Policy, UnitEvidence, judged_on_chip, recommend_compute_units
from insights.settings import DetectionSettings, PolicySettings
from insights.vocabulary import (COMPUTE_UNITS, LOAD_METRICS, NEURAL_ENGINE_UNITS, RESHAPE_FREQUENCIES,
                                 SPECIALIZATION_STRATEGIES, Configuration)
from insights.weighted import Weighted
from perfboard.conf import detection_settings, perfboard_setting, policy_settings

# What the policy prices a session with: every load kind's load, the first prediction, the warm prediction.
POLICY_METRICS = (*(m.key for m in LOAD_METRICS.values()), "first_prediction", "prediction")


# --- settings ---------------------------------------------------------------------------------------------------

def default_predictions_per_session() -> int:
    """The workload priced when a request names none (PERFBOARD POLICY_PREDICTIONS_PER_SESSION); the thresholds are
    perfboard.conf.policy_settings()."""
    return int(perfboard_setting("POLICY_PREDICTIONS_PER_SESSION"))


# --- evidence ---------------------------------------------------------------------------------------------------

HINTS = ("specialization_strategy", "reshape_frequency")


def gather_evidence(runs, by: str, units: Iterable[str] = COMPUTE_UNITS,
                    detection: DetectionSettings | None = None,
                    samples: "FallbackSamples | None" = None) -> dict[object, list[UnitEvidence]]:
    """Per device pk (``by="device"``) or chip (``by="chip"``), the evidence of each configuration (compute units
    and optimization hints) with runs, marked where its runs silently fell back to the CPU (:func:`fallbacks`).

    The evidence query (``collector.evidence.gather``), as the dashboard's pages and GET /api/v1/stats read it,
    grouped by configuration too: runs of different hints are never pooled. Runs are counted whatever their status;
    failures per status (crash, oom, error, timeout); load medians per load kind, first-prediction and
    warm-prediction medians from successful runs only (a warm median is the median over runs of each run's own
    median prediction). When a Neural Engine unit has runs, one more query reads :func:`fallback_samples` (unless
    the caller read them already: ``samples``, of these runs or more).
    """
    if samples is None:
        samples = _lazy(lambda: fallback_samples(runs))
    return marked(_unmarked(_evidence_each(runs, (by,), units)[by]), samples, by, detection)


def _evidence_each(runs, levels: Sequence[str], units: Iterable[str]) -> dict[str, dict[object, list]]:
    """Per level of ``levels`` ("device", "chip") of the same runs, per device pk or chip, the evidence query's rows of
    each configuration in the policy's order (``collector.evidence.Evidence``: its medians computed when first
    read): one read of the sketch rows for all levels (``collector.evidence.gather_each``)."""
    units = list(units)
    # The units kept from the groups, not filtered in the read: a page's other questions read the same rows
    # (collector.sketches.shared_reads).
    per_level = [[e for e in evidence if e.group[1] in units]
                 for evidence in gather_each(runs, [(level, "compute_units", *HINTS) for level in levels],
                                             POLICY_METRICS)]
    order = lambda e: (COMPUTE_UNITS.index(e.group[1]), SPECIALIZATION_STRATEGIES.index(e.group[2]),  # noqa: E731
                       RESHAPE_FREQUENCIES.index(e.group[3]))
    out = {}
    for level, evidence in zip(levels, per_level):
        by_level = defaultdict(list)
        for e in sorted(evidence, key=order):
            by_level[e.group[0]].append(e)
        out[level] = dict(by_level)
    return out


def _unmarked(per_key: dict[object, list]) -> dict[object, list[UnitEvidence]]:
    """:func:`_evidence_each`'s rows of a level as ``insights.policy`` evidence, before the silent-fallback marks
    (:func:`marked` adds them)."""
    return {key: [_unit_evidence(e) for e in evidence] for key, evidence in per_key.items()}


def _unit_evidence(e, medians: bool = True) -> UnitEvidence:
    """A configuration's row of the evidence query as ``insights.policy`` evidence; without its medians (its counts
    alone) where ``medians`` is False."""
    if not medians:
        return unit_evidence(e.group[1], e.runs, e.failures, {}, {}, *e.group[2:])
    return unit_evidence(e.group[1], e.runs, e.failures, {k: t.median for k, t in e.metrics.items()},
                         {k: t.n for k, t in e.metrics.items()}, *e.group[2:])


def marked(evidence: dict[object, list[UnitEvidence]], samples: "FallbackSamples", level: str,
           detection: DetectionSettings | None = None, only: set | None = None) -> dict[object, list[UnitEvidence]]:
    """``evidence`` of a level (device pk or chip -> its configurations' evidence) with each Neural Engine
    configuration whose runs ran on the CPU marked (:func:`fallbacks`); ``only``: assess just these (level,
    configuration) pairs, the others left unmarked (evidence no policy reads)."""
    if only is not None and not only or not any(e.compute_units in NEURAL_ENGINE_UNITS
                                                for configurations in evidence.values() for e in configurations):
        return evidence
    marks = fallbacks(samples, level, detection, only)
    if not marks:
        return evidence
    return {key: [replace(e, runs_on_cpu=marks[key, e.configuration].text) if (key, e.configuration) in marks else e
                  for e in configurations] for key, configurations in evidence.items()}


@dataclass(frozen=True)
class FallbackSamples:
    """What the silent-fallback check reads of some runs, per (device pk, chip, compute units, specialization
    strategy, reshape frequency) of a Neural Engine unit or cpuOnly: ``times``, the warm medians of its successful
    runs (``collector.evidence.gather_values``: from the sketch rows, exact up to about 200 runs, else within the
    sketches' rank error); ``plans``, per run of a Neural Engine unit that uploaded a compute plan, (ops on the
    Neural Engine, ops on the CPU)."""

    times: dict[tuple, Weighted]
    plans: dict[tuple, list[tuple[int, int]]]
    # (level, detection settings) -> fallbacks(): a page marks rows and picks policies from the same samples.
    assessed: dict = field(default_factory=dict, compare=False, repr=False)


def fallback_samples(runs) -> FallbackSamples:
    """:class:`FallbackSamples` of ``runs``, for both levels (device and chip) at once: the warm medians (sketch rows
    merged per device and configuration) and the plans (one query over the runs that uploaded one)."""
    compared = {*NEURAL_ENGINE_UNITS, "cpuOnly"}  # kept from the groups, as in _evidence_each
    times = {group: values for group, values in
             gather_values(runs, ("device", "chip", "compute_units", *HINTS), "prediction").items()
             if group[2] in compared}
    plans = defaultdict(list)
    rows = (runs.filter(has_compute_plan=True, compute_units__in=NEURAL_ENGINE_UNITS)
            .order_by().values("id", "device_id", "device__chip", "compute_units", *HINTS)
            .annotate(on_ne=Count("compute_plan", filter=Q(compute_plan__device="neural_engine")),
                      on_cpu=Count("compute_plan", filter=Q(compute_plan__device="cpu"))))
    for r in rows:
        plans[r["device_id"], r["device__chip"], r["compute_units"], *(r[h] for h in HINTS)].append(
            (r["on_ne"], r["on_cpu"]))
    return FallbackSamples(times, dict(plans))


def fallbacks(samples: FallbackSamples, by: str, detection: DetectionSettings | None = None,
              only: set | None = None) -> dict[tuple, Fallback]:
    """(device pk or chip, configuration) -> its silent-fallback assessment (``insights.fallback``) from
    :func:`fallback_samples`: a Neural Engine configuration's warm medians against cpuOnly's (any hints) at the same
    level, and its plans. Only marked configurations are returned; computed once per samples and level. ``only``:
    just these (level, configuration) pairs (not kept: a level's whole answer is)."""
    detection = detection or detection_settings()
    whole = samples.assessed.get((by, detection))
    if whole is not None:
        return whole if only is None else {key: f for key, f in whole.items() if key in only}
    if only is not None:
        return _assessed(samples, by, detection, only)
    samples.assessed[by, detection] = _assessed(samples, by, detection)
    return samples.assessed[by, detection]


def _assessed(samples: FallbackSamples, by: str, detection: DetectionSettings,
              only: set | None = None) -> dict[tuple, Fallback]:
    times, plans = defaultdict(list), defaultdict(list)
    for (device, chip, units, strategy, reshape), values in samples.times.items():
        level = device if by == "device" else chip
        config = Configuration("cpuOnly") if units == "cpuOnly" else Configuration(units, strategy, reshape)
        times[level, config].append(values)
    for (device, chip, units, strategy, reshape), placed in samples.plans.items():
        level = device if by == "device" else chip
        plans[level, Configuration(units, strategy, reshape)] += [on_cpu > 0 and on_ne == 0
                                                                   for on_ne, on_cpu in placed if on_ne + on_cpu]
    joined = {}  # a cpuOnly sample serves every NE unit: joined once, when first compared

    def sample(key):
        if key not in joined:
            joined[key] = _joined(times.get(key, ()))
        return joined[key]

    cpu_only = Configuration("cpuOnly")
    out = {}
    for level, config in {*times, *plans}:
        if config.compute_units not in NEURAL_ENGINE_UNITS or (only is not None and (level, config) not in only):
            continue
        result = assess(config.compute_units, sample((level, config)), sample((level, cpu_only)),
                        plans.get((level, config), []), detection)
        if result.on_cpu:
            out[level, config] = result
    return out


def _joined(samples) -> Weighted:
    return Weighted.joined(samples or ())


def unit_evidence(compute_units, runs, failures, medians, counts,
                  specialization_strategy: str = SPECIALIZATION_STRATEGIES[0],
                  reshape_frequency: str = RESHAPE_FREQUENCIES[0], runs_on_cpu: str = "") -> UnitEvidence:
    """``insights.policy`` evidence of one configuration from its counts and its medians and timed runs by metric
    key (of the evidence query)."""
    return UnitEvidence(
        compute_units=compute_units, runs=runs, failures=dict(failures),
        load_ms_median={kind: medians[m.key] for kind, m in LOAD_METRICS.items() if medians.get(m.key) is not None},
        load_runs={kind: counts[m.key] for kind, m in LOAD_METRICS.items() if counts.get(m.key)},
        first_prediction_ms_median=medians.get("first_prediction"),
        prediction_ms_median=medians.get("prediction"),
        specialization_strategy=specialization_strategy, reshape_frequency=reshape_frequency,
        runs_on_cpu=runs_on_cpu,
    )


def runs_of(model_version: ModelVersion, os_major: int | None = None):
    runs = Run.objects.filter(model_version=model_version)
    return runs if os_major is None else runs.filter(os_major=os_major)


# --- policies ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DevicePolicy:
    """A device (None when the identifier is not known at all), its policy, and the OS scope of the evidence."""

    identifier: str
    device: Device | None
    policy: Policy
    os_scope: str  # "all", or the OS major version the evidence was restricted to

    @property
    def chip(self) -> str:
        return self.device.chip if self.device else ""

    @property
    def name(self) -> str:
        return self.device.display_name if self.device else f"{self.identifier} (unknown)"


def policy_for_device(model_version: ModelVersion, identifier: str, predictions_per_session: int,
                      load_kind: str | None = None, os_major: int | None = None,
                      units: Iterable[str] = COMPUTE_UNITS, conf: PolicySettings | None = None) -> DevicePolicy:
    """The policy of one device identifier (two aggregate queries, four when an OS restriction finds nothing).

    An identifier Perfboard has never seen has no device and no chip evidence: the default, ``basis: default``.
    With ``os_major`` the evidence is first restricted to runs on that OS major version (the on-device compiler
    changes with it); if that leaves no eligible unit on the device or its chip, the policy is taken from all OS
    versions, and ``os_scope`` says so.
    """
    conf = conf or policy_settings()
    units = list(units)
    device = Device.objects.filter(identifier=identifier).first()
    scopes = [os_major, None] if os_major is not None else [None]
    policy = None
    for scope in scopes:
        device_evidence, chip_evidence = [], []
        if device is not None:
            runs = runs_of(model_version, scope)
            level = runs.filter(device__chip=device.chip) if device.chip else runs.filter(device=device)
            samples = _lazy(lambda: fallback_samples(level))  # read once, for the device and its chip
            device_evidence = gather_evidence(runs.filter(device=device), "device", units,
                                              samples=samples).get(device.pk, [])
            if device.chip:
                chip_evidence = gather_evidence(runs.filter(device__chip=device.chip), "chip", units,
                                                samples=samples).get(device.chip, [])
        policy = recommend_compute_units(device_evidence, chip_evidence, predictions_per_session, load_kind, conf)
        if policy.basis != "default":
            return DevicePolicy(identifier, device, policy, "all" if scope is None else str(scope))
    if os_major is not None and device is not None:
        policy = _with_reason(policy, f"{policy.reason} (no usable runs on iOS {os_major}; all OS versions were "
                                      f"considered)")
    return DevicePolicy(identifier, device, policy, "all")


def _with_reason(policy: Policy, reason: str) -> Policy:
    return replace(policy, reason=reason)


@shared_reads()  # the evidence of both levels and the fallback samples read the same rows
def policy_table(model_version: ModelVersion, predictions_per_session: int, load_kind: str | None = None,
                 devices: str = "catalogue", units: Iterable[str] = COMPUTE_UNITS,
                 conf: PolicySettings | None = None, runs=None,
                 samples: FallbackSamples | None = None) -> list[DevicePolicy]:
    """The policy of every device, ordered by chip generation then name (three queries in all).

    ``devices="catalogue"``: every device of the catalogue (known identifiers), plus unknown identifiers that have
    runs of this model version; devices without runs of their own get their chip's policy or the default, which is
    what an app shipping the table needs. ``devices="measured"``: only devices with runs of this model version.
    ``runs``: the runs to judge on, when not all of the version's (the dashboard narrows them by source, OS, dates);
    ``samples``: their :func:`fallback_samples`, when the caller has them.
    """
    conf = conf or policy_settings()
    units = list(units)
    runs = runs_of(model_version) if runs is None else runs.filter(model_version=model_version)
    if samples is None:
        samples = _lazy(lambda: fallback_samples(runs))
    levels = _evidence_each(runs, ("device", "chip"), units)  # one read for both levels
    per_device = marked(_unmarked(levels["device"]), samples, "device")
    measured = Q(pk__in=list(per_device))
    rows = Device.objects.filter(measured | Q(known=True) if devices == "catalogue" else measured)
    rows = sorted(rows, key=lambda d: (d.chip_rank is None, d.chip_rank or 0, d.name or d.identifier, d.identifier))
    # A chip's configuration is judged for the devices that lean on it only (too few runs of their own): only those
    # are checked for a silent fallback (a device-rows overview at 1M runs: ~14 ms of chip checks, mostly unread),
    # and only their medians are merged and read, since recommend_compute_units reads no other (the rest give their
    # counts, which its default reads for failures).
    counted = {chip: [_unit_evidence(e, medians=False) for e in evidence]
               for chip, evidence in levels["chip"].items() if chip}
    leaned = {(device.chip, e.configuration) for device in rows if device.chip in counted
              for e in judged_on_chip(per_device.get(device.pk, []), counted[device.chip], conf)}
    per_chip = {chip: [_unit_evidence(e) if (chip, count.configuration) in leaned else count
                       for e, count in zip(levels["chip"][chip], counts)] for chip, counts in counted.items()}
    per_chip = marked(per_chip, samples, "chip", only=leaned)
    table = []
    for device in rows:
        chip_evidence = per_chip.get(device.chip, []) if device.chip else []
        policy = recommend_compute_units(per_device.get(device.pk, []), chip_evidence, predictions_per_session,
                                         load_kind, conf)
        table.append(DevicePolicy(device.identifier, device, policy, "all"))
    return table


class _lazy:
    """:func:`fallback_samples` of a scope, queried only if some level needs them (on first attribute read)."""

    def __init__(self, read):
        self._read = read
        self._value = None

    def __getattr__(self, name):  # only for the samples' own attributes
        if self._value is None:
            self._value = self._read()
        return getattr(self._value, name)


def default_policy(predictions_per_session: int, conf: PolicySettings | None = None) -> Policy:
    """What an app should use on an identifier missing from an exported table."""
    return recommend_compute_units([], [], predictions_per_session, None, conf or policy_settings())
