"""Celery tasks of profiling jobs. The work is in profiling.jobs; tasks only route it.

run_profiling_job runs on any worker (default queue); measure_on_macos is routed to
queue 'macos', consumed by a worker on a Mac. Neither is retried (unlike alerts.tasks, which talk to other
servers): run_job and run_macos_steps record a failure on the job, and a conversion that failed would fail again.
"""
from celery import shared_task

from . import jobs


@shared_task(name="profiling.run_job", acks_late=True)
def run_profiling_job(job_id: int) -> str:
    return jobs.run_job(job_id).status


@shared_task(name="profiling.measure_on_macos", acks_late=True)
def measure_on_macos(job_id: int) -> str:
    return jobs.run_macos_steps(job_id).macos_status


@shared_task(name="profiling.requeue_unqueued_jobs")
def requeue_unqueued_jobs() -> int:
    """The beat entry: queue again the jobs whose queueing failed (the broker was down); returns how many."""
    return jobs.requeue_unqueued()
