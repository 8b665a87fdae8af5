"""The Celery app, and `publish`: the one way request code (and the beat tasks that repair its failures) hands work
to the broker. Without CELERY_BROKER_URL, tasks run in-process (the embedded default)."""
import logging
import os
from dataclasses import dataclass

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")

app = Celery("perfboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)


@task_prerun.connect
def _drop_unusable_connections(task=None, **kwargs) -> None:
    """Before a worker's task, what Django does before a request: close database connections that are broken or
    older than CONN_MAX_AGE (settings: CELERY_DB_REUSE_MAX keeps them between tasks). Not for a task run in-process,
    inside its caller's transaction."""
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()

BROKER_UNREACHABLE = "the task broker is unreachable"


@dataclass(frozen=True)
class Published:
    """What `publish` did: the task's id when it was queued (or run in-process), else `error`, a phrase for users."""
    task_id: str = ""
    error: str = ""

    def __bool__(self) -> bool:
        return not self.error


def runs_in_process() -> bool:
    """No broker (the embedded set-up): tasks run in the calling process, and `publish` runs them there."""
    return bool(app.conf.task_always_eager)


def publish(task, args=(), kwargs=None, **options) -> Published:
    """Queue ``task`` without making the caller wait for the broker, and say whether it was queued.

    One attempt on a connection of its own, bounded by PERFBOARD["BROKER_PUBLISH_TIMEOUT"] seconds to connect and
    to send (no publish retries, no reconnection loop: a web request must not hang on a broker that is down, where
    kombu's defaults retry for about 6 s and the Redis result backend for 20). Results are not subscribed to
    (``ignore_result``): nobody waits for them, and the result backend is the same unreachable server. A broker
    that cannot be reached is logged and returned as ``Published(error=...)``; the caller must leave its work
    marked as not queued, so that it is queued again later, and tell the user. In-process, the task runs now, as
    ``apply_async`` does (its exceptions propagate)."""
    if runs_in_process():
        return Published(task_id=task.apply_async(args, kwargs, **options).id or "")
    from kombu.exceptions import OperationalError

    from .conf import perfboard_setting

    timeout = float(perfboard_setting("BROKER_PUBLISH_TIMEOUT"))
    conn = app.connection_for_write(connect_timeout=timeout, transport_options={
        "max_retries": 0, "socket_connect_timeout": timeout, "socket_timeout": timeout})
    errors = (OperationalError, OSError, *conn.connection_errors, *conn.channel_errors)
    try:
        with conn:
            result = task.apply_async(args, kwargs, connection=conn, retry=False, ignore_result=True, **options)
    except errors as exc:
        log.warning("could not queue %s%r: %s: %s", task.name, tuple(args or ()), type(exc).__name__, exc)
        return Published(error=BROKER_UNREACHABLE)
    return Published(task_id=result.id or "")
