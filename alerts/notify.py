"""Telling a project about its new alerts: a signed webhook and e-mail (issue 6).

The webhook is a JSON POST of :func:`alert_payload`, signed with the project's secret::

    X-Perfboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>
    X-Perfboard-Delivery: alert-<id>        (alert-<id>-withdrawn; the same on every retry: receivers drop repeats)
    X-Perfboard-Event: alert.created        (alert.withdrawn when a later check withdrew it; ping: the test a
                                            member sends from the settings page)

Receivers verify with :func:`signature` over the body bytes they received. Delivery failures (connection errors,
timeouts, 5xx, 408, 429) raise :class:`DeliveryFailed`, which the task wrapper retries with backoff; other 4xx
answers mean the receiver refuses the payload, which no retry changes (:class:`DeliveryRefused`).
"""
import hashlib
import hmac
import ipaddress
import json
import logging
import smtplib
import socket
import uuid
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import Alert, NotificationSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Perfboard-Signature"
# webhook event -> (the Alert field that records its delivery, its X-Perfboard-Delivery)
ALERT_EVENTS = {"alert.created": ("webhook_delivered_at", "alert-{id}"),
                "alert.withdrawn": ("withdrawal_delivered_at", "alert-{id}-withdrawn")}
TIMEOUT_SECONDS = 10


class DeliveryFailed(Exception):
    """A delivery that may succeed later (retried)."""


class DeliveryRefused(Exception):
    """The receiver answered that it does not want this payload (not retried)."""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def private_address(url: str, resolve: bool = True) -> str | None:
    """The loopback, private, link-local or otherwise non-public address ``url``'s host is or resolves to, if any
    and unless settings.PERFBOARD["WEBHOOK_PRIVATE_ADDRESSES"] allows them. ``resolve=False`` checks literal
    addresses and "localhost" only (for forms: no DNS lookup while a member types)."""
    if settings.PERFBOARD.get("WEBHOOK_PRIVATE_ADDRESSES", False):
        return None
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return None
        try:
            addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(host, None)}
        except (socket.gaierror, UnicodeError):
            return None  # unresolvable: the POST fails and is retried like any connection error
    return next((str(a) for a in addresses if not a.is_global or a.is_multicast), None)


def alert_payload(alert: Alert, event: str = "alert.created") -> dict:
    from .serializers import AlertSerializer

    return {"event": event, "project": alert.project.slug, "alert": AlertSerializer(alert).data}


def notify_pending(project_id: int) -> int:
    """Queue a webhook delivery and an e-mail for each alert of the project not notified yet, as the project's
    settings ask, and an ``alert.withdrawn`` webhook for each notified alert a check withdrew since. Called once a
    check's alerts are committed; a check killed before that leaves them unmarked, and the next check queues them.
    Returns the number of alerts handled."""
    from .tasks import deliver_webhook, send_alert_email

    alerts = Alert.objects.filter(project_id=project_id).order_by("id")
    pending = list(alerts.filter(notified_at__isnull=True).values_list("id", flat=True))
    withdrawn = list(alerts.filter(notified_at__isnull=False, withdrawn_at__isnull=False,
                                   withdrawal_notified_at__isnull=True).values_list("id", flat=True))
    if not pending and not withdrawn:
        return 0
    n = NotificationSettings.objects.filter(project_id=project_id).first()
    webhook = [(deliver_webhook,)] if n and n.webhook_url else []
    _queue(pending, webhook + ([(send_alert_email,)] if n and n.recipients() else []), "notified_at")
    # webhook only: receivers that act on alerts must learn that one is gone
    _queue(withdrawn, [(deliver_webhook, "alert.withdrawn")] if webhook else [], "withdrawal_notified_at")
    return len(pending) + len(withdrawn)


def _queue(alert_ids: list[int], calls: list[tuple], mark: str) -> None:
    """``task.delay(alert_id, *args)`` for each (task, *args) of ``calls`` and each alert, then set the alert's
    ``mark`` time: queue first, mark after (at least once; the tasks themselves do not send twice)."""
    for alert_id in alert_ids:
        try:
            for task, *args in calls:
                task.delay(alert_id, *args)
        except Exception:  # the alerts are committed: a notification that cannot be queued must not fail the check
            log.exception("could not queue notifications of alert %s; the next check retries", alert_id)
            continue
        Alert.objects.filter(pk=alert_id).update(**{mark: timezone.now()})


def deliver(alert_id: int, event: str = "alert.created") -> str:
    """POST one alert event to its project's webhook, once: a delivered event is not sent again. ``alert.created``
    for a new alert, ``alert.withdrawn`` when a later check withdrew it (not sent if it was restored since)."""
    delivered_field, delivery = ALERT_EVENTS[event]
    alert = Alert.objects.select_related("project", "device").get(pk=alert_id)
    if event == "alert.withdrawn" and alert.withdrawn_at is None:
        return "restored"
    if getattr(alert, delivered_field) is not None:
        return "already delivered"
    conf = NotificationSettings.objects.filter(project=alert.project).first()
    if conf is None or not conf.webhook_url:
        return "no webhook"
    post(conf, alert_payload(alert, event), event, delivery.format(id=alert.id))
    Alert.objects.filter(pk=alert.pk).update(**{delivered_field: timezone.now()})
    return "delivered"


def post(conf: NotificationSettings, payload: dict, event: str, delivery: str) -> int:
    """POST ``payload`` to the project's webhook, signed; the receiver's status. Raises DeliveryFailed (worth a
    retry) or DeliveryRefused (not)."""
    if (address := private_address(conf.webhook_url)) is not None:
        raise DeliveryRefused(f"webhook {conf.webhook_url} is a private address ({address}); set "
                              "PERFBOARD_WEBHOOK_PRIVATE_ADDRESSES=1 to allow it")
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Perfboard", "X-Perfboard-Event": event,
               "X-Perfboard-Delivery": delivery, SIGNATURE_HEADER: signature(conf.webhook_secret, body)}
    try:
        response = requests.post(conf.webhook_url, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"webhook {conf.webhook_url}: {exc}") from exc
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise DeliveryFailed(f"webhook {conf.webhook_url} answered {response.status_code}")
    if response.status_code >= 400:
        raise DeliveryRefused(f"webhook {conf.webhook_url} answered {response.status_code}")
    return response.status_code


def send_test(conf: NotificationSettings) -> list[tuple[bool, str]]:
    """Send a ``ping`` event to the webhook and a test e-mail to the recipients now, while the member waits, so a
    wrong URL, secret or address shows at once instead of at the first regression. (ok, message) per channel."""
    results = []
    if conf.webhook_url:
        payload = {"event": "ping", "project": conf.project.slug, "sent_at": timezone.now().isoformat()}
        try:
            status = post(conf, payload, "ping", f"ping-{uuid.uuid4()}")
            results.append((True, f"Webhook: {conf.webhook_url} answered {status} to a signed ping."))
        except (DeliveryFailed, DeliveryRefused) as exc:
            results.append((False, f"Webhook: {exc}."))
    if recipients := conf.recipients():
        try:
            send_mail(f"[Perfboard] test notification for {conf.project.slug}",
                      f"Alerts of {conf.project.slug} will be sent to this address.\n", None, recipients)
            results.append((True, f"E-mail: test sent to {', '.join(recipients)}."))
        except (smtplib.SMTPException, OSError) as exc:
            results.append((False, f"E-mail: {exc}."))
    return results or [(False, "Nothing to test: save a webhook URL or e-mail recipients first.")]


def email(alert_id: int) -> str:
    """One e-mail per new alert to the project's recipients, through Django's mail settings."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update(of=("self",)).select_related("project", "device").get(pk=alert_id)
        if alert.email_sent_at is not None:
            return "already sent"
        conf = NotificationSettings.objects.filter(project=alert.project).first()
        recipients = conf.recipients() if conf else []
        if not recipients:
            return "no recipients"
        subject, text = email_text(alert)
        send_mail(subject, text, None, recipients)  # an SMTP error propagates: the task retries
        Alert.objects.filter(pk=alert.pk).update(email_sent_at=timezone.now())
    return "sent"


def email_text(alert: Alert) -> tuple[str, str]:
    from insights.regressions import METRIC_LABELS

    metric = METRIC_LABELS.get(alert.metric, alert.metric)
    where = f"{alert.device.display_name} ({alert.chip})" if alert.device_id else f"all {alert.chip} devices"
    if alert.os_major:
        where += f", iOS {alert.os_major}"
    if alert.kind == "crash_rate":
        what = f"failure rate {alert.baseline:.1%} -> {alert.current:.1%}"
    elif alert.kind == "placement":
        what = (f"Neural Engine share of ops {alert.baseline:.0%} -> {alert.current:.0%}; ops that left it: "
                f"{', '.join(alert.ops) or '(renamed ops)'}")
    else:
        what = f"{metric} {alert.baseline:.4g} -> {alert.current:.4g} ({alert.change:+.1%})"
    subject = f"[Perfboard] {alert.model} {alert.version}: {alert.kind.replace('_', ' ')} on {where}"
    lines = [f"Project: {alert.project.slug}", f"Model: {alert.model} {alert.version} "
             f"(baseline {alert.baseline_version})", f"Where: {where}, compute units {alert.compute_units}",
             f"What: {what}", f"Runs: {alert.runs_baseline} baseline, {alert.runs_current} current"]
    if alert.p_value is not None:
        lines.append(f"p-value: {alert.p_value:.2g}")
    return subject, "\n".join(lines) + "\n"
