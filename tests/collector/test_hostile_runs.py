"""Issue 11: one of each hostile run, sent as a runner would, then every page and the regression check.

Each hostile body is refused with a 400 naming its field, alone and inside a batch of valid runs (nothing of that
batch is stored). Runs at the very edges of what is allowed are stored, and afterwards every page, every read of the
API and the regression check still answer: no accepted run can take a project down.
"""
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from alerts.check import check_all
from collector.models import Project, Run


def iso(moment: datetime) -> str:
    return moment.isoformat()


HOSTILE = {  # field named in the 400 -> changes to a valid run
    "started_at": [{"started_at": "9999-12-31T23:00:00-12:00"}, {"started_at": "0001-01-01T00:00:00+14:00"},
                   {"started_at": "2026-11-20T10:00:00+18:00"}, {"started_at": "2016-12-31T23:59:59Z"}],
    "model.format": [{"model": {"name": "face-retouch", "version": "3.2.0", "format": "f" * 40}}],
    "model.precision": [{"model": {"name": "face-retouch", "version": "3.2.0", "precision": "p" * 64}}],
}


def edge_runs(make_run):
    """Valid runs at the limits: the earliest and latest start, the widest offsets, the longest labels."""
    now = datetime.now(timezone.utc)
    return [
        make_run(started_at="2017-01-01T00:00:00Z"),
        make_run(started_at=iso((now + timedelta(hours=23)).astimezone(timezone(timedelta(hours=14))))),
        make_run(started_at=iso(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-14))))),
        make_run(model={"name": "n" * 200, "version": "v" * 64, "format": "f" * 32, "precision": "p" * 32},
                 app_build="b" * 64),
        make_run(model={"name": "face-retouch", "version": "1.0_10"}, status="crash",
                 failure={"stage": "load", "message": "\u2603" * 4000}, predictions_ms=[],
                 timings_ms={"load": None, "first_prediction": None}),
    ]


@pytest.mark.django_db
def test_hostile_runs_are_refused_and_edge_runs_break_nothing(runner, make_run, project, client):
    for field, changes in HOSTILE.items():
        for change in changes:
            alone = runner.post("/api/v1/runs", make_run(**change), format="json")
            assert alone.status_code == 400, (change, alone.content)
            assert field in alone.content.decode(), (field, alone.content)
            valid = make_run()
            batch = runner.post("/api/v1/runs", {"runs": [valid, make_run(**change)]}, format="json")
            assert batch.status_code == 400
            assert not Run.objects.filter(run_id=valid["run_id"]).exists()
    assert not Run.objects.exists()

    edges = edge_runs(make_run)
    stored = runner.post("/api/v1/runs", {"runs": edges}, format="json")
    assert stored.status_code == 201, stored.content
    assert Run.objects.filter(project=project).count() == len(edges)

    for path in ["/api/v1/runs", f"/api/v1/runs/{edges[0]['run_id']}", "/api/v1/coverage",
                 "/api/v1/policy?model=face-retouch&version=3.2.0&device=iPhone15,2",
                 "/api/v1/policy/export?model=face-retouch&version=3.2.0",
                 "/api/v1/runs?started_after=2017-01-01T00:00:00Z&started_before=2027-01-01T00:00:00-14:00"]:
        answer = runner.get(path)
        assert answer.status_code == 200, (path, answer.content[:500])

    user = get_user_model().objects.create_user("ana", password="pw")
    project.members.add(user)
    client.force_login(user)
    pages = [reverse(name) for name in ("dashboard:overview", "dashboard:compare", "dashboard:versions",
                                        "dashboard:fleet", "policy:policy", "policy:coldstart",
                                        "alerts:list", "profiling:jobs")]
    pages += [reverse("dashboard:run", args=[run["run_id"]]) for run in edges]
    for version in ("3.2.0", "1.0_10", "v" * 64):
        pages += [f"{reverse(name)}?project=acme&version={version}&model={model}"
                  for name in ("dashboard:overview", "dashboard:compare", "policy:policy")
                  for model in ("face-retouch", "n" * 200)]
    for page in pages:
        answer = client.get(page)
        assert answer.status_code == 200, (page, answer.status_code)

    results = check_all()
    assert [r.error for r in results] == [None] * Project.objects.count()
