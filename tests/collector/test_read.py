"""GET /api/v1/runs, the schema, and the commands runners depend on."""
import io
import json
import re

from django.core.management import call_command

from benchmarks.fleet import HINTS_STUDY
from collector.models import Project, Run, RunnerToken


def upload(client, runs):
    r = client.post("/api/v1/runs", data=json.dumps({"runs": runs}), content_type="application/json")
    assert r.status_code == 201, r.content
    return r


def test_list_filters_and_paginates(runner, make_run):
    upload(runner, [make_run(compute_units="all") for _ in range(3)]
           + [make_run(compute_units="cpuAndGPU", device={"identifier": "iPhone14,7", "os_version": "17.6.1"})])
    body = runner.get("/api/v1/runs").json()
    assert body["count"] == 4
    assert runner.get("/api/v1/runs?compute_units=cpuAndGPU").json()["count"] == 1
    assert runner.get("/api/v1/runs?chip=A15%20Bionic").json()["results"][0]["device"]["name"] == "iPhone 14"
    assert runner.get("/api/v1/runs?model=face-retouch&version=3.2.0").json()["count"] == 4
    assert runner.get("/api/v1/runs?version=9.9").json()["count"] == 0
    assert runner.get("/api/v1/runs?started_after=2026-11-21T00:00:00Z").json()["count"] == 0
    page = runner.get("/api/v1/runs?page_size=3").json()
    assert len(page["results"]) == 3 and page["next"]


def test_bad_filter_is_400_naming_it(runner):
    r = runner.get("/api/v1/runs?compute_units=gpu")
    assert r.status_code == 400 and "compute_units" in r.json()
    assert runner.get("/api/v1/runs?started_after=yesterday").status_code == 400


def test_detail_has_raw_series_and_compute_plan(runner, make_run):
    run = make_run(predictions_ms=[3.0, 2.0, 1.0])
    upload(runner, [run])
    body = runner.get(f"/api/v1/runs/{run['run_id']}").json()
    assert body["predictions_ms"] == [3.0, 2.0, 1.0]
    assert body["predictions"]["median"] == 2.0
    assert body["compute_plan"][0] == {"op": "conv_0", "type": "conv", "device": "neural_engine",
                                       "estimated_cost": 0.12}


def test_a_run_without_predictions_has_an_empty_series(runner, make_run):
    run = make_run(status="crash", failure={"stage": "load", "message": "boom"}, predictions_ms=[])
    upload(runner, [run, make_run(predictions_ms=[4.0, 5.0])])
    assert runner.get(f"/api/v1/runs/{run['run_id']}").json()["predictions_ms"] == []
    assert all("predictions_ms" not in r for r in runner.get("/api/v1/runs").json()["results"])


def test_a_token_never_reads_another_projects_runs(runner, make_run, client_for):
    upload(runner, [make_run()])
    other = Project.objects.create(slug="other", name="Other")
    other_client = client_for(RunnerToken.issue(other, "x")[1])
    assert other_client.get("/api/v1/runs").json()["count"] == 0
    run_id = Run.objects.get().run_id
    assert other_client.get(f"/api/v1/runs/{run_id}").status_code == 404


def test_create_runner_token_prints_a_working_token_last(db, client_for, make_run):
    out = io.StringIO()
    call_command("create_runner_token", "newproj", "ci-box", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    assert Project.objects.filter(slug="newproj").exists()
    stored = RunnerToken.objects.get(name="ci-box")
    assert token not in stored.key_hash and stored.key_hash == RunnerToken.hash(token)
    r = client_for(token).post("/api/v1/runs", data=json.dumps(make_run()), content_type="application/json")
    assert r.status_code == 201


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/runs" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and not re.search(rb"""<(?:script|link)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""",
                                                     docs.content, re.I)  # Swagger UI served from here, no CDN


def test_demo_command_loads_a_fleet_once(db):
    call_command("load_demo", runs=300, stdout=io.StringIO())
    loaded = 300 + HINTS_STUDY["runs"]  # the draw, then the specialization-strategy study
    assert Run.objects.filter(project__slug="demo").count() == loaded
    assert {"crash", "ok"} <= set(Run.objects.values_list("status", flat=True))
    call_command("load_demo", runs=300, stdout=io.StringIO())
    assert Run.objects.count() == loaded


def _two_projects_some_pending(client, monkeypatch, fleet, lab: int, other: int) -> None:
    """``fleet[:lab]`` into project "lab", ``fleet[lab:other]`` into "other", the rest into "lab" left pending (as with
    a broker: not yet in their sketch rows); ``client`` logged in as a member of both."""
    from django.contrib.auth import get_user_model

    from collector.bulk import bulk_load

    bulk_load("lab", fleet[:lab])
    bulk_load("other", fleet[lab:other])
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: False)
    monkeypatch.setattr("collector.ingest.fold_soon", lambda: None)
    bulk_load("lab", fleet[other:])
    user = get_user_model().objects.create_user("ana")
    for slug in ("lab", "other"):
        Project.objects.get(slug=slug).members.add(user)
    client.force_login(user)


def test_the_list_counts_and_pages_exactly_what_its_filters_select(db, client, monkeypatch):
    """GET /api/v1/runs in a database of two projects, some runs still pending (not in their sketch rows): its count
    (summed from the sketch rows where the filters are row keys, else counted) is the number of runs the filters
    select, and each page holds the next of them, newest first: over both projects a page is merged from each
    project's newest runs."""
    from benchmarks.fleet import generate

    _two_projects_some_pending(client, monkeypatch, list(generate(400, seed=11)), 150, 300)
    run = Run.objects.filter(project__slug="lab").exclude(variant="").select_related("model_version", "device").last()
    cases = [({}, {}), ({"project": "lab"}, {"project__slug": "lab"}),
             ({"model": run.model_version.name, "version": run.model_version.version},
              {"model_version__name": run.model_version.name, "model_version__version": run.model_version.version}),
             ({"project": "other", "chip": run.device.chip}, {"project__slug": "other", "device__chip": run.device.chip}),
             ({"device": run.device.identifier, "source": run.source},
              {"device__identifier": run.device.identifier, "source": run.source}),
             ({"compute_units": run.compute_units, "load_kind": run.load_kind, "variant": run.variant},
              {"compute_units": run.compute_units, "load_kind": run.load_kind, "variant": run.variant}),
             ({"status": "crash"}, {"status": "crash"}),  # not a row key: counted from the runs
             ({"started_after": run.started_at.isoformat()}, {"started_at__gte": run.started_at}),
             ({"project": "nowhere"}, {"project__slug": "nowhere"})]
    for params, lookups in cases:
        selected = [str(r) for r in Run.objects.filter(**lookups).order_by("-started_at", "-id")
                    .values_list("run_id", flat=True)]
        for page in (1, 3):
            response = client.get("/api/v1/runs", {**params, "page_size": 7, "page": page})
            if page > 1 and len(selected) <= 14:
                assert response.status_code == 404, params
                continue
            assert response.status_code == 200, (params, response.content)
            body = response.json()
            assert body["count"] == len(selected), params
            assert [r["run_id"] for r in body["results"]] == selected[7 * (page - 1):7 * page], (params, page)
    assert Run.objects.filter(sketch_pending__isnull=False).count() >= 100  # pending runs were among them


def test_a_deep_page_by_number_holds_the_runs_walking_to_it_would(db, client, monkeypatch):
    """A page far down the list (PostgreSQL: from ``SEEK_DAYS_FROM`` on; here every page after the first) skips the
    newer days' runs as the sketch rows count them, pending ones included, then walks within its day: every page
    holds exactly the runs an offset over the whole list gives, runs at midnight UTC on the day they start, under
    filters of row keys, a status and a time bound within a day, over one project or two."""
    from benchmarks.fleet import generate

    monkeypatch.setattr("collector.pagination.SEEK_DAYS_FROM", 1)
    fleet = list(generate(300, seed=23))
    for i, run in enumerate(fleet[::10]):  # on a day's first and last instants
        run["started_at"] = f"2026-11-{10 + i % 5:02d}T" + ("00:00:00Z" if i % 2 else "23:59:59.999999Z")
    _two_projects_some_pending(client, monkeypatch, fleet, 120, 200)
    run = Run.objects.select_related("model_version").last()
    assert Run.objects.dates("started_at", "day").count() > 5
    model = run.model_version.name
    for params, lookups in [({}, {}), ({"project": "lab"}, {"project__slug": "lab"}),
                            ({"model": model}, {"model_version__name": model}),
                            ({"source": "field"}, {"source": "field"}), ({"status": "ok"}, {"status": "ok"}),
                            ({"status": "crash"}, {"status": "crash"}),
                            ({"started_after": run.started_at.isoformat()}, {"started_at__gte": run.started_at})]:
        selected = [str(r) for r in Run.objects.filter(**lookups).order_by("-started_at", "-id")
                    .values_list("run_id", flat=True)]
        assert len(selected) > 6, params
        for page in range(1, -(-len(selected) // 3) + 1):
            body = client.get("/api/v1/runs", {**params, "page_size": 3, "page": page}).json()
            assert [r["run_id"] for r in body["results"]] == selected[3 * (page - 1):3 * page], (params, page)


def test_a_status_is_counted_from_the_sketch_rows(db, monkeypatch):
    """The run list's count of one status (and its deep pages' days) comes from the sketch rows, without counting
    the runs: a row's failures per status count its failed runs, the rest succeeded; pending runs counted from the
    runs. Every status, per day, equals the runs' own count."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from benchmarks.fleet import generate
    from collector import evidence
    from collector.bulk import bulk_load
    from insights.vocabulary import STATUSES

    fleet = list(generate(400, seed=29))
    for i, run in enumerate(fleet[::5]):  # failures of every status, on many days
        run["status"] = ("crash", "oom", "error", "timeout")[i % 4]
        run["failure"] = {"stage": "prediction", "message": "failed in the test"}
    bulk_load("lab", fleet[:300])
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: False)  # as with a broker: left pending
    monkeypatch.setattr("collector.ingest.fold_soon", lambda: None)
    bulk_load("lab", fleet[300:])
    runs = Run.objects.filter(project__slug="lab")
    expected = {status: {(row["day"],): row["n"] for row in runs.filter(status=status)
                         .annotate(day=TruncDate("started_at")).values("day").annotate(n=Count("id"))}
                for status in STATUSES}
    assert all(len(expected[status]) > 5 for status in STATUSES)
    monkeypatch.setattr("django.db.models.query.QuerySet.count", None)  # the runs are never counted
    for status in STATUSES:
        counted = evidence.counts_by(runs.filter(status=status), ("day",))
        assert {day: n for day, n in counted.items() if n} == expected[status], status
        assert evidence.count(runs.filter(status=status)) == sum(expected[status].values()), status
    assert Run.objects.filter(sketch_pending__isnull=False).exists()


def test_following_next_links_lists_every_run_once_while_runs_arrive(db, client):
    """A script pages through a member's two projects by the ``next`` links (which carry ``after``, the page's last
    run): it gets every run once, newest first, even when runs are uploaded between two pages (a page number alone
    would shift and repeat one); ``after`` that is not an id is a 400 naming it."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from benchmarks.fleet import generate
    from collector.bulk import bulk_load

    fleet = list(generate(160, seed=5))
    bulk_load("lab", fleet[:90])
    bulk_load("other", fleet[90:150])
    user = get_user_model().objects.create_user("ana")
    for slug in ("lab", "other"):
        Project.objects.get(slug=slug).members.add(user)
    client.force_login(user)
    listed = [str(r) for r in Run.objects.order_by("-started_at", "-id").values_list("run_id", flat=True)]

    seen, url, pages = [], "/api/v1/runs?page_size=9", 0
    while url:
        body = client.get(url).json()
        seen += [r["run_id"] for r in body["results"]]
        url, pages = body["next"], pages + 1
        if pages == 3:  # newer runs arrive: they belong before the pages already read, not in the next ones
            now = timezone.now().isoformat()
            bulk_load("lab", [dict(run, started_at=now) for run in fleet[150:]])
        assert url is None or "after=" in url
    assert seen == listed

    response = client.get("/api/v1/runs", {"after": "the last one"})
    assert response.status_code == 400 and "after" in response.json()
