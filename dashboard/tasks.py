"""Rollups recomputed off the request path when a Celery worker is configured (see dashboard/rollups.py).

Not retried: they only read and write the database, and a rollup whose refresh failed is still stale, so the next
beat run (refresh_stale_rollups) or page view queues it again."""
from celery import shared_task


@shared_task(name="dashboard.refresh_rollup", acks_late=True)
def refresh_rollup(model_version_id: int) -> int | None:
    """Recompute one model version's rollup; returns its run count (None if the version is gone)."""
    from collector.models import ModelVersion

    from .rollups import refresh

    mv = ModelVersion.objects.filter(pk=model_version_id).first()
    return refresh(mv).runs if mv else None


@shared_task(name="dashboard.refresh_stale_rollups", acks_late=True)
def refresh_stale_rollups() -> int:
    """The beat entry: recompute every rollup that runs arrived for since it was made; returns how many. Safe to run
    twice or after a killed worker: a refreshed rollup is no longer stale."""
    from .rollups import refresh, stale_versions

    versions = list(stale_versions())
    for mv in versions:
        refresh(mv)
    return len(versions)
