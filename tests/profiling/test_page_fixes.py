"""Issue 12, item 7, on the profiling pages: a succeeded job is not shown as a warning, /profiling/diff without its
parameters is a 400 page saying what it needs (not Django's 404), and every lint rule's source is a public page or
a self-contained description (not "perfboard issue 5")."""
import re

import pytest
from django.contrib.auth import get_user_model

from collector.models import ModelVersion, Project
from profiling import rules
from profiling.models import ProfilingJob


@pytest.fixture
def member_client(client, db):
    project = Project.objects.create(slug="acme-prof", name="Acme profiling")
    user = get_user_model().objects.create_user("ana", password="pw")
    project.members.add(user)
    client.force_login(user)
    client.project = project
    return client


def job_box(html):
    return re.search(r'<div id="job-status" class="([^"]*)"', html).group(1).split()


def test_a_succeeded_job_is_not_a_warning(member_client):
    version = ModelVersion.objects.create(project=member_client.project, name="face", version="5.0")
    job = ProfilingJob.objects.create(project=member_client.project, model_version=version, input_kind="mlpackage",
                                      input_name="face.mlpackage", status=ProfilingJob.SUCCEEDED)
    assert job_box(member_client.get(f"/profiling/jobs/{job.pk}").content.decode()) == ["notice", "ok"]
    job.status = ProfilingJob.FAILED
    job.save()
    assert job_box(member_client.get(f"/profiling/jobs/{job.pk}").content.decode()) == ["notice", "error"]


@pytest.mark.parametrize("query", ["", "?b=2", "?a=x&b=y"])
def test_diff_without_two_artifacts_says_what_it_needs(member_client, query):
    response = member_client.get(f"/profiling/diff{query}")
    html = response.content.decode()
    assert response.status_code == 400 and "?a=&lt;artifact id&gt;&amp;b=&lt;artifact id&gt;" in html
    assert 'class="topbar"' in html  # the app's own page, with its navigation


def test_every_rule_source_is_a_page_or_says_what_it_is():
    sources = {s for rule in rules.RULES.values() for s in rule.sources}
    assert sources
    for source in sources:
        assert source.url == "" or source.url.startswith("https://"), source
        assert "issue" not in (source.title + source.url).lower(), source
