"""Shared fixtures: a project with tokens, an API client per token, and a valid run in the wire format."""
import copy
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from collector.models import Project, RunnerToken

RUN = {
    "run_id": "3f6c2a0e-5d1b-4b7e-9a51-0c7d3e1f2a90",
    "source": "lab",
    "model": {"name": "face-retouch", "version": "3.2.0", "sha256": "9b1d" + "0" * 60,
              "format": "mlprogram", "precision": "int8", "size_bytes": 48123456},
    "device": {"identifier": "iPhone15,2", "os_version": "18.1.1"},
    "app_build": "5.12.0 (1234)",
    "compute_units": "all",
    "variant": "in-memory-asset",
    "started_at": "2026-11-20T10:00:00Z",
    "status": "ok",
    "failure": None,
    "load_kind": "cold",
    "timings_ms": {"decrypt": 12.5, "compile": 850.0, "load": 1430.2, "first_prediction": 95.1},
    "predictions_ms": [12.1, 11.9, 12.4],
    "peak_memory_mb": 812.0,
    "thermal_state": "nominal",
    "compute_plan": [{"op": "conv_0", "type": "conv", "device": "neural_engine", "estimated_cost": 0.12}],
}


def pytest_collection_modifyitems(config, items):
    # Tests marked postgres_only need PostgreSQL's behaviour (COPY, real row locks); skip them on SQLite.
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)")
        for item in items:
            if "postgres_only" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL")
    config.addinivalue_line("markers", "celery_worker: needs a Celery broker (CELERY_BROKER_URL)")


@pytest.fixture
def make_run():
    """A valid run; keyword arguments replace top-level fields, and run_id is fresh unless given."""

    def make(**changes):
        run = copy.deepcopy(RUN)
        run["run_id"] = str(uuid.uuid4())
        run.update(changes)
        return run

    return make


@pytest.fixture
def project(db):
    return Project.objects.create(slug="acme", name="Acme")


@pytest.fixture
def runner_token(project):
    return RunnerToken.issue(project, "lab-mac-1")[1]


@pytest.fixture
def policy_token(project):
    return RunnerToken.issue(project, "app", RunnerToken.POLICY)[1]


@pytest.fixture
def client_for():
    def make(token=None):
        client = APIClient()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def runner(client_for, runner_token):
    return client_for(runner_token)


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (in a thread of this process) consuming the broker of CELERY_BROKER_URL.

    Skipped on the embedded default, where there is no broker and tasks run in-process. The worker's thread opens its
    own connection to the test database, so tests using it see committed rows only (transactional_db).
    """
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs a real broker: set CELERY_BROKER_URL (CI uses Redis)")
    from celery.contrib.testing.worker import start_worker

    from perfboard.celery import app

    app.conf.task_always_eager = False
    app.control.purge()  # messages left by an earlier, killed run must not run against this test's database
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app


@pytest.fixture
def browser_page(monkeypatch):
    """A page in headless Chromium at 1440x900 (tests/browser.py); ``page.errors`` lists its JavaScript errors."""
    from tests.browser import open_browser

    yield from open_browser(monkeypatch)


@pytest.fixture(autouse=True)
def _no_profiling_job_outlives_its_test():
    """Embedded mode runs profiling jobs in a background thread (profiling.background): wait for any a test started
    before its database is flushed or dropped, so that a job of one test never writes into the next one's."""
    yield
    from profiling import background

    background.wait_idle()
