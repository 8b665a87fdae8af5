"""Issue 12, item 7, on the dashboard's frame: a filter that names nothing says so, an unknown device is named once,
the API docs are in the navigation, there is a favicon, and the embedded default's login page tells the demo account."""
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.urls import reverse

from collector.bulk import bulk_load
from collector.models import Project, Run


@pytest.mark.parametrize("query, says", [
    ({"model": "nope"}, "model=nope: demo has no model of that name (it has face-retouch, segmenter-lite, style-diffusion)"),
    ({"model": "face-retouch", "version": "9.9"}, "version=9.9: face-retouch has no version of that name (it has"),
    ({"device": "iPhone1,1"}, "device=iPhone1,1: no device of that identifier has uploaded runs"),
    ({"project": "nope"}, "project=nope: no project of that name that you can read"),
])
@pytest.mark.parametrize("page", ["dashboard:overview", "dashboard:compare", "dashboard:versions"])
def test_a_filter_that_names_nothing_says_which(member_client, page, query, says):
    html = member_client.get(reverse(page), query).content.decode()
    assert says in html and "no model version uploaded yet" not in html


def test_a_database_without_uploads_still_says_so(empty_client):
    html = empty_client.get(reverse("dashboard:overview")).content.decode()
    assert "No runs match these filters (no model version uploaded yet)." in html


def test_an_unknown_device_is_named_once(member_client, fleet_runs):
    run = dict(fleet_runs[0], run_id="0b0b0b0b-0000-4000-8000-000000000001",
               device=dict(fleet_runs[0]["device"], identifier="iPhone99,9"))
    bulk_load("demo", [run])
    for url in [reverse("dashboard:overview"), reverse("dashboard:run", args=[run["run_id"]])]:
        html = member_client.get(url).content.decode()
        assert "iPhone99,9 (unknown)" in html and "iPhone99,9 (unknown) (iPhone99,9" not in html, url
        assert "(unknown) · iPhone99,9" not in html
    known = Run.objects.exclude(device__identifier="iPhone99,9").select_related("device").first()
    html = member_client.get(reverse("dashboard:run", args=[known.run_id])).content.decode()
    assert f"{known.device.display_name} ({known.device.identifier}" in html  # a known device keeps its identifier


def test_the_navigation_links_the_api_docs_and_has_a_favicon(member_client):
    for url in [reverse("dashboard:overview"), reverse("login"), reverse("profiling:jobs")]:
        html = member_client.get(url).content.decode()
        assert re.search(r'<nav>.*<a href="/api/docs/">API</a>.*</nav>', html, re.S), url
        icon = re.search(r'<link rel="icon" href="/static/([^"]+)"', html).group(1)
        assert finders.find(icon), icon
    assert member_client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_embedded_default_login_page_tells_the_demo_account(client, settings):
    settings.DEBUG = True
    assert "demo-account" not in client.get(reverse("login")).content.decode()  # no demo loaded
    Project.objects.create(slug="demo", name="Demo fleet")
    get_user_model().objects.create_user("demo", password="demo")
    assert re.search(r"log in as <strong>demo</strong>, password <strong>demo</strong>",
                     client.get(reverse("login")).content.decode())
    settings.DEBUG = False  # production never says it
    assert "demo-account" not in client.get(reverse("login")).content.decode()
