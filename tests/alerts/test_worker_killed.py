"""Issue 6: "a worker killed mid-check loses nothing (acks late, re-run safe)", with real worker processes.

Each test starts ``celery -A perfboard worker`` as a subprocess consuming a queue of its own, sends it the regression
check of a project holding a simulated fleet (benchmarks/fleet.py, ~14,000 runs with the injected slowdown and
crashes: a check of a few seconds), SIGKILLs the worker in the middle of the check, looks at what the dead check left
in the database, lets the task be delivered again, and checks that the re-run makes exactly the alerts of an
uninterrupted check (computed here with the pure detector, insights.regressions, on the same runs), each once, on the
same evidence, all notified, with the watermark moved.

Where the worker dies:
- ``reading``: while the check reads, its runs read and its plans not (this test locks the plans table, so the
  worker is stopped there however fast the machine);
- ``writing``: findings computed, about to write the alerts (this test holds the project's CheckState row lock, which
  the check takes first, so the worker is stopped exactly there);
- ``notifying``: alerts committed, not yet notified, watermark not moved (this test holds the row lock of an older,
  unnotified alert, which notify_pending marks first);
- the pool child only (``test_pool_child_killed_mid_check_...``): the worker's main process sees its child die and
  gives the message back (reject_on_worker_lost); the same worker runs it again at once.
In the first three the whole worker (its process group) dies, as with a lost container or machine: nobody gives the
message back, it stays unacknowledged in Redis, and a worker started afterwards gets it once the visibility timeout
(CELERY_VISIBILITY_TIMEOUT, 5 s here) has passed: workers sweep for such messages every tenth of the timeout, and
the sweep's lock a killed worker may leave expires after it (perfboard/settings.py; kombu's defaults, a sweep every
~100 s and a 300 s lock, would make this wait minutes). These workers treat every message of the Redis database
unacknowledged for 5 s as lost: do not point the tests at a database that live workers use.

Needs PostgreSQL (the workers, other processes, see the committed rows of the test database) and a Redis broker
(CELERY_BROKER_URL); skipped otherwise.
"""
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from alerts.check import RUN_COLUMNS, _fingerprint, _plans
from alerts.models import Alert, CheckState, fingerprint
from benchmarks.fleet import GROUND_TRUTH, generate
from collector.bulk import CHUNK
from collector.ingest import store_runs
from collector.models import ComputePlanEntry, Project, Run
from collector.schema import RunIn
from insights.regressions import find_placement_shifts, find_regressions
from perfboard.conf import detection_settings

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.postgres_only,  # tests/conftest.py skips these on SQLite
    pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")),
                       reason="needs a Redis broker: set CELERY_BROKER_URL (CI uses Redis)"),
]

BASE_DIR = Path(__file__).resolve().parents[2]
SLUG = "killed-worker-fleet"
FLEET_DRAW, FLEET_SEED = 20000, 7  # without segmenter-lite: ~14,000 runs
VISIBILITY_TIMEOUT = 5  # seconds: the workers' CELERY_VISIBILITY_TIMEOUT
TASK = "alerts.check_regressions"
START_TIMEOUT = 60  # a worker starting and beginning the check
RERUN_TIMEOUT = 60  # the task delivered again and run to its end
OLDER = "older-model"  # the model of the older alert of the notifying case


def database_url() -> str:
    """The test database (pytest-django's test_<name>) as a URL for the worker processes."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s["PASSWORD"]:
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s["HOST"] or "localhost"
    port = f":{s['PORT']}" if s["PORT"] else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(s['NAME'], safe='')}"


# The workers' PostgreSQL sessions carry this application_name (libpq reads PGAPPNAME), so the test waits for and
# ends theirs alone: the test process's own and a live server's (tests of the pages) are not its to end.
WORKER_SESSION = "perfboard-killed-worker"


class Worker:
    """``celery -A perfboard worker`` (prefork, one child) in its own process group, consuming only ``queue``."""

    def __init__(self, queue: str, log: Path):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "perfboard.settings", "DATABASE_URL": database_url(),
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
               "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND or settings.CELERY_BROKER_URL,
               "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT), "PYTHONUNBUFFERED": "1",
               "PGAPPNAME": WORKER_SESSION}
        self.log = log
        self._out = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "perfboard", "worker", "--loglevel=info", "--queues", queue,
             "--concurrency", "1", "--hostname", f"{queue}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=BASE_DIR, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
        except OSError:
            return []

    def kill(self):
        """SIGKILL the whole worker, main process and pool."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def close(self):
        """End it (its task is done, or this test failed) and close its log."""
        self.kill()
        self._out.close()

    def tail(self, n=30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class Setup:
    project: Project
    queue: str
    app: object
    start: Callable[[], Worker]  # another worker on the queue
    workers: list
    results: list = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name} (pid {w.pid}):\n{w.tail()}" for w in self.workers)

    def send(self):
        """The check as beat sends it (every project: the test database holds this one), on this test's queue."""
        self.results.append(self.app.send_task(TASK, queue=self.queue))
        return self.results[-1]

    def wait_for(self, what: str, predicate, timeout: float):
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                sessions = "\n".join(f"{pid} {wait} {query[:200]}" for pid, wait, query in other_sessions())
                pytest.fail(f"timed out after {timeout} s waiting for {what}\n--- database sessions:\n{sessions}\n"
                            f"{self.logs()}")
            time.sleep(0.02)
        return value

    def rerun_result(self, result) -> list:
        try:
            return result.get(timeout=RERUN_TIMEOUT)
        except Exception as exc:
            pytest.fail(f"the check was not run again to its end: {exc!r}\n{broker_state(self.app, self.queue)}\n"
                        f"{self.logs()}")


@functools.cache
def fleet_runs() -> tuple[RunIn, ...]:
    """The fleet's runs, validated once for the module (collector.bulk.bulk_load without its validation)."""
    return tuple(RunIn.model_validate(r) for r in generate(FLEET_DRAW, FLEET_SEED)
                 if r["model"]["name"] != "segmenter-lite")


def load_fleet() -> Project:
    project = Project.objects.create(slug=SLUG, name=SLUG)
    runs = fleet_runs()
    for i in range(0, len(runs), CHUNK):
        store_runs(project, list(runs[i:i + CHUNK]))
    return project


@pytest.fixture
def killable(transactional_db, tmp_path):
    """A worker already starting, the fleet in a project (committed: the workers are other processes), a queue no
    other test's worker consumes; every worker ended afterwards, and the queue's messages removed."""
    from perfboard.celery import app

    queue = f"killtest-{uuid.uuid4().hex[:12]}"
    workers = []

    def start():
        workers.append(Worker(queue, tmp_path / f"worker{len(workers) + 1}.log"))
        return workers[-1]

    setup = None
    try:
        start()  # starts while the fleet loads
        setup = Setup(load_fleet(), queue, app, start, workers)
        yield setup
    finally:
        for worker in workers:
            worker.close()
        _drop_queue(app, queue)
        for result in setup.results if setup else ():
            result.forget()
        # The killed workers' sessions end once PostgreSQL notices; none may be left when the tables are flushed.
        deadline = time.monotonic() + 15
        while other_sessions() and time.monotonic() < deadline:
            time.sleep(0.1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND application_name = %s", [WORKER_SESSION])


def _drop_queue(app, queue):
    """Remove what kombu keeps in Redis for the queue: its messages, its bindings, and unacknowledged messages
    routed to it (a killed worker's)."""
    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        for tag, raw in client.hgetall("unacked").items():
            try:
                routing_key = json.loads(raw)[2]
            except (ValueError, IndexError, TypeError):
                continue
            if routing_key == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


def broker_state(app, queue) -> str:
    """What Redis holds for the queue: waiting messages, unacknowledged ones (and for how long), the restore mutex."""
    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        now = time.time()
        unacked = [(tag.decode(), round(now - (client.zscore("unacked_index", tag) or 0), 1))
                   for tag, raw in client.hgetall("unacked").items() if queue.encode() in raw]
        return (f"--- broker: {client.llen(queue)} waiting in {queue}; unacknowledged (tag, age s): {unacked}; "
                f"unacked_mutex ttl {client.ttl('unacked_mutex')} s")
    finally:
        client.close()


def other_sessions() -> list[tuple]:
    """(pid, wait event type, query) of the workers' sessions on the test database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else frozen for the rest of the transaction
        cursor.execute("SELECT pid, wait_event_type, query FROM pg_stat_activity "
                       "WHERE datname = current_database() AND application_name = %s", [WORKER_SESSION])
        return cursor.fetchall()


def blocked_in(*fragments: str) -> list[int]:
    """Sessions waiting for a lock in a statement containing all ``fragments``."""
    return [pid for pid, wait, query in other_sessions() if wait == "Lock" and all(f in query for f in fragments)]


def hold_plan_reads():
    """Make the check stop in its reading, whatever the machine's speed: until this transaction ends, the compute
    plans table is locked, and the check reads a model's plans right after its runs (a check of this fleet took
    0.3 s on a fast machine, less than any fixed wait)."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {ComputePlanEntry._meta.db_table} IN ACCESS EXCLUSIVE MODE")


def wait_reading(killable):
    killable.wait_for("the check to read the plans, its runs read",
                      lambda: blocked_in(f'"{ComputePlanEntry._meta.db_table}"'), 30)


def uninterrupted(project) -> dict[str, tuple]:
    """fingerprint -> evidence of the alerts an uninterrupted check of the project makes, from the pure detector
    called as alerts.check calls it (first finding of a fingerprint wins, as in save_findings)."""
    conf, findings = detection_settings(), []
    runs = Run.objects.filter(project=project)
    for name in sorted(set(runs.values_list("model_version__name", flat=True))):
        of_model = runs.filter(model_version__name=name)
        findings += find_regressions(name, of_model.values_list(*RUN_COLUMNS), conf)
        findings += find_placement_shifts(name, _plans(of_model), conf)
    # The injected regressions are among them (tests/alerts/test_fleet.py checks, on a smaller draw, that they are
    # all of them).
    slow, crash = GROUND_TRUTH["slowdown"], GROUND_TRUTH["crash"]
    found = {(f.kind, f.key.model, f.version, f.baseline_version, f.key.chip) for f in findings}
    assert ("slowdown", slow["model"], slow["version"], slow["baseline_version"], slow["chip"]) in found
    assert ("crash_rate", crash["model"], crash["from_version"], "3.1.0", crash["chip"]) in found
    expected = {}
    for f in findings:
        expected.setdefault(_fingerprint(f), (f.kind, f.key.model, f.version, f.baseline_version, f.key.chip,
                                              f.key.compute_units, f.key.metric, f.runs_baseline, f.runs_current,
                                              sorted(f.baseline_run_ids), sorted(f.current_run_ids)))
    return expected


def stored(project) -> list[tuple[str, tuple]]:
    """(fingerprint, evidence) of the project's alerts made by the check, one per alert."""
    return [(a.fingerprint, (a.kind, a.model, a.version, a.baseline_version, a.chip, a.compute_units, a.metric,
                             a.runs_baseline, a.runs_current, sorted(a.baseline_run_ids), sorted(a.current_run_ids)))
            for a in Alert.objects.filter(project=project).exclude(model=OLDER)]


def state_of(project) -> CheckState | None:
    return CheckState.objects.filter(project=project).first()


def check_running(project) -> CheckState | None:
    state = state_of(project)
    return state if state and state.last_started_at and not state.last_finished_at else None


def assert_rerun_complete(project, expected: dict, started_at, killed_at):
    """The re-run made the alerts of an uninterrupted check, once each, on the same runs; all notified; the
    check finished after the kill and moved the watermark without passing a run."""
    alerts = stored(project)
    assert len(alerts) == len({fp for fp, _ in alerts}), "an alert was made twice"
    assert dict(alerts) == expected
    assert not Alert.objects.filter(project=project, notified_at__isnull=True).exists()
    state = state_of(project)
    assert state.last_started_at > started_at and state.last_finished_at > killed_at
    newest = Run.objects.filter(project=project).order_by("-received_at").values_list("received_at", flat=True)[0]
    assert state.received_watermark is not None and state.received_watermark <= newest


@pytest.mark.parametrize("kill_point", ["reading", "writing", "notifying"])
def test_worker_killed_mid_check_loses_nothing(killable, kill_point):
    project = killable.project
    if kill_point == "notifying":
        # An alert an earlier check made and never notified: the next check's notify_pending handles it first.
        older = Alert.objects.create(
            project=project, kind="slowdown", model=OLDER, version="1.1.0", baseline_version="1.0.0",
            chip="A16 Bionic", compute_units="all", metric="prediction_ms_median", baseline=10.0, current=12.0,
            change=0.2, runs_baseline=20, runs_current=20,
            fingerprint=fingerprint("slowdown", OLDER, "1.1.0", "A16 Bionic", "all", "prediction_ms_median"))
    t_sent = time.monotonic()
    with transaction.atomic():  # the row locks this test takes are held to the end of this block
        if kill_point == "notifying":
            Alert.objects.select_for_update().get(pk=older.pk)
        elif kill_point == "reading":
            hold_plan_reads()
        result = killable.send()
        started_at = killable.wait_for("the check to start", lambda: check_running(project),
                                       START_TIMEOUT).last_started_at
        t_started = time.monotonic()
        if kill_point == "reading":
            wait_reading(killable)
        elif kill_point == "writing":
            CheckState.objects.select_for_update().get(project=project)
            killable.wait_for("the check to wait to write its alerts",
                              lambda: blocked_in('FROM "alerts_checkstate"', "FOR UPDATE"), 30)
        else:
            killable.wait_for("the check to wait in notify_pending",
                              lambda: blocked_in('UPDATE "alerts_alert" SET "notified_at"'), 30)
        killable.workers[0].kill()
        t_killed, killed_at = time.monotonic(), timezone.now()
        # What the dead check left: not finished, watermark not moved (every run is read again), and its alerts
        # all or none (one transaction), none notified.
        state = state_of(project)
        assert state.last_finished_at is None, f"the check ended before the kill\n{killable.logs()}"
        assert state.received_watermark is None
        left = stored(project)
        assert not Alert.objects.filter(project=project, notified_at__isnull=False).exists()
    # The locks are released (the dead worker's sessions end). Its message is still unacknowledged in Redis: a worker
    # started now gets it once the visibility timeout has passed. What an uninterrupted check makes is computed
    # meanwhile.
    killable.start()
    expected = uninterrupted(project)
    if kill_point == "notifying":
        assert dict(left) == expected and len(left) == len(expected)
    else:
        assert left == []
    answer = killable.rerun_result(result)
    t_done = time.monotonic()

    assert answer == [{"project": project.slug, "groups": 2, "findings": answer[0]["findings"],
                       "created": 0 if kill_point == "notifying" else len(expected), "updated": 0,
                       "withdrawn": 0, "error": None}]
    assert_rerun_complete(project, expected, started_at, killed_at)
    print(f"\n{kill_point}: check started {t_started - t_sent:.1f} s after sending, killed {t_killed - t_started:.1f} s"
          f" into it, re-run done {t_done - t_killed:.1f} s after the kill; {len(expected)} alerts", end=" ")


def test_pool_child_killed_mid_check_is_run_again_by_its_worker(killable):
    project = killable.project
    worker = killable.workers[0]
    with transaction.atomic():
        hold_plan_reads()
        result = killable.send()
        started_at = killable.wait_for("the check to start", lambda: check_running(project),
                                       START_TIMEOUT).last_started_at
        wait_reading(killable)
        (child,) = worker.children()  # --concurrency 1: the child running the check
        os.kill(child, signal.SIGKILL)
        killed_at = timezone.now()
        assert state_of(project).last_finished_at is None, f"the check ended before the kill\n{killable.logs()}"
    expected = uninterrupted(project)
    answer = killable.rerun_result(result)

    assert answer == [{"project": project.slug, "groups": 2, "findings": answer[0]["findings"],
                       "created": len(expected), "updated": 0, "withdrawn": 0, "error": None}]
    assert_rerun_complete(project, expected, started_at, killed_at)
    assert worker.proc.poll() is None and "WorkerLostError" in worker.log.read_text(errors="replace")
