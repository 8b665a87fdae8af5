"""Pieces without a database: evidence figures, the tasks' retry options and their non-retryable list."""
from datetime import datetime, timedelta, timezone

from django.core.exceptions import ObjectDoesNotExist

from alerts import figures, tasks
from alerts.notify import DeliveryRefused, signature
from perfboard.conf import perfboard_setting


def test_timing_evidence_draws_both_windows_and_their_medians():
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    base = [(t0 + timedelta(hours=i), 10.0 + i % 3) for i in range(10)]
    cur = [(t0 + timedelta(hours=20 + i), 12.0) for i in range(8)]
    fig = figures.timing_evidence(base, cur, metric_label="warm prediction (median)", baseline_version="3.2.0",
                                  version="3.3.0", baseline_value=11.0, current_value=12.0)
    points = [t for t in fig.data if t.mode == "markers"]
    medians = [t for t in fig.data if t.mode == "lines"]
    assert [len(t.y) for t in points] == [10, 8] and [t.y[0] for t in medians] == [11.0, 12.0]
    assert "3.3.0" in fig.layout.title.text
    html = figures.to_html(fig, "alert-evidence")
    assert 'id="alert-evidence"' in html and "cdn.plot.ly" not in html


def test_rate_and_placement_evidence():
    rate = figures.rate_evidence(0.0, 67, 0.38, 63, baseline_version="3.1.0", version="3.2.0")
    assert list(rate.data[0].y) == [0.0, 0.38] and "of 63" in rate.data[0].text[1]
    placement = figures.placement_evidence(1.0, 0.5, baseline_label="1.0.0", current_label="1.1.0")
    assert list(placement.data[0].y) == [1.0, 0.5]


def test_tasks_retry_with_celerys_own_options():
    for task in (tasks.check_regressions, tasks.deliver_webhook, tasks.send_alert_email):
        assert task.autoretry_for == (Exception,) and task.dont_autoretry_for == tasks.NON_RETRYABLE_EXCEPTIONS
        assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter, task.max_retries) == (
            perfboard_setting("RETRY_BASE_SECONDS"), perfboard_setting("RETRY_MAX_SECONDS"), True,
            perfboard_setting("RETRY_MAX_RETRIES"))
        assert task.acks_late and task.reject_on_worker_lost
    assert ObjectDoesNotExist in tasks.NON_RETRYABLE_EXCEPTIONS and DeliveryRefused in tasks.NON_RETRYABLE_EXCEPTIONS


def test_non_retryable_errors_fail_at_once_and_others_are_retried(monkeypatch):
    calls = []

    from perfboard.celery import app

    @app.task(name="alerts.tests.flaky", **tasks.RETRY)
    def flaky(error):
        calls.append(error)
        raise {"gone": ObjectDoesNotExist, "bad": ValueError, "down": ConnectionError}[error]("no")

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    monkeypatch.setattr(flaky, "max_retries", 2)
    assert flaky.apply(args=["gone"]).failed() and flaky.apply(args=["bad"]).failed()
    assert calls == ["gone", "bad"]  # once each: no retry
    assert flaky.apply(args=["down"], throw=False).failed()
    assert calls[2:] == ["down"] * 3  # the first attempt and two retries


def test_signature_is_hmac_sha256_of_the_body():
    assert signature("key", b'{"id":1}') == "sha256=c95c6a7c2c7c761e984c68cf64b4bca93f07242900aafdbb328d3bb75ab0dcb0"
    assert signature("other", b'{"id":1}') != signature("key", b'{"id":1}')
