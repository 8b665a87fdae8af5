"""The webhook's guard against reaching the internal network (SSRF), as in production (DEBUG=0:
WEBHOOK_PRIVATE_ADDRESSES false): the POST connects only to the addresses vetted in the one lookup of the name (DNS
rebinding gets nowhere), follows no redirect, and members are shown nothing a refused target answered.

There is no internet here, so a public address is played by a local server: ``socket.getaddrinfo`` is stubbed to
answer a test name with a public address (and, for rebinding, something else on later lookups), and
``alerts.notify.open_connection`` (the one place a webhook socket is opened) routes connections to that public
address to a local "public" server; connections to any other address go where they say, so an internal server on
127.0.0.1 receives whatever the webhook wrongly sends it.
"""
import re
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from urllib3.util.connection import create_connection

from alerts import notify, tasks
from alerts.models import NotificationSettings
from tests.alerts.test_notify import SECRET, verified

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"  # a global address; nothing here ever connects to it for real


class Server:
    """An HTTP(S) server on 127.0.0.1 recording each request and answering ``status`` with ``headers``."""

    def __init__(self, status=200, headers=None, tls=None):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append((dict(self.headers), body))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def production(project, settings, monkeypatch):
    """DEBUG=0 webhook settings, tasks run here, retries at once (see test_notify.settings_for)."""
    from perfboard.celery import app

    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": False}
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    monkeypatch.setattr(tasks.deliver_webhook, "max_retries", 1)

    def make(url):
        return NotificationSettings.objects.create(project=project, webhook_url=url, webhook_secret=SECRET)

    return make


@pytest.fixture
def dns(monkeypatch):
    """``dns.answer(name, [addresses of the 1st lookup], [of the 2nd], ...)`` (the last repeats); other names and
    IP literals are looked up for real. ``dns.lookups`` lists the stubbed names as they were looked up."""
    real = notify.socket.getaddrinfo

    class Stub:
        def __init__(self):
            self.answers: dict[str, list[list[str]]] = {}
            self.lookups: list[str] = []

        def answer(self, name, *answers):
            self.answers[name] = list(answers)

        def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.answers:
                return real(host, port, family, type, proto, flags)
            self.lookups.append(name)
            queue = self.answers[name]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(notify.socket.AF_INET6 if ":" in a else notify.socket.AF_INET, notify.socket.SOCK_STREAM, 6, "",
                     (a, port or 0)) for a in addresses]

    stub = Stub()
    monkeypatch.setattr(notify.socket, "getaddrinfo", stub.getaddrinfo)
    return stub


@pytest.fixture
def network(monkeypatch):
    """``network.route(PUBLIC, 80, server)``: connections to that (address, port) reach the local server instead;
    ``network.connections`` lists every (address, port) the webhook connected to. An unrouted public address is
    unreachable; anything else is connected to for real."""

    class Network:
        def __init__(self):
            self.routes: dict[tuple[str, int], int] = {}
            self.connections: list[tuple[str, int]] = []

        def route(self, address, port, server):
            self.routes[(address, port)] = server.port

        def open(self, address, timeout, source_address=None, socket_options=None):
            self.connections.append(address)
            if address in self.routes:
                address = ("127.0.0.1", self.routes[address])
            elif not notify.not_public(address[0]):
                raise ConnectionRefusedError(f"{address[0]} is unreachable in the tests")
            return create_connection(address, timeout, source_address=source_address, socket_options=socket_options)

    net = Network()
    monkeypatch.setattr(notify, "open_connection", net.open, raising=False)
    return net


def test_dns_rebinding_after_the_check_cannot_reach_an_internal_server(production, make_alert, dns, network):
    alert = make_alert()
    with Server() as public, Server() as internal:
        # vetted as public, then (a short TTL later) the name points at the internal server
        dns.answer("hooks.rebind.test", [PUBLIC], ["127.0.0.1"])
        network.route(PUBLIC, internal.port, public)  # the public host listens on the port the URL names
        production(url=f"http://hooks.rebind.test:{internal.port}/hooks/perfboard")
        result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.get() == "delivered"
    assert internal.requests == []
    assert dns.lookups == ["hooks.rebind.test"]  # one lookup, and the connection went to what it vetted
    assert network.connections == [(PUBLIC, internal.port)]
    ((headers, body),) = public.requests
    assert headers["Host"] == f"hooks.rebind.test:{internal.port}" and verified(headers, body)


@pytest.mark.parametrize("answers", [
    [["127.0.0.1"], [PUBLIC]],  # private when vetted: refused, whatever the name says later
    [[PUBLIC, "127.0.0.1"]],  # one public address among others does not make the name public
    [["::ffff:127.0.0.1"]], [["64:ff9b::7f00:1"]],  # loopback written as IPv6
])
def test_a_name_with_any_private_address_is_refused_before_connecting(production, make_alert, dns, network,
                                                                      answers):
    alert = make_alert()
    with Server() as internal:
        dns.answer("hooks.internal.test", *answers)
        production(url=f"http://hooks.internal.test:{internal.port}/hooks")
        result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.failed() and "DeliveryRefused" in result.traceback
    assert internal.requests == [] and network.connections == [] and dns.lookups == ["hooks.internal.test"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_an_internal_address_is_not_followed(production, make_alert, dns, network, status):
    alert = make_alert()
    with Server() as internal:
        location = f"http://127.0.0.1:{internal.port}/hooks/perfboard"
        with Server(status, {"Location": location}) as redirector:
            dns.answer("hooks.public.test", [PUBLIC])
            network.route(PUBLIC, 80, redirector)
            production(url="http://hooks.public.test/hooks")
            result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert internal.requests == []
    assert len(redirector.requests) == 1  # a refused delivery, not retried
    assert result.failed() and "DeliveryRefused" in result.traceback and f"answered {status}, a redirect" in (
        result.traceback)
    assert network.connections == [(PUBLIC, 80)]


def test_redirects_are_not_followed_in_development_either(production, make_alert, settings):
    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": True}
    alert = make_alert()
    with Server() as target:
        with Server(307, {"Location": f"http://127.0.0.1:{target.port}/hooks"}) as redirector:
            production(url=f"http://127.0.0.1:{redirector.port}/hooks")
            result = tasks.deliver_webhook.apply(args=[alert.id], throw=False)
    assert result.failed() and "answered 307, a redirect" in result.traceback
    assert target.requests == [] and len(redirector.requests) == 1


def test_development_delivers_to_a_local_name(production, make_alert, settings):
    """DEBUG: private addresses allowed, "localhost" resolved and connected to (whichever of ::1 and 127.0.0.1 it
    gives first; the server listens on 127.0.0.1 only)."""
    settings.PERFBOARD = {**settings.PERFBOARD, "WEBHOOK_PRIVATE_ADDRESSES": True}
    alert = make_alert()
    with Server() as local:
        production(url=f"http://localhost:{local.port}/hooks")
        assert tasks.deliver_webhook.apply(args=[alert.id], throw=False).get() == "delivered"
    ((headers, body),) = local.requests
    assert headers["Host"] == f"localhost:{local.port}" and verified(headers, body)


def _send_test(member) -> list[str]:
    """The answers the settings page shows after "Send a test notification"."""
    from django.test import Client

    web = Client()
    web.force_login(member)
    page = web.post("/alerts/acme/notifications", {"send_test": "1"}, follow=True).content.decode()
    return re.findall(r'<div class="notice[^"]*">(.*?)</div>', page, re.S)


@pytest.mark.parametrize("status", [200, 404, 500])
def test_the_test_notification_shows_nothing_a_refused_target_answered(production, member, status):
    with Server(status) as internal:
        url = f"http://127.0.0.1:{internal.port}/hooks"
        production(url=url)
        answers = _send_test(member)
    assert internal.requests == []
    assert answers == [f"Webhook: {url} refused: the address is not public."]  # no status, no body, no address


def test_the_test_notification_of_a_rebinding_name_shows_only_the_refusal(production, member, dns):
    with Server(500) as internal:
        dns.answer("hooks.rebind.test", ["10.0.0.5"], [PUBLIC])
        url = f"http://hooks.rebind.test:{internal.port}/hooks"
        production(url=url)
        answers = _send_test(member)
    assert answers == [f"Webhook: {url} refused: the address is not public."]  # not 10.0.0.5
    assert internal.requests == []


def test_the_test_notification_of_a_redirect_names_it_and_follows_nothing(production, member, dns, network):
    with Server() as internal:
        with Server(307, {"Location": f"http://127.0.0.1:{internal.port}/hooks"}) as redirector:
            dns.answer("hooks.public.test", [PUBLIC])
            network.route(PUBLIC, 80, redirector)
            production(url="http://hooks.public.test/hooks")
            answers = _send_test(member)
    assert internal.requests == [] and len(redirector.requests) == 1
    assert answers == ["Webhook: webhook http://hooks.public.test/hooks answered 307, a redirect; webhooks do not "
                       "follow redirects: save the URL it redirects to."]  # the public receiver's answer


@pytest.fixture
def certificate(tmp_path):
    """``certificate(name)``: a TLS server context with a self-signed certificate for ``name`` (recording in
    ``context.names`` the SNI name of each handshake), and the path of that certificate (the clients' CA bundle)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")

    def make(name):
        key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", key,
                        "-out", cert, "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                       check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.names = []
        context.sni_callback = lambda sock, server_name, ctx: context.names.append(server_name)
        return context, str(cert)

    return make


def test_https_to_the_vetted_address_checks_the_certificate_of_the_name(production, make_alert, dns, network,
                                                                      certificate, monkeypatch):
    tls, ca = certificate("hooks.tls.test")
    monkeypatch.setattr(notify, "VERIFY", ca)
    dns.answer("hooks.tls.test", [PUBLIC])
    dns.answer("hooks.other.test", [PUBLIC])
    first, second = make_alert(), make_alert()
    with Server(tls=tls) as public:
        network.route(PUBLIC, 443, public)
        conf = production(url="https://hooks.tls.test/hooks")
        assert tasks.deliver_webhook.apply(args=[first.id], throw=False).get() == "delivered"
        # the same server (its certificate names hooks.tls.test) reached under another name: not trusted
        conf.webhook_url = "https://hooks.other.test/hooks"
        conf.save()
        result = tasks.deliver_webhook.apply(args=[second.id], throw=False)
    assert result.failed() and "DeliveryFailed" in result.traceback and "hooks.other.test" in result.traceback
    ((headers, body),) = public.requests
    assert headers["Host"] == "hooks.tls.test" and verified(headers, body)
    assert tls.names == ["hooks.tls.test", "hooks.other.test", "hooks.other.test"]  # SNI: the name, not the IP
    assert network.connections == [(PUBLIC, 443)] * 3  # the failure was retried once
