"""Celery tasks of the regression check and its notifications.

Every task here goes through :func:`retryable_task` (Treeherder's ``retryable_task``): one retry policy for all,
exponential backoff with jitter, and a list of exceptions no retry can fix. Tasks are acknowledged late
(settings: acks_late, reject_on_worker_lost), so a worker killed mid-task leaves the message to another worker;
each task is safe to run again: the check finds the alerts it made (alerts.check), a delivered webhook or a sent
e-mail is recorded on the alert and not repeated.
"""
import logging
import random

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError

from . import check, notify

log = logging.getLogger(__name__)

# Retrying cannot fix these: bad input, a row that is gone, a constraint the data breaks, a refusing receiver.
NON_RETRYABLE_EXCEPTIONS = (ObjectDoesNotExist, ValidationError, IntegrityError, ValueError, TypeError, KeyError,
                            notify.DeliveryRefused)
MAX_RETRIES = 8


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: base * 2**retries, capped, with "equal jitter" (half of it
    random) so that deliveries that failed together do not retry together. Base and cap from PERFBOARD
    (RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)."""
    base = settings.PERFBOARD.get("RETRY_BASE_SECONDS", 10.0)
    cap = settings.PERFBOARD.get("RETRY_MAX_SECONDS", 3600.0)
    delay = min(cap, base * 2 ** retries)
    return delay / 2 + random.uniform(0, delay / 2)


def retryable_task(name: str, max_retries: int = MAX_RETRIES, **options):
    """Declare a Celery task whose failures are retried with :func:`backoff`, except NON_RETRYABLE_EXCEPTIONS."""

    def decorator(func):
        def run(self, *args, **kwargs):
            try:
                return func(*args, **kwargs)
            except NON_RETRYABLE_EXCEPTIONS:
                raise
            except Exception as exc:
                if self.request.retries >= self.max_retries:
                    raise
                countdown = backoff(self.request.retries)
                log.warning("task %s failed (%s); retry %d in %.1f s", name, exc, self.request.retries + 1,
                            countdown)
                raise self.retry(exc=exc, countdown=countdown)

        run.__name__, run.__qualname__, run.__doc__ = func.__name__, func.__qualname__, func.__doc__
        run.__module__ = func.__module__
        return shared_task(name=name, bind=True, acks_late=True, reject_on_worker_lost=True,
                           max_retries=max_retries, **options)(run)

    return decorator


@retryable_task("alerts.check_regressions")
def check_regressions(project: str | None = None, model: str | None = None, version: str | None = None) -> list:
    """The regression check: every project's series with new runs (the hourly schedule), or one model version."""
    from collector.models import Project

    if project:
        return [check.check_project(Project.objects.get(slug=project), model, version).as_dict()]
    return [r.as_dict() for r in check.check_all(model, version)]


@retryable_task("alerts.deliver_webhook")
def deliver_webhook(alert_id: int, event: str = "alert.created") -> str:
    """POST one alert event (alert.created, alert.withdrawn) to its project's webhook (signed); retried with backoff
    while the receiver fails."""
    return notify.deliver(alert_id, event)


@retryable_task("alerts.send_alert_email")
def send_alert_email(alert_id: int) -> str:
    """E-mail one new alert to its project's recipients."""
    return notify.email(alert_id)
