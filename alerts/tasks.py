"""Celery tasks of the regression check and its notifications.

Every task here retries with Celery's own options (:data:`RETRY`): any exception but the ones no retry can fix
(:data:`NON_RETRYABLE_EXCEPTIONS`) is retried, after exponential backoff with full jitter (PERFBOARD
RETRY_BASE_SECONDS doubled each retry, at most RETRY_MAX_SECONDS, RETRY_MAX_RETRIES times), so deliveries that failed
together do not retry together. Tasks are acknowledged late (settings: acks_late, reject_on_worker_lost), so a
worker killed mid-task leaves the message to another worker; each task is safe to run again: the check finds the
alerts it made (alerts.check), a delivered webhook or a sent e-mail is recorded on the alert and not repeated.
"""
from celery import shared_task
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError

from perfboard.conf import perfboard_setting

from . import check, notify

# Retrying cannot fix these: bad input, a row that is gone, a constraint the data breaks, a refusing receiver.
NON_RETRYABLE_EXCEPTIONS = (ObjectDoesNotExist, ValidationError, IntegrityError, ValueError, TypeError, KeyError,
                            notify.DeliveryRefused)
# Celery's retry options (read when the tasks are declared; retry_backoff is a whole number of seconds).
RETRY = {
    "autoretry_for": (Exception,),
    "dont_autoretry_for": NON_RETRYABLE_EXCEPTIONS,
    "retry_backoff": perfboard_setting("RETRY_BASE_SECONDS"),
    "retry_backoff_max": perfboard_setting("RETRY_MAX_SECONDS"),
    "retry_jitter": True,
    "max_retries": perfboard_setting("RETRY_MAX_RETRIES"),
    "acks_late": True,
    "reject_on_worker_lost": True,
}


@shared_task(name="alerts.check_regressions", **RETRY)
def check_regressions(project: str | None = None, model: str | None = None, version: str | None = None) -> list:
    """The regression check: every project's series with new runs (the hourly schedule), or one model version."""
    from collector.models import Project

    if project:
        return [check.check_project(Project.objects.get(slug=project), model, version).as_dict()]
    return [r.as_dict() for r in check.check_all(model, version)]


@shared_task(name="alerts.deliver_webhook", **RETRY)
def deliver_webhook(alert_id: int, event: str = "alert.created") -> str:
    """POST one alert event (alert.created, alert.withdrawn) to its project's webhook (signed); retried with backoff
    while the receiver fails."""
    return notify.deliver(alert_id, event)


@shared_task(name="alerts.send_alert_email", **RETRY)
def send_alert_email(alert_id: int) -> str:
    """E-mail one new alert to its project's recipients."""
    return notify.email(alert_id)
