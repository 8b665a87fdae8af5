"""Evidence for the compute-unit policy, aggregated in the database, and the policies computed from it.

This is the bridge between ``collector`` (the runs) and ``insights.policy`` (the pure statistics): it reads the
evidence query (``collector.evidence.gather``: runs, failures per status, and medians of the load per load kind,
the first and the warm prediction, from successful runs only) per (device or chip, compute units), turns its rows
into :class:`insights.policy.UnitEvidence`, and calls :func:`insights.policy.recommend_compute_units`. The
dashboard's pages, their rollups and GET /api/v1/stats read the same query, so they cannot disagree with the policy.

Query budget: evidence for one level (a device, or all devices of a chip) is one grouped query whatever the
number of runs; a whole table (every device of a model version) is two (one per level) plus the device list.
"""
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db.models import Q

from collector.evidence import gather
from collector.models import Device, ModelVersion, Run
from insights.policy import Policy, UnitEvidence, recommend_compute_units
from insights.settings import PolicySettings
from insights.vocabulary import COMPUTE_UNITS, LOAD_METRICS
from perfboard.conf import perfboard_setting, policy_settings

# What the policy prices a session with: every load kind's load, the first prediction, the warm prediction.
POLICY_METRICS = (*(m.key for m in LOAD_METRICS.values()), "first_prediction", "prediction")


# --- settings ---------------------------------------------------------------------------------------------------

def default_predictions_per_session() -> int:
    """The workload priced when a request names none (PERFBOARD POLICY_PREDICTIONS_PER_SESSION); the thresholds are
    perfboard.conf.policy_settings()."""
    return int(perfboard_setting("POLICY_PREDICTIONS_PER_SESSION"))


# --- evidence ---------------------------------------------------------------------------------------------------

def gather_evidence(runs, by: str, units: Iterable[str] = COMPUTE_UNITS) -> dict[object, list[UnitEvidence]]:
    """Per device pk (``by="device"``) or chip (``by="chip"``), the evidence of each compute unit with runs.

    One query: the evidence query (``collector.evidence.gather``), as the dashboard's pages and GET /api/v1/stats
    read it. Runs are counted whatever their status; failures per status (crash, oom, error, timeout); load medians
    per load kind, first-prediction and warm-prediction medians from successful runs only (a warm median is the
    median over runs of each run's own median prediction).
    """
    units = list(units)
    evidence = gather(runs.filter(compute_units__in=units), (by, "compute_units"), POLICY_METRICS)
    out = defaultdict(list)
    for e in sorted(evidence, key=lambda e: COMPUTE_UNITS.index(e.group[1])):
        out[e.group[0]].append(unit_evidence(e.group[1], e.runs, e.failures,
                                             {k: t.median for k, t in e.metrics.items()},
                                             {k: t.n for k, t in e.metrics.items()}))
    return dict(out)


def unit_evidence(compute_units, runs, failures, medians, counts) -> UnitEvidence:
    """``insights.policy`` evidence of one unit from its counts and its medians and timed runs by metric key (of
    the evidence query, or of the dashboard's stats and rollups: policy.marks)."""
    return UnitEvidence(
        compute_units=compute_units, runs=runs, failures=dict(failures),
        load_ms_median={kind: medians[m.key] for kind, m in LOAD_METRICS.items() if medians.get(m.key) is not None},
        load_runs={kind: counts[m.key] for kind, m in LOAD_METRICS.items() if counts.get(m.key)},
        first_prediction_ms_median=medians.get("first_prediction"),
        prediction_ms_median=medians.get("prediction"),
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
            device_evidence = gather_evidence(runs.filter(device=device), "device", units).get(device.pk, [])
            if device.chip:
                chip_evidence = gather_evidence(runs.filter(device__chip=device.chip), "chip",
                                                units).get(device.chip, [])
        policy = recommend_compute_units(device_evidence, chip_evidence, predictions_per_session, load_kind, conf)
        if policy.basis != "default":
            return DevicePolicy(identifier, device, policy, "all" if scope is None else str(scope))
    if os_major is not None and device is not None:
        policy = _with_reason(policy, f"{policy.reason} (no usable runs on iOS {os_major}; all OS versions were "
                                      f"considered)")
    return DevicePolicy(identifier, device, policy, "all")


def _with_reason(policy: Policy, reason: str) -> Policy:
    return replace(policy, reason=reason)


def policy_table(model_version: ModelVersion, predictions_per_session: int, load_kind: str | None = None,
                 devices: str = "catalogue", units: Iterable[str] = COMPUTE_UNITS,
                 conf: PolicySettings | None = None, runs=None) -> list[DevicePolicy]:
    """The policy of every device, ordered by chip generation then name (three queries in all).

    ``devices="catalogue"``: every device of the catalogue (known identifiers), plus unknown identifiers that have
    runs of this model version; devices without runs of their own get their chip's policy or the default, which is
    what an app shipping the table needs. ``devices="measured"``: only devices with runs of this model version.
    ``runs``: the runs to judge on, when not all of the version's (the dashboard narrows them by source, OS, dates).
    """
    conf = conf or policy_settings()
    units = list(units)
    runs = runs_of(model_version) if runs is None else runs.filter(model_version=model_version)
    per_device = gather_evidence(runs, "device", units)
    per_chip = gather_evidence(runs.exclude(device__chip=""), "chip", units)
    measured = Q(pk__in=list(per_device))
    rows = Device.objects.filter(measured | Q(known=True) if devices == "catalogue" else measured)
    rows = sorted(rows, key=lambda d: (d.chip_rank is None, d.chip_rank or 0, d.name or d.identifier, d.identifier))
    table = []
    for device in rows:
        chip_evidence = per_chip.get(device.chip, []) if device.chip else []
        policy = recommend_compute_units(per_device.get(device.pk, []), chip_evidence, predictions_per_session,
                                         load_kind, conf)
        table.append(DevicePolicy(device.identifier, device, policy, "all"))
    return table


def default_policy(predictions_per_session: int, conf: PolicySettings | None = None) -> Policy:
    """What an app should use on an identifier missing from an exported table."""
    return recommend_compute_units([], [], predictions_per_session, None, conf or policy_settings())
