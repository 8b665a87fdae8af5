"""Celery tasks of the collector."""
from celery import shared_task

from . import sketches


@shared_task(name="collector.fold_pending_sketches")
def fold_pending_sketches() -> int:
    """Add the runs uploads left pending to their sketch rows (``collector.sketches.fold_pending``): queued after
    each upload (at most once a second per web process) and by Celery beat, should a queueing have failed."""
    return sketches.fold_pending()
