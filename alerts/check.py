"""The regression check: stored runs -> :mod:`insights.regressions` -> alerts. Run hourly by Celery beat
(``alerts.tasks.check_regressions``), on demand by ``manage.py check_regressions`` or from the alerts page.

Reading is bounded: the runs as numpy columns (84 bytes a run), read and tested one (model, chip) group at a time,
in version order (:mod:`alerts.streams`), never model instances nor runs as tuples, and only for the chips that received
runs since the last check (the project's watermark on ``received_at``); compute plans are read for the newest plan
run of each (version, chip, units, OS) only.

Writing is idempotent (Treeherder's pattern): alerts are written in one transaction holding the project's
:class:`~alerts.models.CheckState` row (``select_for_update``), found by their unique fingerprint before being
created. A check run twice, or a worker killed and its task run again (acks late), finds the alerts it made and
creates nothing twice; the watermark only moves after the alerts are committed.
"""
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from collector.models import ComputePlanEntry, Device, ModelVersion, Project, Run
from insights.fallback import TimedRuns, find_silent_fallbacks
from insights.regressions import (COLUMNS, PLAN_COLUMNS, Finding, find_chip_regressions, find_placement_shifts,
                                  newest_plan_runs)
from insights.vocabulary import NEURAL_ENGINE_UNITS
from perfboard.conf import detection_settings

from .models import Alert, AlertSummary, CheckState, fingerprint
from .notify import notify_pending
from .streams import DEFAULT_HINTS, HINT_COLUMNS, read_groups

log = logging.getLogger(__name__)

# The database columns behind insights.regressions.COLUMNS (find_regressions' tuples) and PLAN_COLUMNS, derived
# from their names so the order cannot drift: the names the check reads are Run's own columns but for these three.
_ORM_NAMES = {"version": "model_version__version", "device": "device__identifier", "chip": "device__chip"}
RUN_COLUMNS = tuple(_ORM_NAMES.get(c, c) for c in COLUMNS)
PLAN_RUN_COLUMNS = tuple(_ORM_NAMES.get(c, c) for c in PLAN_COLUMNS)

# The watermark never passes the check's start minus this: a run stamped before a check read the table but committed
# after it (a slow upload transaction) is still read by the next check. Runs received within this time before a
# check are read again by the next one; that costs time only, alerts are idempotent.
WATERMARK_OVERLAP = timedelta(minutes=15)

@dataclass
class CheckResult:
    project: str
    groups: int = 0  # (model, chips) groups read
    findings: int = 0
    created: list[int] = field(default_factory=list)
    updated: int = 0
    withdrawn: int = 0
    error: str | None = None  # why this project's check failed; the other projects were still checked

    def as_dict(self) -> dict:
        return {"project": self.project, "groups": self.groups, "findings": self.findings,
                "created": len(self.created), "updated": self.updated, "withdrawn": self.withdrawn,
                "error": self.error}


def check_all(model: str | None = None, version: str | None = None) -> list[CheckResult]:
    """The scheduled check over every project (or, with model/version, that model version in every project).

    One project's failure is logged and reported in its result; it must not keep the projects after it unchecked.
    Its watermark stays where it was, so the next check reads its runs again."""
    results = []
    for project in Project.objects.order_by("id"):
        try:
            results.append(check_project(project, model, version))
        except Exception as exc:
            log.exception("regression check of project %s failed", project.slug)
            results.append(CheckResult(project.slug, error=f"{type(exc).__name__}: {exc}"))
    return results


def check_project(project: Project, model: str | None = None, version: str | None = None) -> CheckResult:
    """Check one project. Without ``model``: the series that received runs since the watermark, which then moves.
    With ``model`` (and optionally ``version``): every series of that model, alerts only at that version; the
    watermark is left alone."""
    result = CheckResult(project.slug)
    started = timezone.now()
    state, _ = CheckState.objects.get_or_create(project=project)
    CheckState.objects.filter(pk=state.pk).update(last_started_at=started)
    runs = Run.objects.filter(project=project)
    versions = [version] if version else None
    high = None
    if model:
        scope = runs.filter(model_version__name=model)
        if version:
            scope = scope.filter(model_version__version=version)
        groups, _ = _chips_by_model(scope)
    else:
        fresh = runs
        if state.received_watermark is not None:
            fresh = runs.filter(received_at__gt=state.received_watermark)
        groups, high = _chips_by_model(fresh)
    conf = detection_settings()
    findings: list[Finding] = []
    for name, chip_groups in read_groups(project, {name: sorted(chips) for name, chips in sorted(groups.items())}):
        of_model = runs.filter(model_version__name=name, device__chip__in=sorted(groups[name]))
        plans_on_cpu = _plans_on_cpu(of_model)
        for chip, group in chip_groups:
            # One set of series per configuration (compute units and hints): never pooled, so a version whose runs
            # set fastPrediction more often does not look faster or slower.
            for hints, columns in group.by_hints():
                found = find_chip_regressions(name, columns, conf, versions)
                if hints != DEFAULT_HINTS:
                    found = [replace(f, key=replace(f.key, **dict(zip(HINT_COLUMNS, hints)))) for f in found]
                findings += found
            findings += find_silent_fallbacks(name, TimedRuns.of_columns(group.columns),
                                              {k: v for k, v in plans_on_cpu.items() if k[0] == chip}, conf, versions)
        findings += find_placement_shifts(name, _plans(of_model), conf, versions)
        result.groups += 1
    result.findings = len(findings)
    # Every alert of these (model, chips) groups, at the versions checked, was just judged again on all their runs.
    scope = [(name, sorted(chips), versions) for name, chips in sorted(groups.items())]
    result.created, result.updated, result.withdrawn = save_findings(project, findings, scope)
    transaction.on_commit(lambda: notify_pending(project.id))  # new alerts, and any a killed check left unsent
    done = {"last_finished_at": timezone.now(), "last_alerts_created": len(result.created)}
    if high is not None:
        settled = min(high, started - WATERMARK_OVERLAP)
        if state.received_watermark is None or settled > state.received_watermark:
            done["received_watermark"] = settled
    CheckState.objects.filter(pk=state.pk).update(**done)
    log.info("regression check %s", result.as_dict())
    return result


def _chips_by_model(runs) -> tuple[dict[str, set[str]], datetime | None]:
    """(model name -> chips of ``runs``, the newest ``received_at`` of them), in one scan of the runs: distinct ids,
    then their names (distinct names joined and sorted every run: at 1M runs three times as long)."""
    newest = {(version, device): high for version, device, high in runs.order_by()
              .values("model_version_id", "device_id").annotate(high=Max("received_at"))
              .values_list("model_version_id", "device_id", "high")}
    names = dict(ModelVersion.objects.filter(id__in={v for v, _ in newest}).values_list("id", "name"))
    chips = dict(Device.objects.filter(id__in={d for _, d in newest}).values_list("id", "chip"))
    groups: dict[str, set[str]] = {}
    for version, device in newest:
        groups.setdefault(names[version], set()).add(chips[device])
    return groups, max(newest.values(), default=None)


def _plans(runs) -> dict[tuple, tuple[int, list[dict]]]:
    """(version, chip, compute units, os major) -> (run id, plan) of the newest run with a compute plan there."""
    newest = newest_plan_runs(runs.filter(has_compute_plan=True).values_list(*PLAN_RUN_COLUMNS))
    if not newest:
        return {}
    entries: dict[int, list[dict]] = {}
    for run_id, op, device, cost in (ComputePlanEntry.objects.filter(run_id__in=list(newest.values()))
                                     .order_by("run_id", "id").values_list("run_id", "op", "device",
                                                                           "estimated_cost")):
        entries.setdefault(run_id, []).append({"op": op, "device": device, "estimated_cost": cost})
    return {k: (run_id, entries.get(run_id, [])) for k, run_id in newest.items()}


def _plans_on_cpu(runs) -> dict[tuple, list[bool]]:
    """(chip, compute units, version) -> per uploaded plan of a Neural Engine unit, whether it places no op on the
    Neural Engine and some on the CPU (insights.fallback.plan_on_cpu). One query, counts per run."""
    out: dict[tuple, list[bool]] = {}
    for chip, units, version, on_ne, on_cpu in (
            runs.filter(has_compute_plan=True, compute_units__in=NEURAL_ENGINE_UNITS).order_by()
            .values("id", "device__chip", "compute_units", "model_version__version")
            .annotate(on_ne=Count("compute_plan", filter=Q(compute_plan__device="neural_engine")),
                      on_cpu=Count("compute_plan", filter=Q(compute_plan__device="cpu")))
            .values_list("device__chip", "compute_units", "model_version__version", "on_ne", "on_cpu")):
        out.setdefault((chip, units, version), []).append(on_cpu > 0 and on_ne == 0)
    return out


def _fingerprint(f: Finding) -> str:
    k = f.key
    return fingerprint(f.kind, k.model, f.version, k.chip, k.compute_units, k.metric, k.os_major,
                       k.baseline_os_major, k.hints)


def _evidence(f: Finding, devices: dict) -> dict:
    """What a later check may refresh: the numbers and the series that showed them."""
    return {"device_id": devices.get(f.key.device), "os_major": f.key.os_major,
            "baseline_os_major": f.key.baseline_os_major, "baseline_version": f.baseline_version,
            "baseline": f.baseline, "current": f.current, "change": f.change, "p_value": f.p_value,
            "runs_baseline": f.runs_baseline, "runs_current": f.runs_current, "ops": f.ops,
            "baseline_run_ids": f.baseline_run_ids, "current_run_ids": f.current_run_ids}


def save_findings(project: Project, findings: list[Finding],
                  scope: list[tuple[str, list[str], list[str] | None]] = ()) -> tuple[list[int], int, int]:
    """Create the alerts not stored yet, each in its model version's summary (made with the version's first alert,
    in the same transaction); refresh the evidence of stored ones still ``new``; withdraw the ``new`` alerts of
    ``scope`` that the findings no longer contain. Returns (ids of created alerts, number refreshed,
    number withdrawn). check_project then queues the created ones' notifications.

    ``scope`` lists the (model, chips, versions or None for all) whose runs the check read in full: an alert there
    that the check did not find again is one that more runs relocated (a step first placed a version off) or
    dissolved. Only ``new`` alerts are withdrawn: a state a person set stays theirs to change."""
    by_print: dict[str, Finding] = {}
    for f in findings:  # ordered coarse to fine: the first series that showed a regression describes it
        by_print.setdefault(_fingerprint(f), f)
    identifiers = {f.key.device for f in findings if f.key.device}
    devices = dict(Device.objects.filter(identifier__in=identifiers).values_list("identifier", "id"))
    new: list[Alert] = []
    updated = 0
    summaries: dict[tuple[str, str], AlertSummary] = {}
    now = timezone.now()
    with transaction.atomic():
        # One writer per project at a time: the second waits here, then finds the first one's alerts.
        CheckState.objects.select_for_update().get_or_create(project=project)
        stored = {a.fingerprint: a for a in
                  Alert.objects.select_for_update().filter(project=project, fingerprint__in=list(by_print))}
        for fp, f in by_print.items():
            evidence = _evidence(f, devices)
            alert = stored.get(fp)
            if alert is None:
                summary = summaries.get((f.key.model, f.version))
                if summary is None:  # the version's summary, made with its first alert (in this transaction)
                    summary = summaries[f.key.model, f.version] = AlertSummary.of(project.id, f.key.model,
                                                                                  f.version, now)
                new.append(Alert(
                    summary=summary, project=project, kind=f.kind, model=f.key.model, version=f.version,
                    chip=f.key.chip, compute_units=f.key.compute_units, metric=f.key.metric,
                    specialization_strategy=f.key.specialization_strategy, reshape_frequency=f.key.reshape_frequency,
                    load_kind=f.key.load_kind or "", fingerprint=fp, created_at=now, updated_at=now, **evidence))
            elif alert.withdrawn_at is not None or (
                    alert.state == "new" and any(getattr(alert, k) != v for k, v in evidence.items())):
                refresh = evidence if alert.state == "new" else {}
                if alert.withdrawal_notified_at is not None:
                    # the receiver was told it is gone: announce it again (an e-mail already sent is not resent)
                    refresh.update(notified_at=None, webhook_delivered_at=None)
                Alert.objects.filter(pk=alert.pk).update(updated_at=now, withdrawn_at=None, withdrawal_notified_at=None,
                                                         withdrawal_delivered_at=None, **refresh)
                updated += 1
        created = [a.id for a in Alert.objects.bulk_create(new)]  # one INSERT, not one a new alert
        withdrawn = 0
        for model, chips, versions in scope:
            gone = Alert.objects.filter(project=project, model=model, chip__in=chips, state="new",
                                        withdrawn_at__isnull=True).exclude(fingerprint__in=list(by_print))
            if versions is not None:
                gone = gone.filter(version__in=versions)
            withdrawn += gone.update(withdrawn_at=now, updated_at=now)
    return created, updated, withdrawn
