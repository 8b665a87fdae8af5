"""Notifications: a signed webhook to a local HTTP server (retried after a failure), e-mail through Django's mail."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from alerts import tasks
from alerts.check import check_project, save_findings
from alerts.models import Alert, NotificationSettings
from alerts.notify import SIGNATURE_HEADER, private_address
from insights.regressions import Finding, SeriesKey

pytestmark = pytest.mark.django_db

SECRET = "s3cret-shared-with-the-receiver"


class Receiver:
    """An HTTP server on 127.0.0.1 answering each POST with the next status of ``statuses`` (then 200)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/perfboard"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def verified(headers, body) -> bool:
    """What a receiver does: recompute the HMAC over the raw body and compare in constant time."""
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers[SIGNATURE_HEADER], expected)


@pytest.fixture
def settings_for(project, settings, monkeypatch):
    """Notification settings of "acme". Tasks are run with ``apply`` (in this process, retries included at once,
    whatever the broker and the backoff), which must report a failure in its result rather than raise it: a retry
    re-applies the task without ``throw=False``, so eager propagation is switched off here."""
    from perfboard.celery import app

    # The receiver listens on 127.0.0.1, a private address production refuses (test_private_webhook_...).
    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": True}
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)

    def make(url="", recipients=""):
        return NotificationSettings.objects.create(project=project, webhook_url=url, webhook_secret=SECRET,
                                                   email_recipients=recipients)

    return make


def test_webhook_is_signed_and_retried_after_the_receiver_fails_once(settings_for, make_alert):
    alert = make_alert()
    with Receiver(statuses=[503]) as receiver:
        settings_for(url=receiver.url)
        result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.get() == "delivered"
    assert len(receiver.requests) == 2  # the failure, then the retry
    for headers, body in receiver.requests:
        assert verified(headers, body)
        assert headers["X-Perfboard-Delivery"] == f"alert-{alert.id}"
    payload = json.loads(receiver.requests[-1][1])
    assert payload["event"] == "alert.created" and payload["project"] == "acme"
    assert payload["alert"]["id"] == alert.id and payload["alert"]["metric"] == "prediction_ms_median"
    assert not verified({SIGNATURE_HEADER: receiver.requests[-1][0][SIGNATURE_HEADER]}, body + b" ")
    alert.refresh_from_db()
    assert alert.webhook_delivered_at is not None
    # A redelivered task message (acks late) does not post twice.
    assert tasks.deliver_webhook.apply(args=[alert.id], throw=False).get() == "already delivered"
    assert len(receiver.requests) == 2


def test_a_receiver_that_refuses_the_payload_is_not_retried(settings_for, make_alert):
    alert = make_alert()
    with Receiver(statuses=[404]) as receiver:
        settings_for(url=receiver.url)
        result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.failed() and len(receiver.requests) == 1


def test_unreachable_webhook_gives_up_after_the_retries(settings_for, make_alert, monkeypatch):
    monkeypatch.setattr(tasks.deliver_webhook, "max_retries", 2)
    alert = make_alert()
    settings_for(url="http://127.0.0.1:9/nothing-listens-here")
    result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.failed() and result.traceback and "DeliveryFailed" in result.traceback
    alert.refresh_from_db()
    assert alert.webhook_delivered_at is None


def test_private_webhook_address_is_refused_in_production_and_nothing_is_posted(settings_for, make_alert, settings):
    alert = make_alert()
    with Receiver(statuses=[]) as receiver:
        settings_for(url=receiver.url)
        settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": False}
        result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.failed() and "DeliveryRefused" in result.traceback and "127.0.0.1" in result.traceback
    assert receiver.requests == []  # refused before connecting, and not retried
    alert.refresh_from_db()
    assert alert.webhook_delivered_at is None


@pytest.mark.parametrize("url, address", [
    ("http://10.1.2.3/hook", "10.1.2.3"), ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
    ("https://[::1]:8443/hook", "::1"), ("http://localhost:8000/hook", "localhost"),
    ("http://192.168.0.7/hook", "192.168.0.7"), ("http://93.184.215.14/hook", None),
])
def test_private_addresses_are_named(url, address, settings):
    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": False}
    assert private_address(url, resolve=False) == address
    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": True}
    assert private_address(url, resolve=False) is None


def test_alert_email_goes_to_the_recipients_once(settings_for, make_alert):
    alert = make_alert()
    settings_for(recipients="ml-team@example.com,\noncall@example.com")
    assert tasks.send_alert_email.apply(args=[alert.id], throw=False).get() == "sent"
    assert tasks.send_alert_email.apply(args=[alert.id], throw=False).get() == "already sent"
    (message,) = mail.outbox
    assert message.to == ["ml-team@example.com", "oncall@example.com"]
    assert "face-retouch 3.3.0" in message.subject and "+15.7%" in message.body


def test_new_alerts_are_notified_once_even_when_a_check_died_before_notifying(
        settings_for, project, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda alert_id: sent.append(("webhook", alert_id)))
    monkeypatch.setattr(tasks.send_alert_email, "delay", lambda alert_id: sent.append(("email", alert_id)))
    settings_for(url="http://127.0.0.1:9/hook", recipients="ml-team@example.com")
    finding = Finding("slowdown", SeriesKey("m", "A16 Bionic", None, "all", "prediction_ms_median"), "1.1.0",
                      "1.0.0", 10.0, 12.0, 0.2, 1e-5, 20, 20, list(range(20)), list(range(20, 40)))
    created, _, _ = save_findings(project, [finding])  # a check killed here: stored, never notified
    assert sent == [] and save_findings(project, [finding]) == ([], 0, 0)
    with django_capture_on_commit_callbacks(execute=True):
        check_project(project)  # the next check (no runs) queues what is pending
    with django_capture_on_commit_callbacks(execute=True):
        check_project(project)
    assert sent == [("webhook", created[0]), ("email", created[0])]
    assert Alert.objects.get().notified_at is not None


def _send_test(member):
    from django.test import Client

    web = Client()
    web.force_login(member)
    return web.post("/alerts/acme/notifications", {"send_test": "1"}, follow=True).content.decode()


def test_a_member_sends_a_signed_test_ping_and_e_mail_and_sees_the_answers(settings_for, member):
    with Receiver() as receiver:
        settings_for(url=receiver.url, recipients="ops@example.com")
        page = _send_test(member)
    ((headers, body),) = receiver.requests
    assert verified(headers, body) and headers["X-Perfboard-Event"] == "ping"
    assert json.loads(body)["event"] == "ping" and json.loads(body)["project"] == "acme"
    assert f"Webhook: {receiver.url} answered 200 to a signed ping." in page
    assert [m.to for m in mail.outbox] == [["ops@example.com"]] and "E-mail: test sent to ops@example.com." in page


def test_a_failing_webhook_test_says_what_the_receiver_answered(settings_for, member):
    with Receiver(statuses=[500]) as receiver:
        settings_for(url=receiver.url)
        page = _send_test(member)
    assert len(receiver.requests) == 1 and f"Webhook: webhook {receiver.url} answered 500." in page


def test_a_test_without_settings_says_there_is_nothing_to_send(member):
    assert "Nothing to test: save a webhook URL or e-mail recipients first." in _send_test(member)


def test_people_outside_the_project_cannot_send_its_test(settings_for, outsider):
    from django.test import Client

    with Receiver() as receiver:
        settings_for(url=receiver.url)
        web = Client()
        web.force_login(outsider)
        assert web.post("/alerts/acme/notifications", {"send_test": "1"}).status_code == 404
    assert receiver.requests == []


def test_the_webhook_hears_of_a_withdrawal_once_and_of_a_restored_alert_again(settings_for, project, monkeypatch):
    from alerts.notify import notify_pending

    # run each queued delivery here and now, whatever the broker
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda *args: tasks.deliver_webhook.apply(args=args))
    finding = Finding("slowdown", SeriesKey("m", "A16 Bionic", None, "all", "prediction_ms_median"), "1.1.0",
                      "1.0.0", 10.0, 12.0, 0.2, 1e-5, 20, 20, list(range(20)), list(range(20, 40)))
    scope = [("m", ["A16 Bionic"], None)]  # what the check re-read
    with Receiver() as receiver:
        settings_for(url=receiver.url)
        (alert_id,), _, _ = save_findings(project, [finding], scope)
        notify_pending(project.id)
        assert save_findings(project, [], scope) == ([], 0, 1)  # a later check no longer finds it
        notify_pending(project.id)
        notify_pending(project.id)  # told once
        save_findings(project, [finding], scope)  # found again
        notify_pending(project.id)
    events = [(h["X-Perfboard-Event"], h["X-Perfboard-Delivery"], json.loads(b)["alert"]["withdrawn_at"] is None)
              for h, b in receiver.requests]
    assert events == [("alert.created", f"alert-{alert_id}", True),
                      ("alert.withdrawn", f"alert-{alert_id}-withdrawn", False),
                      ("alert.created", f"alert-{alert_id}", True)]
    assert all(verified(h, b) for h, b in receiver.requests)
