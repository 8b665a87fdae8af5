"""With a task broker an upload leaves its runs pending (collector.models.PendingRun) and a fold adds them to their
sketch rows later (collector.sketches.fold_pending). Every answer counts a run exactly once whether it is pending or
folded; concurrent folds add each run once; a rebuild does not count a pending run twice; a real worker folds what
an upload queued."""
import threading
import time

import pytest
from django.db import connection

from benchmarks.fleet import generate
from collector import sketches
from collector.bulk import bulk_load
from collector.evidence import failures_by_stage, gather, gather_from_runs
from collector.models import ModelVersion, PendingRun, Project, Run, RunSketch, RunSketchConfiguration
from dashboard.filters import Filters
from dashboard.queries import resolve_scope
from insights.vocabulary import METRICS

BY = ("chip", "compute_units")
QUANTILES = {"p10": 0.1, "median": 0.5, "p90": 0.9}


@pytest.fixture
def deferred(monkeypatch):
    """Uploads leave their runs pending, as with a broker (nothing folds them unless the test does)."""
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: False)
    monkeypatch.setattr("collector.ingest.fold_soon", lambda: None)


def _answers(runs, by=BY):
    return {e.group: (e.runs, e.failures, {k: e.timed(k) for k in METRICS}) for e in gather(runs, by, METRICS)}


def _exact(runs, by=BY):
    return {e.group: (e.runs, e.failures, {k: e.timed(k) for k in METRICS})
            for e in gather_from_runs(runs, by, METRICS)}


def _medians(runs, by=BY):
    return {e.group: {k: e.median(k) for k in METRICS} for e in gather(runs, by, METRICS, QUANTILES)}


def test_pending_runs_are_answered_before_and_after_their_fold(project, deferred):
    bulk_load(project.slug, generate(600, seed=5))
    runs = Run.objects.filter(project=project)
    assert PendingRun.objects.count() == runs.count() == 600
    assert not RunSketch.objects.exists()
    before = _answers(runs)
    assert before == _exact(runs)  # every run counted once, from its own values
    for by in (("version", "compute_units"), ("os_major",), ("day", "device")):
        assert _answers(runs, by) == _exact(runs, by), by
    medians = _medians(runs)
    assert sketches.fold_pending() == 600
    assert not PendingRun.objects.exists()
    assert sum(RunSketch.objects.values_list("runs", flat=True)) == 600
    assert _answers(runs) == before
    assert _medians(runs) == medians  # small groups: exact either way


def test_folded_and_pending_runs_of_one_group_add_up(project, deferred):
    fleet = list(generate(800, seed=6))
    bulk_load(project.slug, fleet[:500])
    sketches.fold_pending()
    bulk_load(project.slug, fleet[500:])
    runs = Run.objects.filter(project=project)
    assert PendingRun.objects.count() == 300
    assert _answers(runs) == _exact(runs)
    filtered = runs.filter(os_major__gte=18, source="lab")
    assert _answers(filtered) == _exact(filtered)
    # Counts alone (no metric) are summed by the database, rows and pending runs together.
    counted = {e.group: (e.runs, e.failures) for e in gather(runs, ("version",))}
    assert counted == {e.group: (e.runs, e.failures) for e in gather_from_runs(runs, ("version",))}


@pytest.mark.parametrize("metric", ["load_cold", "prediction", "time_to_first_result", "ready"])
def test_a_question_of_one_metric_reads_the_pending_runs_values_it_needs(project, deferred, metric):
    """A pending run gives a question only the values its metric reads: its own column, or for a derived one (the
    time to first result, the load of the cold-start A/B) the stage columns it sums."""
    from policy.queries import AB_SKETCHED, COLD_START_METRICS

    metrics = {m.key: m for m in (*METRICS.values(), COLD_START_METRICS["total"], AB_SKETCHED["load"])}
    wanted = (metrics[metric],)
    bulk_load(project.slug, generate(400, seed=8))
    runs = Run.objects.filter(project=project)
    sketched = {e.group: (e.runs, e.timed(metric), e.median(metric)) for e in gather(runs, BY, wanted)}
    exact = {e.group: (e.runs, e.timed(metric), e.median(metric)) for e in gather_from_runs(runs, BY, wanted)}
    assert {g: v[:2] for g, v in sketched.items()} == {g: v[:2] for g, v in exact.items()}
    for group, (_, _, median) in exact.items():  # small groups: exact up to float summation
        assert sketched[group][2] == (None if median is None else pytest.approx(median)), group
    assert any(timed for _, timed, _ in sketched.values())


def _stages_of(runs, by):
    """{group: {stage: failed runs}} counted in Python from the runs themselves."""
    column = {"compute_units": "compute_units", "os_major": "os_major", "chip": "device__chip", "version":
              "model_version_id"}
    out = {}
    for *group, stage in runs.exclude(status="ok").values_list(*(column[b] for b in by), "failure_stage"):
        stages = out.setdefault(tuple(group), {})
        stages[sketches.stage_of(stage)] = stages.get(sketches.stage_of(stage), 0) + 1
    return out


def test_failures_by_stage_count_pending_and_folded_runs_once(project, deferred, make_run):
    fleet = list(generate(800, seed=8))
    unnamed = [make_run(status="crash", failure={"stage": "load", "message": "m"}) for _ in range(3)]
    bulk_load(project.slug, fleet[:500] + unnamed)
    # Runs stored before the API required a failure's stage (the column allows none): counted as NO_STAGE.
    Run.objects.filter(run_id__in=[r["run_id"] for r in unnamed]).update(failure_stage="")
    sketches.fold_pending()
    bulk_load(project.slug, fleet[500:])
    runs = Run.objects.filter(project=project)
    assert PendingRun.objects.count() == 300
    for view in (runs, runs.filter(source="field"), runs.filter(os_major__gte=18)):
        for by in (("compute_units",), ("chip", "os_major"), ("version",)):
            assert sketches.sketch_filter(view) is not None  # the sketch rows answer
            expected = _stages_of(view, by)
            assert failures_by_stage(view, by) == expected, by
            assert failures_by_stage(view.filter(status__in=["ok", "crash", "oom", "error", "timeout"]), by) == expected
    stages = failures_by_stage(runs, ("compute_units",))
    assert sum(n for counts in stages.values() for n in counts.values()) == runs.exclude(status="ok").count()
    assert stages[("all",)].get(sketches.NO_STAGE, 0) >= 3
    sketches.fold_pending()
    assert failures_by_stage(runs, ("compute_units",)) == stages


def test_a_version_with_only_pending_runs_is_a_measured_version(project, monkeypatch, make_run):
    """Beside a version whose runs are folded and one uploaded for profiling only (no runs): the page's default is
    the newest version with runs, pending ones included."""
    bulk_load(project.slug, [make_run(model={"name": "portrait", "version": "1.0.0"})])
    ModelVersion.objects.create(project=project, name="portrait", version="3.0.0")
    monkeypatch.setattr("collector.ingest.runs_in_process", lambda: False)  # as the deferred fixture, from here
    monkeypatch.setattr("collector.ingest.fold_soon", lambda: None)
    bulk_load(project.slug, [make_run(model={"name": "portrait", "version": "2.0.0"})])
    scope = resolve_scope(Project.objects.all(), Filters())
    assert [(mv.version, mv.has_runs) for mv in scope.model_versions] == [
        ("1.0.0", True), ("2.0.0", True), ("3.0.0", False)]
    assert scope.model_version.version == "2.0.0"


def test_a_rebuild_does_not_count_pending_runs_twice(project, deferred):
    fleet = list(generate(400, seed=7))
    bulk_load(project.slug, fleet[:250])
    sketches.fold_pending()
    bulk_load(project.slug, fleet[250:])
    sketches.rebuild(project)  # the folded runs' rows recomputed; the pending ones wait for their fold
    runs = Run.objects.filter(project=project)
    assert _answers(runs) == _exact(runs)
    sketches.fold_pending()
    assert sum(RunSketch.objects.values_list("runs", flat=True)) == 400
    assert _answers(runs) == _exact(runs)


def test_deleting_pending_runs_leaves_nothing_to_fold(project, deferred):
    bulk_load(project.slug, generate(200, seed=8))
    runs = Run.objects.filter(project=project)
    runs.filter(compute_units="cpuOnly").delete()
    assert PendingRun.objects.count() == runs.count()
    sketches.fold_pending()
    assert sum(RunSketch.objects.values_list("runs", flat=True)) == runs.count()
    assert _answers(runs) == _exact(runs)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_folds_add_each_run_once(project, deferred):
    bulk_load(project.slug, generate(1200, seed=9))
    assert PendingRun.objects.count() == 1200
    barrier = threading.Barrier(4)
    folded, errors = [], []

    def fold():
        try:
            barrier.wait()
            folded.append(sketches.fold_pending(batch=50))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fold) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(folded) == 1200 and len([n for n in folded if n]) > 1  # the work was shared
    assert not PendingRun.objects.exists()
    for model in sketches.tiers():  # (the variant rows hold the runs that name a variant)
        held = Run.objects.exclude(variant="") if sketches.named_variants_only(model) else Run.objects.all()
        assert sum(model.objects.values_list("runs", flat=True)) == held.count(), model.__name__
    runs = Run.objects.all()
    assert _answers(runs) == _exact(runs)


@pytest.mark.celery_worker
def test_a_real_worker_folds_what_an_upload_queued(celery_worker, project, runner, make_run, monkeypatch):
    """PostgreSQL and Redis as deployed: the upload's fold is queued once it commits, and a worker folds it."""
    monkeypatch.setattr("collector.ingest._last_fold_queued", 0.0)  # no earlier test's upload holds the queueing back
    body = {"runs": [make_run(model={"name": "portrait", "version": "1.0.0"}) for _ in range(30)]}
    response = runner.post("/api/v1/runs", data=body, format="json")
    assert response.status_code == 201, response.content
    deadline = time.monotonic() + 30
    while PendingRun.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not PendingRun.objects.exists()
    assert sum(RunSketchConfiguration.objects.values_list("runs", flat=True)) == 30
    runs = Run.objects.filter(project=project)
    assert _answers(runs) == _exact(runs)


@pytest.mark.django_db(transaction=True)
def test_an_uploads_fold_is_queued_on_the_sketches_queue(settings, project, runner, make_run, monkeypatch):
    """A fold never waits behind the profiling jobs of the default queue: what an upload queues lands on the queue
    of its own that production's one-process sketches worker consumes (docker-compose.yml)."""
    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs a real broker: set CELERY_BROKER_URL (CI uses Redis)")
    from perfboard.celery import app

    monkeypatch.setattr("collector.ingest._last_fold_queued", 0.0)
    app.control.purge()

    def queued(queue):
        with app.connection_for_write() as conn:
            return conn.default_channel.client.llen(queue)

    try:
        response = runner.post("/api/v1/runs", data={"runs": [make_run()]}, format="json")
        assert response.status_code == 201, response.content
        assert (queued("sketches"), queued("celery")) == (1, 0)
    finally:
        app.control.purge()
