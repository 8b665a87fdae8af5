"""Fixtures of the alert tests: hand-made series through the upload path, alerts made directly, the simulated fleet
loaded once per module, members of two projects."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from alerts.models import Alert, fingerprint
from benchmarks.fleet import generate
from collector.bulk import bulk_load
from collector.models import Device, Project

FLEET_SLUG = "alerts-fleet"
# A 6,000-run draw of the simulator without segmenter-lite (one version: no version boundary to test): ~4,200 runs,
# about 10 s to load on SQLite. Seeds 7, 8 and 9 all give exactly the ground truth's alerts (checked by hand).
FLEET_DRAW, FLEET_SEED = 6000, 7


def fleet_runs():
    return (r for r in generate(FLEET_DRAW, FLEET_SEED) if r["model"]["name"] != "segmenter-lite")


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker):
    """The fleet slice in its own project, committed once for the module and deleted after it."""
    with django_db_blocker.unblock():
        Project.objects.filter(slug=FLEET_SLUG).delete()
        bulk_load(FLEET_SLUG, fleet_runs())
        project = Project.objects.get(slug=FLEET_SLUG)
        try:
            yield project
        finally:
            project.delete()


@pytest.fixture
def step_runs(make_run):
    """Runs (wire format) of versions in order, ``n`` each, on one device and unit, warm predictions of
    ``base_ms * factor`` with 6% run-to-run noise; ``crash_rates`` per version (default none)."""

    def make(factors: dict, n=20, *, model="face-retouch", device="iPhone15,2", compute_units="all", base_ms=12.0,
             crash_rates=None, os_version="18.1.1", plans=None, seed=1):
        rng = np.random.default_rng(seed)
        start = datetime(2026, 11, 1, tzinfo=timezone.utc)
        runs, k = [], 0
        for version, factor in factors.items():
            for i in range(n):
                k += 1
                level = base_ms * factor * float(np.exp(rng.normal(0, 0.06)))
                run = make_run(
                    model={"name": model, "version": version, "format": "mlprogram", "precision": "fp16",
                           "size_bytes": 1000},
                    device={"identifier": device, "os_version": os_version}, compute_units=compute_units,
                    started_at=(start + timedelta(hours=k)).isoformat().replace("+00:00", "Z"),
                    predictions_ms=[round(level * float(np.exp(rng.normal(0, 0.02))), 3) for _ in range(10)],
                    timings_ms={"load": 100.0, "first_prediction": round(level * 4, 3)})
                run["compute_plan"] = (plans or {}).get(version, run["compute_plan"])
                if crash_rates and i < round(n * crash_rates.get(version, 0)):
                    run.update(status="crash", failure={"stage": "load", "message": "boom"}, predictions_ms=[],
                               timings_ms={"load": None, "first_prediction": None})
                runs.append(run)
        return runs

    return make


@pytest.fixture
def make_alert(project):
    """An alert stored directly (the API and triage tests do not need a check to make it)."""
    counter = iter(range(1, 10_000))

    def make(project=project, **fields):
        values = dict(kind="slowdown", model="face-retouch", version="3.3.0", baseline_version="3.2.0",
                      chip="A16 Bionic", compute_units="cpuAndNeuralEngine", metric="prediction_ms_median",
                      baseline=12.1, current=14.0, change=0.157, p_value=0.0004, runs_baseline=120, runs_current=64)
        values.update(fields)
        device = values.pop("device", "iPhone15,2")
        values["device"] = Device.objects.get(identifier=device) if device else None
        key = fingerprint(values["kind"], values["model"], values["version"], values["chip"],
                          values["compute_units"], f"{values['metric']}#{next(counter)}")
        return Alert.objects.create(project=project, fingerprint=key, **values)

    return make


@pytest.fixture
def other_project(db):
    return Project.objects.create(slug="globex", name="Globex")


@pytest.fixture
def member(project):
    user = get_user_model().objects.create_user("ana", password="pw")
    project.members.add(user)
    return user


@pytest.fixture
def outsider(other_project):
    user = get_user_model().objects.create_user("eve", password="pw")
    other_project.members.add(user)
    return user


@pytest.fixture
def add_runs(project):
    """Store hand-made runs (dicts of the wire format) in the "acme" project of tests/conftest.py."""

    def add(runs, slug=None):
        return bulk_load(slug or project.slug, runs)

    return add
