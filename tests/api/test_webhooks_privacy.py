"""Webhooks carry only what the receiving partner may know, go only to public addresses (checked
once, connected to as checked), follow no redirect, use no proxy, and keep their secrets encrypted."""

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.contrib.auth import get_user_model
from standardwebhooks.webhooks import Webhook

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.partners import webhooks
from loyalty.partners.models import (
    WEBHOOK_EVENT_TYPES,
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from loyalty.partners.services import webhook_endpoint_create
from members.models import ConsentPurpose, Member
from members.services import consent_set, redemption_code_issue
from tests.api.conftest import just_now, purchase_body

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


class Receiver:
    """An HTTP server on ``host`` that records what it is sent and answers ``status`` (with
    ``location`` for a redirect)."""

    def __init__(self, host="127.0.0.1", port=0, status=200, location=None):
        self.status, self.location, self.requests = status, location, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.requests.append((self.path, dict(self.headers), body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = HTTPServer((host, port), Handler)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self):
        return [json.loads(body) for _path, _headers, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers(settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


def fake_dns(monkeypatch, answers: dict[str, list[str]]):
    """``socket.getaddrinfo`` answering the given names from ``answers`` (one list per call, the
    last repeated), other names as usual; returns the calls per name."""
    calls: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        calls[host] = calls.get(host, 0) + 1
        address = answers[host][min(calls[host], len(answers[host])) - 1]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, port or 0, 0, 0) if family == socket.AF_INET6 else (address, port or 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


# --- URLs ---------------------------------------------------------------------------------------

REFUSED_URLS = {
    "credentials": "https://user:secret@hooks.example.com/x",
    "user name": "https://user@hooks.example.com/x",
    "port above 65535": "https://hooks.example.com:99999/x",
    "port 0": "https://hooks.example.com:0/x",
    "negative port": "https://hooks.example.com:-1/x",
    "unclosed IPv6 bracket": "https://[::1/x",
    "IPv4-mapped loopback": "https://[::ffff:127.0.0.1]/x",
    "IPv4-mapped metadata": "https://[::ffff:a9fe:a9fe]/latest",
    "IPv4-mapped public": "https://[::ffff:8.8.8.8]/x",
    "IPv4-compatible loopback": "https://[::127.0.0.1]/x",
    "NAT64 of metadata": "https://[64:ff9b::a9fe:a9fe]/latest",
    "NAT64 local-use prefix": "https://[64:ff9b:1::a00:1]/x",
    "6to4 of private": "https://[2002:a00:1::1]/x",
    "Teredo": "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
    "site-local IPv6": "https://[fec0::1]/x",
    "unique-local IPv6 (AWS metadata)": "https://[fd00:ec2::254]/latest",
    "link-local IPv6": "https://[fe80::1]/x",
    "IPv6 loopback": "https://[::1]/x",
    "unspecified": "https://0.0.0.0/x",
    "carrier-grade NAT": "https://100.64.0.1/x",
    "decimal loopback": "https://2130706433/x",
    "metadata": "https://169.254.169.254/latest",
    "private": "https://192.168.1.10/x",
    "IETF protocol assignments": "https://192.0.0.170/x",
    "plain http": "http://1.1.1.1/x",
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_a_url_with_credentials_a_bad_port_or_a_non_public_address_in_any_form_is_refused(url, api):
    with pytest.raises(ValidationFailed) as exc:
        webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    assert exc.value.code == "invalid_webhook_url"
    response = api.post("/api/v1/webhooks/", {"url": url, "event_types": ["points.earned"]}, format="json")
    assert response.status_code in (400, 422), response.content  # never a 500
    assert response.json()["code"] in ("invalid_webhook_url", "invalid_request")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["https://1.1.1.1/hook", "https://[2606:4700:4700::1111]:8443/hook"])
def test_a_public_address_is_accepted(url, api):
    endpoint, secret = webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    assert endpoint.url == url and secret.startswith("whsec_")


@pytest.mark.parametrize(
    "address", ["::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:1:2:3:4:5:6", "10.0.0.1"]
)
def test_a_host_name_resolving_to_a_disguised_private_address_is_refused(address, api, monkeypatch):
    # one answer among public ones is enough to refuse
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            ),
        ],
    )
    with pytest.raises(ValidationFailed):
        webhook_endpoint_create(partner=api.partner, url="https://hooks.partner.test/x", event_types=["points.earned"])


def test_the_address_is_checked_again_at_send_time(api, enrolled, commit, monkeypatch, receivers):
    receiver = receivers()
    fake_dns(monkeypatch, {"hooks.partner.test": ["127.0.0.1", "10.1.2.3"]})
    url = f"http://hooks.partner.test:{receiver.port}/hook"
    webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled), format="json")
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "private" in attempt.error
    assert receiver.requests == []


def test_the_connection_goes_to_the_checked_address_not_to_a_second_dns_answer(
    api, enrolled, commit, monkeypatch, receivers
):
    """DNS rebinding: the name answers 127.0.0.1 (allowed in tests) to the checks and then
    127.0.0.2 (a receiver standing for an internal service); nothing may reach the second."""
    checked = receivers(host="127.0.0.1")
    internal = receivers(host="127.0.0.2", port=checked.port)
    calls = fake_dns(monkeypatch, {"hooks.partner.test": ["127.0.0.1", "127.0.0.1", "127.0.0.2"]})
    url = f"http://hooks.partner.test:{checked.port}/hook"
    webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert len(checked.requests) == 1 and internal.requests == []
    assert calls["hooks.partner.test"] == 2  # at registration and before the send: no other lookup
    _path, headers, _body = checked.requests[0]
    assert {k.lower(): v for k, v in headers.items()}["host"] == f"hooks.partner.test:{checked.port}"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(api, enrolled, commit, receivers):
    target = receivers()
    redirecting = receivers(status=302, location=target.url)
    webhook_endpoint_create(partner=api.partner, url=redirecting.url, event_types=["points.earned"])
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert len(redirecting.requests) == 1 and target.requests == []
    delivery = WebhookDelivery.objects.get()
    attempt = delivery.attempt_log.get()
    assert attempt.status_code == 302 and "redirect" in attempt.error
    assert delivery.status == DeliveryStatus.PENDING and delivery.delivered_at is None
    assert WebhookEndpoint.objects.get().failing_since is not None


def test_proxy_environment_variables_are_ignored(api, enrolled, commit, receivers, monkeypatch):
    receiver = receivers()
    proxy = receivers()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    webhook_endpoint_create(partner=api.partner, url=receiver.url, event_types=["points.earned"])
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert len(receiver.requests) == 1 and proxy.requests == []


# --- who receives what --------------------------------------------------------------------------


@pytest.fixture
def coalition(api, other_api, enrolled, receivers):
    """Ann enrolled at Acme (``api``); Rival (``other_api``) only saw her card. Each partner has
    one endpoint for every event type."""
    mine, theirs = receivers(), receivers()
    for client, receiver in ((api, mine), (other_api, theirs)):
        response = client.post(
            "/api/v1/webhooks/", {"url": receiver.url, "event_types": list(WEBHOOK_EVENT_TYPES)}, format="json"
        )
        assert response.status_code == 201, response.content
    return mine, theirs


def test_a_partner_receives_the_events_of_its_own_calls_and_not_another_partners(
    api, other_api, enrolled, coalition, commit
):
    mine, theirs = coalition
    member = Member.objects.get(member_number=enrolled)
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled, external_id="acme-1", store="S-ACME"), format="json")
    commit(
        other_api.post,
        "/api/v1/purchases/",
        purchase_body(enrolled, external_id="rival-1", store="S-RIVAL"),
        format="json",
    )
    code = redemption_code_issue(member=member)
    burn = commit(
        other_api.post,
        "/api/v1/redemptions/",
        {"member_number": enrolled, "points": 5, "external_id": "rival-burn-1", "redemption_code": code},
        format="json",
    )
    assert burn.status_code == 201
    commit(other_api.post, f"/api/v1/redemptions/{burn.json()['id']}/cancel/", {}, format="json")

    assert [(b["type"], b["data"].get("purchase_external_id")) for b in mine.bodies()] == [("points.earned", "acme-1")]
    assert [b["type"] for b in theirs.bodies()] == ["points.earned", "points.redeemed", "points.reversed"]
    assert theirs.bodies()[0]["data"]["purchase_external_id"] == "rival-1"
    delivered_to_acme = json.dumps(mine.bodies())
    for foreign in ("rival-1", "rival-burn-1", "S-RIVAL", f'"redemption_id": {burn.json()["id"]}'):
        assert foreign not in delivered_to_acme
    assert "acme-1" not in json.dumps(theirs.bodies()) and "S-ACME" not in json.dumps(theirs.bodies())


def program_event(member, event_type, **payload):
    return OutboxEvent.objects.create(event_type=event_type, member=member, payload=payload, created_at=clock.now())


@pytest.mark.parametrize("event_type", ["tier.upgraded", "tier.downgraded", "points.expiring", "points.expired"])
def test_program_events_go_only_to_partners_that_may_read_the_member(
    event_type, api, other_api, enrolled, coalition, commit
):
    mine, theirs = coalition
    commit(other_api.post, "/api/v1/purchases/", purchase_body(enrolled, external_id="rival-1"), format="json")
    member = Member.objects.get(member_number=enrolled)
    sent = theirs.bodies()
    delivery_ids = webhooks.deliveries_create(event=program_event(member, event_type, member_id=member.pk, points=7))
    for delivery in WebhookDelivery.objects.filter(pk__in=delivery_ids).select_related("endpoint", "event"):
        webhooks.delivery_attempt(delivery=delivery)
    assert [b["type"] for b in mine.bodies()] == [event_type]
    assert theirs.bodies() == sent  # the card link is earn-only: no program events

    consent_set(member=member, purpose=ConsentPurpose.PARTNER_SHARING, granted=True, source="portal")
    delivery_ids = webhooks.deliveries_create(event=program_event(member, event_type, member_id=member.pk, points=8))
    for delivery in WebhookDelivery.objects.filter(pk__in=delivery_ids).select_related("endpoint", "event"):
        webhooks.delivery_attempt(delivery=delivery)
    assert [b["data"]["points"] for b in theirs.bodies() if b["type"] == event_type] == [8]


def test_points_no_partner_caused_go_to_the_partners_that_may_read_the_member(api, other_api, enrolled, coalition):
    """Staff, portal or import activity: a program event, with no partner's ids to strip."""
    mine, theirs = coalition
    member = Member.objects.get(member_number=enrolled)
    event = program_event(member, "points.earned", member_number=enrolled, points=30, partner_id=None)
    for delivery_id in webhooks.deliveries_create(event=event):
        webhooks.delivery_attempt(delivery=WebhookDelivery.objects.get(pk=delivery_id))
    assert [b["data"] for b in mine.bodies() if b["type"] == "points.earned"] == [
        {"member_number": enrolled, "points": 30}
    ]
    assert [b for b in theirs.bodies() if b["type"] == "points.earned"] == []


def test_an_enrollment_by_one_partner_reaches_another_only_with_the_sharing_consent_and_without_its_ids(
    api, other_api, coalition, commit
):
    mine, theirs = coalition
    commit(api.post, "/api/v1/members/", {"email": "private@example.com"}, format="json")
    shared = commit(
        api.post,
        "/api/v1/members/",
        {
            "email": "open@example.com",
            "consents": [{"purpose": "partner_sharing", "channel": "", "granted": True}],
        },
        format="json",
    )
    assert [b["data"]["member_number"] for b in mine.bodies() if b["type"] == "member.enrolled"][-2:] == [
        Member.objects.get(email="private@example.com").member_number,
        shared.json()["member_number"],
    ]
    rival_enrolled = [b["data"] for b in theirs.bodies() if b["type"] == "member.enrolled"]
    assert [d["member_number"] for d in rival_enrolled] == [shared.json()["member_number"]]
    assert "partner_id" not in rival_enrolled[0] and "source" not in rival_enrolled[0]
    assert mine.bodies()[-1]["data"]["partner_id"] == api.partner.pk  # its own call: whole


def test_the_causing_partners_keys_are_stripped_for_everyone_else():
    event = OutboxEvent(
        event_type="tier.upgraded",
        payload={"partner_id": 1, "external_id": "x", "redemption_id": 3, "store": "S", "to_tier": "Gold"},
        created_at=T,
    )
    assert webhooks.event_payload_for(event=event, partner_id=2) == {"to_tier": "Gold"}
    assert webhooks.event_payload_for(event=event, partner_id=1) == event.payload


# --- secrets at rest ----------------------------------------------------------------------------


def test_signing_secrets_are_stored_encrypted_and_sign_with_the_plain_secret(api, enrolled, commit, receivers):
    clock.set_now(None)  # the receiver checks the signature's timestamp against its own clock
    receiver = receivers()
    created = api.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["points.earned"]}, format="json")
    secret = created.json()["secret"]
    stored = WebhookEndpoint.objects.get().secret_encrypted
    assert secret not in stored and "whsec_" not in stored
    assert webhooks.webhook_secret_decrypt(stored) == secret
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled, occurred_at=just_now()), format="json")
    _path, headers, body = receiver.requests[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    Webhook(secret).verify(body, {k: lowered[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")})
    assert stored not in json.dumps(api.get("/api/v1/webhooks/").json())


def test_the_admin_never_shows_the_stored_secret(api, client):
    endpoint, _secret = webhook_endpoint_create(
        partner=api.partner, url="https://1.1.1.1/h", event_types=["points.earned"]
    )
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    page = client.get(f"/admin/partners/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200
    assert endpoint.secret_encrypted not in page.content.decode()


def test_a_rotated_key_still_opens_secrets_sealed_with_the_old_one(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOK_SECRETS_KEY = old
    sealed = webhooks.webhook_secret_encrypt("whsec_abc")
    settings.WEBHOOK_SECRETS_KEY = f"{new},{old}"
    assert webhooks.webhook_secret_decrypt(sealed) == "whsec_abc"
    settings.WEBHOOK_SECRETS_KEY = new
    with pytest.raises(ValidationFailed):
        webhooks.webhook_secret_decrypt(sealed)


def test_the_migration_encrypts_secrets_stored_in_plain_text(api):
    import importlib

    migration = importlib.import_module("loyalty.partners.migrations.0005_webhook_secrets_encrypted")
    WebhookEndpoint.objects.create(
        partner=api.partner, url="https://1.1.1.1/h", event_types=[], secret_encrypted="whsec_old", created_at=T
    )
    migration.encrypt_existing(apps, None)
    stored = WebhookEndpoint.objects.get().secret_encrypted
    assert stored != "whsec_old" and webhooks.webhook_secret_decrypt(stored) == "whsec_old"
    migration.encrypt_existing(apps, None)  # once only
    assert WebhookEndpoint.objects.get().secret_encrypted == stored


def _manage_check(env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "WEBHOOK_SECRETS_KEY")}
    env.update({"DJANGO_ENV": "production", "SECRET_KEY": "x7!Qz" * 12 + "Lm9#pR2$vT", "ALLOWED_HOSTS": "a.example"})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_valid_webhook_secrets_key():
    assert "WEBHOOK_SECRETS_KEY" in _manage_check({}).stderr
    assert "WEBHOOK_SECRETS_KEY" in _manage_check({"WEBHOOK_SECRETS_KEY": "not-a-key"}).stderr
    assert _manage_check({"WEBHOOK_SECRETS_KEY": Fernet.generate_key().decode()}).returncode == 0


@pytest.mark.parametrize(
    "url",
    [
        REFUSED_URLS[k]
        for k in (
            "credentials",
            "port above 65535",
            "IPv4-mapped metadata",
            "NAT64 of metadata",
            "6to4 of private",
            "Teredo",
            "metadata",
        )
    ],
)
def test_staff_registering_an_endpoint_in_the_admin_get_the_same_url_check(url, api, admin_client):
    page = admin_client.post(
        "/admin/partners/webhookendpoint/add/",
        {"partner": api.partner.pk, "url": url, "event_types": ["points.earned"]},
    )
    assert page.status_code == 200 and "url" in page.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.exists()


def test_staff_register_an_endpoint_in_the_admin_and_see_its_secret_once(api, admin_client):
    page = admin_client.post(
        "/admin/partners/webhookendpoint/add/",
        {"partner": api.partner.pk, "url": "https://1.1.1.1/hook", "event_types": ["points.earned", "tier.upgraded"]},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    shown = [str(m) for m in page.context["messages"] if "whsec_" in str(m)]
    assert len(shown) == 1
    secret = shown[0].rpartition(" ")[2]
    assert webhooks.webhook_secret_decrypt(endpoint.secret_encrypted) == secret
    assert endpoint.event_types == ["points.earned", "tier.upgraded"] and endpoint.partner == api.partner
    change = admin_client.get(f"/admin/partners/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert secret not in change and endpoint.secret_encrypted not in change


# --- TLS to the checked address -----------------------------------------------------------------


def _certificate(tmp_path, name: str):
    """A self-signed certificate for ``name`` (its own CA); returns (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(receivers, tmp_path, monkeypatch):
    """An https receiver on 127.0.0.1 whose certificate is for ``hooks.partner.test``, trusted by
    the sender; records the TLS server names (SNI) it is asked for."""
    import ssl

    cert_path, key_path = _certificate(tmp_path, "hooks.partner.test")
    receiver = receivers()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    receiver.server_names = []
    server_context.sni_callback = lambda sock, name, ctx: receiver.server_names.append(name)
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    monkeypatch.setattr(webhooks, "_tls_context", lambda: client_context)
    return receiver


def test_tls_goes_to_the_checked_address_and_verifies_the_host_name(api, enrolled, commit, tls_receiver, monkeypatch):
    fake_dns(monkeypatch, {"hooks.partner.test": ["127.0.0.1"]})
    url = f"https://hooks.partner.test:{tls_receiver.port}/hook"
    webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled), format="json")
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED, WebhookAttempt.objects.first()
    assert tls_receiver.server_names == ["hooks.partner.test"] and len(tls_receiver.requests) == 1


def test_tls_to_a_host_whose_certificate_names_another_host_fails(api, enrolled, commit, tls_receiver, monkeypatch):
    fake_dns(monkeypatch, {"other.partner.test": ["127.0.0.1"]})
    url = f"https://other.partner.test:{tls_receiver.port}/hook"
    webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled), format="json")
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and "ConnectError" in attempt.error
    assert tls_receiver.requests == [] and tls_receiver.server_names == ["other.partner.test"]


def test_rotating_the_key_re_encrypts_every_secret_so_the_old_key_can_go(api, settings):
    import io

    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOK_SECRETS_KEY = old
    _endpoint, secret = webhook_endpoint_create(
        partner=api.partner, url="https://1.1.1.1/h", event_types=["points.earned"]
    )
    settings.WEBHOOK_SECRETS_KEY = f"{new},{old}"
    out = io.StringIO()
    call_command("webhook_secrets_rotate", stdout=out)
    assert out.getvalue().startswith("1 webhook secret")
    settings.WEBHOOK_SECRETS_KEY = new
    assert webhooks.webhook_secret_decrypt(WebhookEndpoint.objects.get().secret_encrypted) == secret
