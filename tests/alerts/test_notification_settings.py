"""The notification settings page: members edit their project's webhook and e-mail recipients; the secret is
write-only; other people get 404."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from alerts.models import NotificationSettings

pytestmark = pytest.mark.django_db

URL = "/alerts/acme/notifications"
SECRET = "stored-secret-of-the-receiver-0123"


@pytest.fixture
def web(member):
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def stored(project):
    return NotificationSettings.objects.create(project=project, webhook_url="https://hooks.acme.test/perfboard",
                                               webhook_secret=SECRET, email_recipients="ops@acme.test")


def values(project):
    conf = NotificationSettings.objects.get(project=project)
    return conf.webhook_url, conf.webhook_secret, conf.email_recipients


def test_member_saves_settings_and_they_are_stored(web, project, stored):
    page = web.get(URL)
    assert page.status_code == 200 and "hooks.acme.test" in page.content.decode()
    r = web.post(URL, {"webhook_url": "https://hooks.example.com/new", "secret": "a-new-secret-of-20-chars",
                       "email_recipients": "a@acme.test, b@acme.test\nc@acme.test\na@acme.test"})
    assert r.status_code == 302 and r["Location"] == URL
    assert values(project) == ("https://hooks.example.com/new", "a-new-secret-of-20-chars",
                               "a@acme.test\nb@acme.test\nc@acme.test")
    assert NotificationSettings.objects.get(project=project).recipients() == ["a@acme.test", "b@acme.test",
                                                                             "c@acme.test"]
    assert "Notification settings saved" in web.get(URL).content.decode()


def test_first_settings_of_a_project_are_created(web, project):
    r = web.post(URL, {"webhook_url": "", "email_recipients": "ops@acme.test"})
    assert r.status_code == 302
    assert values(project) == ("", "", "ops@acme.test")


@pytest.mark.parametrize("url", ["ftp://files.acme.test/hook", "file:///etc/passwd", "javascript:alert(1)"])
def test_other_url_schemes_are_refused(web, project, stored, url):
    r = web.post(URL, {"webhook_url": url, "email_recipients": "new@acme.test"})
    assert r.status_code == 200
    assert "Webhook URL must start with http:// or https://" in r.content.decode()
    assert "webhook_url" in r.context["form"].errors
    assert values(project) == ("https://hooks.acme.test/perfboard", SECRET, "ops@acme.test")


def test_private_webhook_address_is_refused_in_production(web, project, stored, settings):
    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": False}
    r = web.post(URL, {"webhook_url": "http://169.254.169.254/latest/meta-data", "email_recipients": "ops@acme.test"})
    assert r.status_code == 200
    assert "must be a public address, not 169.254.169.254" in r.context["form"].errors["webhook_url"][0]
    assert values(project) == ("https://hooks.acme.test/perfboard", SECRET, "ops@acme.test")


def test_bad_email_is_refused_and_named(web, project, stored):
    r = web.post(URL, {"webhook_url": "https://hooks.example.com/new",
                       "email_recipients": "good@acme.test\nnot-an-address, also@bad@x"})
    assert r.status_code == 200
    errors = r.context["form"].errors["email_recipients"]
    assert "not-an-address" in errors[0] and "also@bad@x" in errors[0] and "good@acme.test" not in errors[0]
    assert "not-an-address" in r.content.decode()
    assert values(project) == ("https://hooks.acme.test/perfboard", SECRET, "ops@acme.test")


def test_secret_is_never_in_the_page(web, project, stored):
    assert SECRET not in web.get(URL).content.decode()
    # Nor a typed one sent back with a form that has errors.
    typed = "typed-but-refused-secret-123"
    r = web.post(URL, {"webhook_url": "ftp://x.test/", "secret": typed, "email_recipients": ""})
    assert r.status_code == 200 and typed not in r.content.decode() and SECRET not in r.content.decode()
    saved = web.post(URL, {"webhook_url": "https://hooks.acme.test/perfboard", "secret": typed}, follow=True)
    assert typed not in saved.content.decode() and "<strong>set</strong>" in saved.content.decode()
    assert values(project)[1] == typed


def test_blank_secret_keeps_the_stored_one(web, project, stored):
    r = web.post(URL, {"webhook_url": "https://hooks.acme.test/v2", "secret": "", "email_recipients": ""})
    assert r.status_code == 302
    assert values(project) == ("https://hooks.acme.test/v2", SECRET, "")


def test_generated_secret_is_shown_once(web, project, stored):
    r = web.post(URL, {"webhook_url": "https://hooks.acme.test/perfboard", "generate_secret": "on"})
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    secret = values(project)[1]
    assert secret != SECRET and len(secret) >= 32 and secret in r.content.decode()
    assert secret not in web.get(URL).content.decode()


def test_webhook_without_a_secret_gets_one_generated(web, project):
    r = web.post(URL, {"webhook_url": "https://hooks.acme.test/perfboard"})
    assert r.status_code == 200
    secret = values(project)[1]
    assert len(secret) >= 32 and secret in r.content.decode()


def test_short_secret_or_secret_and_generate_are_refused(web, project, stored):
    r = web.post(URL, {"webhook_url": "https://hooks.acme.test/perfboard", "secret": "short"})
    assert r.status_code == 200 and "secret" in r.context["form"].errors
    r = web.post(URL, {"webhook_url": "https://hooks.acme.test/perfboard", "secret": "long-enough-secret-123",
                       "generate_secret": "on"})
    assert r.status_code == 200 and "generate_secret" in r.context["form"].errors
    assert values(project)[1] == SECRET


def test_another_projects_member_gets_404_and_changes_nothing(project, stored, outsider):
    web = Client()
    web.force_login(outsider)
    assert web.get(URL).status_code == 404
    r = web.post(URL, {"webhook_url": "https://evil.test/", "secret": "attacker-chosen-secret", "email_recipients":
                       "eve@evil.test"})
    assert r.status_code == 404
    assert values(project) == ("https://hooks.acme.test/perfboard", SECRET, "ops@acme.test")
    assert web.get("/alerts/nonexistent/notifications").status_code == 404
    # Their own project's page is theirs, and the alerts page links to it only.
    assert web.get("/alerts/globex/notifications").status_code == 200
    listing = web.get("/alerts/").content.decode()
    assert "/alerts/globex/notifications" in listing and URL not in listing


def test_superuser_sees_every_project(project, stored):
    admin = get_user_model().objects.create_superuser("root", password="pw")
    web = Client()
    web.force_login(admin)
    assert web.get(URL).status_code == 200


def test_anonymous_is_sent_to_login(client, project, stored):
    for r in (client.get(URL), client.post(URL, {"webhook_url": "https://evil.test/"})):
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert values(project) == ("https://hooks.acme.test/perfboard", SECRET, "ops@acme.test")


def test_save_needs_csrf(member, project, stored):
    web = Client(enforce_csrf_checks=True)
    web.force_login(member)
    assert web.post(URL, {"webhook_url": "https://hooks.acme.test/v2"}).status_code == 403
    token = web.get(URL).cookies["csrftoken"].value
    r = web.post(URL, {"webhook_url": "https://hooks.acme.test/v2", "csrfmiddlewaretoken": token})
    assert r.status_code == 302 and values(project)[0] == "https://hooks.acme.test/v2"


def test_alerts_page_links_to_the_settings(web):
    assert f'href="{URL}"' in web.get("/alerts/").content.decode()
