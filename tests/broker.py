"""The `broker` fixture: where perfboard.celery.publish sends tasks during one test, as a user would meet it.

``broker.down()`` points publishing at a closed port (nothing listens on 127.0.0.1:1: connections are refused at
once, as with a stopped Redis); ``broker.up()`` at a real Redis (CELERY_BROKER_URL when it is a Redis URL, else
redis://127.0.0.1:6379/5; the test is skipped when none answers), whose queued messages ``broker.take`` reads back;
``broker.none()`` runs tasks in-process, as without CELERY_BROKER_URL. All is restored after the test. Import it
into a test module with ``from tests.broker import broker  # noqa: F401``.
"""
import base64
import json
import os

import pytest

DOWN = "redis://127.0.0.1:1/0"
_env = os.environ.get("CELERY_BROKER_URL", "")
UP = _env if _env.startswith("redis://") else "redis://127.0.0.1:6379/5"


class Broker:
    def __init__(self, app):
        self.app = app
        self.client = None

    def none(self):
        """No broker, the embedded set-up: tasks run in-process."""
        self.app.conf.task_always_eager = True

    def down(self):
        self.app.conf.broker_write_url = DOWN
        self.app.conf.task_always_eager = False

    def up(self):
        import redis

        client = redis.Redis.from_url(UP, socket_connect_timeout=2)
        try:
            client.ping()
        except redis.exceptions.ConnectionError:
            pytest.skip(f"needs a Redis at {UP}")
        self.client = client
        self.app.conf.broker_write_url = UP
        self.app.conf.task_always_eager = False

    def take(self, task: str, queue: str = "celery") -> list[dict]:
        """The messages of ``task`` waiting in ``queue`` on the real Redis, removed from it (other messages stay):
        [{"id", "args"}]."""
        found = []
        for raw in self.client.lrange(queue, 0, -1):
            message = json.loads(raw)
            headers = message["headers"]
            if headers.get("task") == task:
                args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                found.append({"id": headers["id"], "args": args})
                self.client.lrem(queue, 1, raw)
        return found


@pytest.fixture
def broker():
    from perfboard.celery import app

    saved = app.conf.get("broker_write_url"), app.conf.task_always_eager
    try:
        yield Broker(app)
    finally:
        app.conf.broker_write_url, app.conf.task_always_eager = saved
