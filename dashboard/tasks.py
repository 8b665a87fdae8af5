"""Rollups recomputed off the request path when a Celery worker is configured (see dashboard/rollups.py)."""
from celery import shared_task


@shared_task(name="dashboard.refresh_rollup", acks_late=True)
def refresh_rollup(model_version_id: int) -> int | None:
    """Recompute one model version's rollup; returns its run count (None if the version is gone)."""
    from collector.models import ModelVersion

    from .rollups import refresh

    mv = ModelVersion.objects.filter(pk=model_version_id).first()
    return refresh(mv).runs if mv else None
