"""Dashboard fixtures: a logged-in member of the demo project with a small synthetic fleet, and an outsider."""
import pytest
from django.contrib.auth import get_user_model

from benchmarks.fleet import generate
from collector.bulk import bulk_load
from collector.models import Project

FLEET_RUNS = 600


@pytest.fixture(scope="session")
def fleet_runs():
    """The demo fleet's first runs, generated once per session (bulk_load does not modify them)."""
    return list(generate(FLEET_RUNS, seed=7))


@pytest.fixture
def demo(db, fleet_runs):
    """Project "demo" holding the fleet."""
    bulk_load("demo", fleet_runs)
    return Project.objects.get(slug="demo")


@pytest.fixture
def member(db):
    return get_user_model().objects.create_user("ana", password="pw")


@pytest.fixture
def member_client(client, member, demo):
    demo.members.add(member)
    client.force_login(member)
    return client


@pytest.fixture
def empty_client(client, member):
    """A logged-in user in an empty database (no project, no run)."""
    client.force_login(member)
    return client
