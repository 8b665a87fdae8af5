"""Embedded mode (no broker): profiling jobs run in a background thread of the web process, one at a time, so the
upload request returns at once and the job page shows the stage and progress as they change (issue 16, item 6).

A job the process did not finish (the server stopped) stays `running`; uploading the model again starts it anew.
"""
from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="profiling-job")


def _run(job_id: int, run) -> None:
    from django.db import connections

    try:
        run(job_id)
    finally:
        connections.close_all()  # this thread's connections; the request's are its own


def start(job_id: int, run) -> tuple[str, Future]:
    """Run ``run(job_id)`` after the jobs already started; returns a task id for the job row and the future."""
    return f"embedded-{uuid.uuid4()}", _executor.submit(_run, job_id, run)


def wait_idle(timeout: float = 300.0) -> None:
    """Return once every job started so far has finished (one worker runs them in order: a no-op queued now runs
    last). Tests call it so that no job thread outlives its test's database."""
    _executor.submit(lambda: None).result(timeout=timeout)
