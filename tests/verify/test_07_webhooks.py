"""Promises 10 and 11: webhooks are delivered once, signed, verifiable with the standardwebhooks
library, retried with backoff, stopped by 410, never redirected; and never sent to an internal
address, at registration or at send time (DNS rebinding). A real HTTP server on 127.0.0.1 is the
partner's endpoint (tests may deliver to 127.0.0.1 over http: ``WEBHOOKS_ALLOW_HTTP_LOCALHOST``)."""

from __future__ import annotations

import datetime as dt
import socket

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from loyalty.core import clock
from loyalty.partners import tasks, webhooks
from loyalty.partners.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.api.conftest import just_now, key_client, purchase_body
from tests.verify.security_helpers import SIGNATURE_HEADERS, receivers, resolver

pytestmark = pytest.mark.django_db

receiver_factory = pytest.fixture(receivers, name="receivers")


@pytest.fixture
def partner(settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    api = key_client("Hooked Partner")
    member = api.post("/api/v1/members/", {"email": "hook@example.com"}, format="json").json()["member_number"]
    api.member_number = member
    return api


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


def register(api, url: str) -> str:
    response = api.post("/api/v1/webhooks/", {"url": url, "event_types": ["points.earned"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["secret"]


def buy(api, commit, external_id: str):
    body = purchase_body(api.member_number, external_id=external_id, occurred_at=just_now())
    response = commit(api.post, "/api/v1/purchases/", body, format="json")
    assert response.status_code == 201, response.content


def test_an_endpoint_failing_five_times_gets_the_event_once_signed_and_verifiable(partner, receivers, commit, figure):
    """Rule: an event is retried with growing backoff until the endpoint answers 2xx, each attempt
    carries the same ``webhook-id`` (the receiver's deduplication key) and a Standard Webhooks
    signature the library verifies; after success nothing is sent again; a tampered body and a
    stale timestamp are rejected by the library."""
    receiver = receivers([500, 500, 500, 500, 500, 200])
    receiver.secret = register(partner, receiver.url)
    buy(partner, commit, "hook-1")  # attempt 1 (dispatched after commit)

    delivery = WebhookDelivery.objects.get()
    gaps = []
    while delivery.status == DeliveryStatus.PENDING:
        gaps.append((delivery.next_attempt_at - clock.now()).total_seconds())
        # the backoff elapses: make the delivery due now (the signature's time stays real)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=clock.now())
        tasks.webhooks_sweep()
        delivery.refresh_from_db()
        assert delivery.attempts <= 6
    for _ in range(3):  # sweeps after success, and a late copy of the task, send nothing more
        tasks.webhooks_sweep()
        tasks.webhooks_deliver(delivery.pk)

    ids = {headers["webhook-id"] for headers, _body in receiver.requests}
    assert [a.status_code for a in WebhookAttempt.objects.order_by("attempted_at", "pk")] == [500] * 5 + [200]
    assert len(receiver.requests) == 6 and len(ids) == 1 and delivery.status == DeliveryStatus.DELIVERED
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    assert list(receiver.handled.values())[0]["type"] == "points.earned" and len(receiver.handled) == 1
    assert receiver.rejected == []
    verifier = Webhook(receiver.secret)
    for headers, body in receiver.requests:  # every attempt verifies, not only the one handled
        verifier.verify(body, {k: headers[k] for k in SIGNATURE_HEADERS})

    headers, body = receiver.requests[-1]
    signed = {k: headers[k] for k in SIGNATURE_HEADERS}
    tampered = body.replace('"points":100', '"points":100000')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(register(partner, receivers([200]).url)).verify(body, signed)  # another endpoint's secret

    # a delivery signed 10 minutes ago (the product's signer, the clock moved back) is refused as stale
    stale_receiver = receivers([200])
    stale_receiver.secret = register(partner, stale_receiver.url)
    WebhookEndpoint.objects.exclude(url=stale_receiver.url).update(is_active=False)
    buy(partner, lambda call, *args, **kwargs: call(*args, **kwargs), "hook-stale")  # not dispatched yet
    clock.set_now(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    tasks.webhooks_sweep()  # the sweep dispatches and sends it, signed 10 minutes ago
    clock.set_now(None)
    assert len(stale_receiver.requests) == 1 and stale_receiver.handled == {}
    assert "timestamp" in stale_receiver.rejected[0].lower()

    backoff = ", ".join(f"{g:.0f}" for g in gaps)
    figure(
        10,
        "endpoint failing 5 times, then 200",
        f"{len(receiver.requests)} attempts (5 × 500, 1 × 200), {len(ids)} webhook-id, handled "
        f"{len(receiver.handled)} time; backoff {backoff} s; {len(receiver.requests)}/{len(receiver.requests)} "
        "verified by standardwebhooks; tampered body, wrong secret and 10-min-old timestamp rejected",
    )


def test_410_disables_the_endpoint_and_a_redirect_is_never_followed(partner, receivers, commit, figure):
    """Rule: 410 Gone disables the endpoint at once (no further event is sent to it); a 3xx is a
    failed attempt and its Location is never requested."""
    gone = receivers([410])
    register(partner, gone.url)
    target = receivers([200])
    redirecting = receivers([302], location=target.url)
    register(partner, redirecting.url)

    buy(partner, commit, "gone-1")
    buy(partner, commit, "gone-2")
    for _ in range(3):
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=clock.now())
        tasks.webhooks_sweep()

    endpoint = WebhookEndpoint.objects.get(url=gone.url)
    assert len(gone.requests) == 1 and not endpoint.is_active and "410" in endpoint.disabled_reason
    assert len(redirecting.requests) >= 2  # both events tried, each retry a 302 again
    assert target.requests == []
    redirect_attempts = WebhookAttempt.objects.filter(delivery__endpoint__url=redirecting.url)
    assert {a.status_code for a in redirect_attempts} == {302}
    assert all("redirect" in a.error for a in redirect_attempts)
    figure(
        10,
        "410 and redirects",
        f"410: 1 request then endpoint disabled, 2nd event not sent; 302: {len(redirecting.requests)} attempts, "
        f"{len(target.requests)} requests to the Location",
    )


# Every form of an internal address (docs: loyalty/partners/webhooks.py).
INTERNAL = {
    "loopback": "127.0.0.1",
    "loopback (other)": "127.3.4.5",
    "private 10/8": "10.0.0.5",
    "private 172.16/12": "172.16.0.1",
    "private 192.168/16": "192.168.1.10",
    "link-local": "169.254.10.10",
    "AWS/GCP/Azure metadata": "169.254.169.254",
    "AWS metadata IPv6": "fd00:ec2::254",
    "unique-local IPv6": "fd12:3456::1",
    "IPv6 loopback": "::1",
    "IPv6 link-local": "fe80::1",
    "unspecified": "0.0.0.0",  # noqa: S104 - an address refused, not bound
    "IPv6 unspecified": "::",
    "IPv4-mapped loopback": "::ffff:127.0.0.1",
    "IPv4-mapped metadata": "::ffff:169.254.169.254",
    "IPv4-compatible": "::10.0.0.1",
    "NAT64 of metadata": "64:ff9b::a9fe:a9fe",
    "NAT64 of private": "64:ff9b::a00:1",
    "NAT64 local-use": "64:ff9b:1::a00:1",
    "6to4 of loopback": "2002:7f00:1::1",
    "Teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "site-local IPv6": "fec0::1",
    "carrier-grade NAT": "100.64.0.1",
    "IETF assignments": "192.0.0.170",
    "multicast": "224.0.0.1",
    "broadcast": "255.255.255.255",
    "documentation": "192.0.2.1",
}
PUBLIC = "93.184.215.14"


def literal(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


def test_internal_addresses_are_refused_at_registration_and_at_send_time(
    partner, commit, monkeypatch, settings, figure
):
    """Rule: a webhook URL whose host is, or resolves to, an internal address in any form is
    refused at registration (422 invalid_webhook_url); a name that resolved to a public address at
    registration and resolves to an internal one at send time (DNS rebinding) is not sent to. Only
    the resolver is replaced: the check is the product's."""
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = False  # production: no exception for 127.0.0.1
    sent = []
    real_send = webhooks._send
    monkeypatch.setattr(webhooks, "_send", lambda *a: sent.append(a) or real_send(*a))
    answers = {f"rebind-{i}.example": [PUBLIC, address] for i, address in enumerate(INTERNAL.values())}
    answers |= {f"internal-{i}.example": [address] for i, address in enumerate(INTERNAL.values())}
    getaddrinfo, calls = resolver(answers)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    refused = 0
    for i, address in enumerate(INTERNAL.values()):
        for url in (literal(address), f"https://internal-{i}.example/hook", f"http://internal-{i}.example/hook"):
            response = partner.post("/api/v1/webhooks/", {"url": url, "event_types": ["points.earned"]}, format="json")
            assert response.status_code == 422 and response.json()["code"] == "invalid_webhook_url", url
            refused += 1
    assert not WebhookEndpoint.objects.exists()

    for i in range(len(INTERNAL)):  # registered while public ...
        register(partner, f"https://rebind-{i}.example/hook")
    buy(partner, commit, "rebind-1")  # ... internal when the event is sent

    attempts = WebhookAttempt.objects.all()
    assert sent == [] and attempts.count() == len(INTERNAL)
    assert all(a.status_code is None and "must not point at private" in a.error for a in attempts)
    assert all(calls[f"rebind-{i}.example"] >= 2 for i in range(len(INTERNAL)))  # asked again at send time
    figure(
        11,
        "internal webhook addresses",
        f"{refused} URLs refused at registration ({len(INTERNAL)} address forms × literal, name, http); "
        f"{len(INTERNAL)} names rebound to them after registration: {len(sent)} sent, {attempts.count()} attempts refused",
    )
