"""Telling a project about its new alerts: a signed webhook and e-mail (issue 6).

The webhook is a JSON POST of :func:`alert_payload`, signed with the project's secret::

    X-Perfboard-Signature: sha256=<hex HMAC-SHA256 of the raw body>
    X-Perfboard-Delivery: alert-<id>        (alert-<id>-withdrawn; the same on every retry: receivers drop repeats)
    X-Perfboard-Event: alert.created        (alert.withdrawn when a later check withdrew it; ping: the test a
                                            member sends from the settings page)

Receivers verify with :func:`signature` over the body bytes they received. Delivery failures (connection errors,
timeouts, 5xx, 408, 429) raise :class:`DeliveryFailed`, which the task wrapper retries with backoff; other 4xx
answers mean the receiver refuses the payload, which no retry changes (:class:`DeliveryRefused`).

Project members choose the URL, so unless settings.PERFBOARD["WEBHOOK_PRIVATE_ADDRESSES"] allows it (DEBUG), the
POST must not reach a loopback, private or link-local address (SSRF). The host is resolved once
(:func:`resolve_host`), every address it resolves to is vetted, and the connection is opened to those vetted
addresses and no others (:class:`_PinnedAdapter`): a name that resolves elsewhere a moment later (DNS rebinding)
changes nothing. The URL keeps its name, so the Host header, TLS SNI and the certificate check are those of the
name. Redirects are not followed (a 3xx is a refused delivery), and members are told of a refused target only that
it is not public, never anything it could have answered.
"""
import hashlib
import hmac
import ipaddress
import json
import logging
import smtplib
import socket
import uuid
from socket import timeout as SocketTimeout
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from perfboard.conf import perfboard_setting

from .models import Alert, NotificationSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Perfboard-Signature"
# webhook event -> (the Alert field that records its delivery, its X-Perfboard-Delivery)
ALERT_EVENTS = {"alert.created": ("webhook_delivered_at", "alert-{id}"),
                "alert.withdrawn": ("withdrawal_delivered_at", "alert-{id}-withdrawn")}
TIMEOUT_SECONDS = 10
VERIFY = True  # requests' ``verify`` for https webhooks: True (certifi's CAs) or a CA bundle path
NOT_PUBLIC = "refused: the address is not public"  # all a member is told of a refused target


class DeliveryFailed(Exception):
    """A delivery that may succeed later (retried)."""


class DeliveryRefused(Exception):
    """The receiver answered that it does not want this payload, or the target is refused (not retried).
    ``str()`` is for logs and task results; :attr:`shown` is what members are shown, when that must be less (a
    refused target: not its address, nothing it answered)."""

    def __init__(self, message: str, shown: str | None = None):
        super().__init__(message)
        self.shown = shown


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _private_allowed() -> bool:
    return bool(perfboard_setting("WEBHOOK_PRIVATE_ADDRESSES"))


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def not_public(address: str) -> bool:
    """Whether an IP address (text, an IPv6 zone allowed) is one a production webhook must not reach: loopback,
    private, link-local, reserved, multicast, or an IPv6 form of such an IPv4 address (mapped, NAT64, 6to4,
    Teredo)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(e is not None and not_public(str(e)) for e in embedded):
            return True
    return not ip.is_global or ip.is_multicast


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order, repeats dropped: the one lookup of a delivery.
    Raises socket.gaierror (or UnicodeError for a name IDNA cannot encode)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def private_address(url: str, resolve: bool = True) -> str | None:
    """The loopback, private, link-local or otherwise non-public address ``url``'s host is or resolves to, if any
    and unless settings.PERFBOARD["WEBHOOK_PRIVATE_ADDRESSES"] allows them. ``resolve=False`` checks literal
    addresses and "localhost" only (for forms: no DNS lookup while a member types). Deliveries use
    :func:`vetted_addresses`, which also fixes the addresses the POST connects to."""
    if _private_allowed():
        return None
    host = _host(url)
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if not resolve:
            return None
        try:
            addresses = resolve_host(host, _port(url))
        except (socket.gaierror, UnicodeError):
            return None  # unresolvable: a delivery's own lookup fails and is retried like any connection error
    return next((a.split("%")[0] for a in addresses if not_public(a)), None)


def _not_public(url: str, address: str) -> DeliveryRefused:
    return DeliveryRefused(f"webhook {url} is a private address ({address}); set PERFBOARD_WEBHOOK_PRIVATE_ADDRESSES=1 "
                           "to allow it", shown=f"{url} {NOT_PUBLIC}")


def vetted_addresses(url: str) -> list[str]:
    """Resolve ``url``'s host once and return its addresses, each vetted: the POST connects to these and nothing
    else. Raises DeliveryRefused if any of them is not public (unless private addresses are allowed), DeliveryFailed
    if the name does not resolve (retried: DNS may be down)."""
    host, allowed = _host(url), _private_allowed()
    if not allowed and (host == "localhost" or host.endswith(".localhost")):
        raise _not_public(url, host)
    try:
        addresses = resolve_host(host, _port(url))
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryFailed(f"webhook {url}: cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise DeliveryFailed(f"webhook {url}: {host} has no address")
    if not allowed and (private := next((a.split("%")[0] for a in addresses if not_public(a)), None)):
        raise _not_public(url, private)
    return addresses


def open_connection(address: tuple[str, int], timeout, source_address=None, socket_options=None):
    """A TCP connection to one vetted (IP, port): urllib3's create_connection, whose lookup of an IP literal is no
    DNS query. A module function so tests can route a public test address to a local server."""
    return create_connection(address, timeout, source_address=source_address, socket_options=socket_options)


class _PinnedConnectionMixin:
    """An urllib3 connection that opens its socket to the vetted addresses given to it, in order, instead of
    looking ``host`` up again. ``host`` stays the URL's name: Host header, SNI and certificate check use it."""

    def __init__(self, *args, addresses=(), **kwargs):
        self.addresses = list(addresses)
        super().__init__(*args, **kwargs)

    def _new_conn(self):
        error = NewConnectionError(self, f"no vetted address for {self.host}: not connecting")
        for address in self.addresses:
            try:
                return open_connection((address, self.port), self.timeout, source_address=self.source_address,
                                       socket_options=self.socket_options)
            except SocketTimeout:
                error = ConnectTimeoutError(self, f"Connection to {self.host} ({address}) timed out. "
                                                  f"(connect timeout={self.timeout})")
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection to {address}: {exc}")
        raise error


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    """Pools whose connections go to the vetted addresses of their (host, port); a host that was not vetted gets a
    pool with no address, whose connections fail without a lookup."""

    def __init__(self, pinned: dict[tuple[str, int], list[str]], **kwargs):
        super().__init__(**kwargs)
        self.pinned = pinned
        self.pool_classes_by_scheme = {"http": _PinnedHTTPConnectionPool, "https": _PinnedHTTPSConnectionPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["addresses"] = self.pinned.get((host.strip("[]").rstrip(".").lower(), port), [])
        return pool


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, pinned: dict[tuple[str, int], list[str]]):
        self.pinned = pinned
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _PinnedPoolManager(self.pinned, num_pools=connections, maxsize=maxsize, block=block,
                                              **pool_kwargs)


def _post_pinned(url: str, addresses: list[str], **kwargs) -> requests.Response:
    """POST to ``url`` over a connection to ``addresses`` only; no redirect followed, no proxy or .netrc from the
    environment (a proxy would look the name up again)."""
    with requests.Session() as session:
        session.trust_env = False
        adapter = _PinnedAdapter({(_host(url), _port(url)): addresses})
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session.post(url, allow_redirects=False, verify=VERIFY, **kwargs)


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
    """``task.delay(alert_id, *args)`` for each (task, *args) of ``calls`` and each alert, then set the ``mark``
    time of the alerts queued: queue first, mark after (at least once; the tasks themselves do not send twice).
    One UPDATE for them all: one per alert committed each on its own, 4 s for a fleet's first 771 alerts."""
    queued = []
    for alert_id in alert_ids:
        try:
            for task, *args in calls:
                task.delay(alert_id, *args)
        except Exception:  # the alerts are committed: a notification that cannot be queued must not fail the check
            log.exception("could not queue notifications of alert %s; the next check retries", alert_id)
            continue
        queued.append(alert_id)
    if queued:
        Alert.objects.filter(pk__in=queued).update(**{mark: timezone.now()})


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
    """POST ``payload`` to the project's webhook, signed; the receiver's status. Connects only to the addresses
    the host resolved to when vetted, follows no redirect. Raises DeliveryFailed (worth a retry) or DeliveryRefused
    (not; with ``shown`` when the target is not public)."""
    url = conf.webhook_url
    addresses = vetted_addresses(url)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Perfboard", "X-Perfboard-Event": event,
               "X-Perfboard-Delivery": delivery, SIGNATURE_HEADER: signature(conf.webhook_secret, body)}
    try:
        response = _post_pinned(url, addresses, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"webhook {url}: {exc}") from exc
    status = response.status_code
    response.close()
    if 300 <= status < 400:  # following it would POST to an address nobody vetted
        raise DeliveryRefused(f"webhook {url} answered {status}, a redirect; webhooks do not follow redirects: "
                              "save the URL it redirects to")
    if status >= 500 or status in (408, 429):
        raise DeliveryFailed(f"webhook {url} answered {status}")
    if status >= 400:
        raise DeliveryRefused(f"webhook {url} answered {status}")
    return status


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
            results.append((False, f"Webhook: {getattr(exc, 'shown', None) or exc}."))
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
    from insights.vocabulary import ALERT_METRIC_LABELS

    metric = ALERT_METRIC_LABELS.get(alert.metric, alert.metric)
    where = f"{alert.device.display_name} ({alert.chip})" if alert.device_id else f"all {alert.chip} devices"
    if alert.os_major:
        where += f", iOS {alert.os_major}"
    if alert.kind == "crash_rate":
        what = f"failure rate {alert.baseline:.1%} -> {alert.current:.1%}"
    elif alert.kind == "silent_fallback":
        what = (f"{alert.compute_units} runs on the CPU from {alert.version}: warm prediction "
                f"{alert.baseline:.4g} -> {alert.current:.4g} ms, as cpuOnly's")
    elif alert.kind == "placement":
        what = (f"Neural Engine share of ops {alert.baseline:.0%} -> {alert.current:.0%}; ops that left it: "
                f"{', '.join(alert.ops) or '(renamed ops)'}")
    else:
        what = f"{metric} {alert.baseline:.4g} -> {alert.current:.4g} ({alert.change:+.1%})"
    subject = f"[Perfboard] {alert.model} {alert.version}: {alert.kind.replace('_', ' ')} on {where}"
    lines = [f"Project: {alert.project.slug}", f"Model: {alert.model} {alert.version} "
             f"(baseline {alert.baseline_version})",
             f"Where: {where}, compute units {alert.compute_units}{_hints(alert)}",
             f"What: {what}", f"Runs: {alert.runs_baseline} baseline, {alert.runs_current} current"]
    if alert.p_value is not None:
        lines.append(f"p-value: {alert.p_value:.2g}")
    return subject, "\n".join(lines) + "\n"


def _hints(alert: Alert) -> str:
    """" + fastPrediction" for a configuration's own series; nothing for Apple's default hints."""
    from insights.vocabulary import Configuration

    hints = Configuration(alert.compute_units, alert.specialization_strategy, alert.reshape_frequency).hints
    return "".join(f" + {value}" for value in hints.values())
