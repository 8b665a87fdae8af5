"""The check on the simulated fleet (benchmarks/fleet.py), whose injected regressions are known."""
import random
from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts import streams
from alerts.check import RUN_COLUMNS, _fingerprint, check_project
from alerts.streams import HINT_COLUMNS
from alerts.models import Alert, CheckState
from benchmarks.fleet import GROUND_TRUTH
from collector.bulk import bulk_load
from collector.models import Run
from insights.regressions import find_regressions
from insights.vocabulary import version_key
from perfboard.conf import detection_settings

pytestmark = pytest.mark.django_db

SLOW, CRASH = GROUND_TRUTH["slowdown"], GROUND_TRUTH["crash"]
# The slowdown is in warm predictions (and so in the first prediction); loads and memory did not change.
SLOW_METRICS = {"prediction_ms_median", "prediction_ms_p90", "first_prediction_ms"}


def summary(project):
    return {(a.kind, a.model, a.version, a.baseline_version, a.chip) for a in Alert.objects.filter(project=project)}


def test_fleet_yields_the_injected_slowdown_and_crashes_and_nothing_else(fleet):
    result = check_project(fleet)
    assert len(result.created) == result.findings > 0
    assert summary(fleet) == {
        ("slowdown", SLOW["model"], SLOW["version"], SLOW["baseline_version"], SLOW["chip"]),
        ("crash_rate", CRASH["model"], CRASH["from_version"], "3.1.0", CRASH["chip"]),
    }
    alerts = Alert.objects.filter(project=fleet)
    slow = alerts.filter(kind="slowdown")
    assert {a.metric for a in slow} <= SLOW_METRICS and "prediction_ms_median" in {a.metric for a in slow}
    for a in slow:
        # p: the unit's own test, or for a step all compute units share, the larger of the shared and the unit's
        assert 0.07 < a.change < 0.3 and a.p_value < 0.01 and a.runs_baseline >= 4 and a.runs_current >= 4
        assert len(a.baseline_run_ids) == a.runs_baseline and len(a.current_run_ids) == a.runs_current
    crashes = alerts.filter(kind="crash_rate")
    assert {a.compute_units for a in crashes} == set(CRASH["compute_units"])
    for a in crashes:
        assert a.baseline < 0.02 and 0.15 < a.current < 0.5 and a.metric == "crash_rate"
    # Evidence runs are the alert's own series: the right chip, from the crashing version on (the later versions
    # crash too and confirm the new rate), none from before it.
    current = Run.objects.filter(id__in=crashes[0].current_run_ids)
    assert {chip for _, chip in current.values_list("model_version__version", "device__chip")} == {CRASH["chip"]}
    versions = set(current.values_list("model_version__version", flat=True))
    assert CRASH["from_version"] in versions and all(version_key(v) >= version_key(CRASH["from_version"])
                                                     for v in versions)


def test_check_twice_gives_the_same_alerts(fleet):
    first = check_project(fleet)
    ids = set(Alert.objects.filter(project=fleet).values_list("id", flat=True))
    second = check_project(fleet)
    call_command("check_regressions", "--project", fleet.slug)
    call_command("check_regressions", "--model", "face-retouch", "--version", "3.3.0")
    assert second.created == [] and second.findings == first.findings
    assert set(Alert.objects.filter(project=fleet).values_list("id", flat=True)) == ids


def test_check_of_one_model_version_reports_that_version_only(fleet):
    result = check_project(fleet, model="face-retouch", version="3.3.0")
    assert result.created and summary(fleet) == {
        ("slowdown", SLOW["model"], SLOW["version"], SLOW["baseline_version"], SLOW["chip"])}
    assert CheckState.objects.get(project=fleet).received_watermark is None  # on demand: the schedule's untouched


def test_scheduled_check_reads_only_series_with_new_runs(fleet, make_run):
    long_ago = timezone.now() - timedelta(days=1)
    Run.objects.filter(project=fleet).update(received_at=long_ago)
    assert check_project(fleet).groups == 2  # face-retouch and style-diffusion, all their chips
    assert CheckState.objects.get(project=fleet).received_watermark == long_ago
    assert check_project(fleet).groups == 0  # nothing received since
    bulk_load(fleet.slug, [make_run(model={"name": "style-diffusion", "version": "1.1.0"})])
    again = check_project(fleet)
    assert again.groups == 1 and again.created == []  # one model, one chip (the A16 of iPhone15,2)


def test_streamed_check_finds_what_the_detector_finds_in_runs_of_any_order(fleet, monkeypatch):
    """The check streams each (model, chip) group as columns, ordered by version in the database and read in
    chunks (alerts.streams); the detector given the same runs as shuffled tuples sorts them itself. Both must make
    the same alerts with the same evidence."""
    monkeypatch.setattr(streams, "CHUNK", 97)  # many chunks a group: their seams are part of what is compared
    check_project(fleet)
    evidence = ("kind", "version", "baseline_version", "baseline", "current", "change", "p_value", "runs_baseline",
                "runs_current", "baseline_run_ids", "current_run_ids")
    stored = {a[0]: a[1:] for a in Alert.objects.filter(project=fleet, kind__in=["slowdown", "crash_rate"])
              .values_list("fingerprint", *evidence)}
    runs, expected = Run.objects.filter(project=fleet), {}
    for name in sorted(set(runs.values_list("model_version__name", flat=True))):
        by_hints: dict[tuple, list] = {}
        for row in runs.filter(model_version__name=name).values_list(*RUN_COLUMNS, *HINT_COLUMNS):
            by_hints.setdefault(row[-2:], []).append(row[:-2])
        for hints, rows in by_hints.items():
            random.Random(1).shuffle(rows)
            for f in find_regressions(name, rows, detection_settings()):
                f = replace(f, key=replace(f.key, **dict(zip(HINT_COLUMNS, hints))))
                expected.setdefault(_fingerprint(f), tuple(getattr(f, k) for k in evidence[:-2]) + (
                    f.baseline_run_ids, f.current_run_ids))
    assert len(stored) >= 2 and stored == expected
