"""The alerts page's "check" button with the task broker down (a closed port, not a mock): the page says the check
was not started, instead of answering 500."""
import pytest
from django.test import Client

from tests.broker import broker  # noqa: F401

pytestmark = pytest.mark.django_db


def test_check_button_with_the_broker_down_says_so(project, member, broker):  # noqa: F811
    broker.down()
    web = Client()
    web.force_login(member)
    r = web.post("/alerts/check", {"project": "acme", "model": "face-retouch", "version": "1.2.0"}, follow=True)
    assert r.status_code == 200 and r.redirect_chain[0][1] == 302
    page = r.content.decode()
    assert "regression check of face-retouch 1.2.0 could not be started: the task broker is unreachable" in page
    assert "started; new alerts appear here" not in page
