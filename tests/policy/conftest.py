"""Fixtures of the policy tests: hand-made runs, and a simulated fleet loaded once for the package."""
from contextlib import contextmanager

import pytest

from benchmarks.fleet import generate
from collector.bulk import bulk_load
from collector.models import Project, RunnerToken

FLEET_SLUG = "fleet"
# Three of the simulator's model versions, from a 6,000-run draw: ~3,250 runs, enough for every chip to judge the
# Neural Engine units (the A18 Pro gets ~20 runs of each), small enough to load in a few seconds.
FLEET_VERSIONS = {("face-retouch", "3.2.0"), ("style-diffusion", "1.0.0"), ("segmenter-lite", "2.0.0")}


def fleet_runs(draw=6000, seed=7):
    return (r for r in generate(draw, seed) if (r["model"]["name"], r["model"]["version"]) in FLEET_VERSIONS)


@pytest.fixture(scope="package")
def fleet(django_db_setup, django_db_blocker):
    """The seeded fleet slice of :func:`fleet_runs` in project "fleet", committed once for the tests/policy
    package and deleted after it. Yields (project, runner token, policy token)."""
    with django_db_blocker.unblock():
        Project.objects.filter(slug=FLEET_SLUG).delete()
        bulk_load(FLEET_SLUG, fleet_runs())
        project = Project.objects.get(slug=FLEET_SLUG)
        runner = RunnerToken.issue(project, "fleet-runner")[1]
        policy = RunnerToken.issue(project, "fleet-app", RunnerToken.POLICY)[1]
        try:
            yield project, runner, policy
        finally:
            project.delete()


@pytest.fixture
def add_runs(project):
    """Store hand-made runs (dicts of the wire format) in the "acme" project of tests/conftest.py."""

    def add(runs):
        return bulk_load(project.slug, runs)

    return add


def runs_of(make_run, n, *, failures=0, status="crash", **fields):
    """n runs of make_run(**fields), the first ``failures`` of them failed with ``status`` at load."""
    out = []
    for i in range(n):
        run = make_run(**fields)
        if i < failures:
            run.update(status=status, failure={"stage": "load", "message": "boom"}, predictions_ms=[])
            run["timings_ms"] = {**run["timings_ms"], "load": None, "first_prediction": None}
        out.append(run)
    return out


@contextmanager
def committed_project(django_db_blocker, slug, load):
    """Project ``slug`` as ``load(slug)`` fills it, committed for a module's tests and deleted after them; yields
    (project, policy token)."""
    with django_db_blocker.unblock():
        Project.objects.filter(slug=slug).delete()
        load(slug)
        project = Project.objects.get(slug=slug)
        token = RunnerToken.issue(project, "app", RunnerToken.POLICY)[1]
        try:
            yield project, token
        finally:
            project.delete()
