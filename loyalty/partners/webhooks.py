"""Webhook URL safety, recipients, signing (Standard Webhooks), secrets at rest and delivery with
backoff.

Safety of a delivery: the URL is https with a host name or address and a port 1-65535 and no
credentials; the host is resolved once, every address it resolves to must be public (no loopback,
private, link-local/metadata, shared, reserved or multicast address, nor one of those in another
form: IPv4-mapped or -compatible IPv6, NAT64, 6to4, Teredo, site-local); the request then goes to
the address that was checked (TLS still verifies the certificate for the host name), without
proxies from the environment and without following redirects (a 3xx is a failed attempt)."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from standardwebhooks.webhooks import Webhook

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.partners.models import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from loyalty.partners.selectors import partner_ids_reading_member

TIMEOUT_SECONDS = 10
DISABLE_AFTER = dt.timedelta(days=3)
MAX_BACKOFF = dt.timedelta(hours=6)

# Non-public addresses in forms that ``ipaddress``'s ``is_global`` lets through or that embed an
# IPv4 address another hop would reach: refused whole.
_REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::ffff:0:0/96",  # IPv4-mapped
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local use
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "fec0::/10",  # site-local (deprecated)
        "192.0.0.0/24",  # IETF protocol assignments
    )
)
_TEST_LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _invalid(message: str, field_message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_webhook_url", fields={"url": [field_message]})


def _test_loopback_allowed() -> bool:
    """Tests may deliver to a receiver on 127.0.0.1 over http (never in production)."""
    return bool(getattr(settings, "WEBHOOKS_ALLOW_HTTP_LOCALHOST", False))


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for a unicast address on the public internet, in no disguise."""
    if any(address.version == net.version and address in net for net in _REFUSED_NETWORKS):
        return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL: where to connect (``address``) and what to call it (``host``)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def webhook_target_resolve(url: str) -> WebhookTarget:
    """Check ``url`` and resolve its host once; ``invalid_webhook_url`` unless it is https, has
    no credentials, a port 1-65535 and a host whose every address is public. The sender connects
    to the returned address, so no second lookup can swap it for another."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range, an unclosed [ or other malformed authority
        raise _invalid("Webhook URL is malformed or its port is not 1-65535", "Not a valid URL.") from None
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _invalid("Webhook URLs must not carry credentials", "Remove the user name and password.")
    if port == 0:
        raise _invalid("Webhook URL port must be 1-65535", "Not a valid port.")
    allowed_schemes = ("https", "http") if _test_loopback_allowed() else ("https",)
    if parts.scheme not in allowed_schemes or not host:
        raise _invalid("Webhook URLs must use https", "Must be https.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise _invalid("Webhook host does not resolve", "Host does not resolve.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise _invalid("Webhook host does not resolve", "Host does not resolve.")
    for address in addresses:
        test_receiver = _test_loopback_allowed() and address == _TEST_LOOPBACK
        if not (address_is_public(address) or test_receiver):
            raise _invalid(
                "Webhook URLs must not point at private, loopback, link-local or metadata addresses",
                "Not a public address.",
            )
        if parts.scheme == "http" and not test_receiver:
            raise _invalid("Webhook URLs must use https", "Must be https.")
    return WebhookTarget(url=url, scheme=parts.scheme, host=host, port=port, address=str(addresses[0]))


def webhook_url_check(url: str) -> None:
    """Refuse ``url`` as a webhook URL unless ``webhook_target_resolve`` accepts it (at
    registration, through the API and the admin; again before every send)."""
    webhook_target_resolve(url)


# --- signing secrets at rest ------------------------------------------------------------------


def _secrets_box() -> MultiFernet:
    """``WEBHOOK_SECRETS_KEY``: one Fernet key, or several comma-separated (the first encrypts,
    all decrypt: rotate by putting a new key first, then ``webhook_secrets_rotate``)."""
    keys = [k.strip() for k in str(settings.WEBHOOK_SECRETS_KEY).split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def webhook_secret_encrypt(secret: str) -> str:
    return _secrets_box().encrypt(secret.encode()).decode()


def webhook_secret_decrypt(stored: str) -> str:
    try:
        return _secrets_box().decrypt(stored.encode()).decode()
    except InvalidToken:
        raise ValidationFailed(
            "The endpoint's signing secret cannot be decrypted with WEBHOOK_SECRETS_KEY",
            code="webhook_secret_unreadable",
        ) from None


def webhook_secrets_rotate() -> int:
    """Re-encrypt every stored signing secret with the first key of ``WEBHOOK_SECRETS_KEY`` (after a
    new key was put first), so the old key can then be removed; returns the rows rewritten."""
    box = _secrets_box()
    rotated = 0
    with transaction.atomic():
        for endpoint in WebhookEndpoint.objects.select_for_update().only("pk", "secret_encrypted").order_by("pk"):
            try:
                sealed = box.rotate(endpoint.secret_encrypted.encode()).decode()
            except InvalidToken:
                raise ValidationFailed(
                    f"The secret of webhook endpoint {endpoint.pk} opens with none of WEBHOOK_SECRETS_KEY",
                    code="webhook_secret_unreadable",
                ) from None
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted=sealed)
            rotated += 1
    return rotated


# --- recipients -------------------------------------------------------------------------------

# An event a partner's call caused goes to that partner; the points it earned, burned or reversed
# there are that partner's business only. Program events, those no partner caused (tier changes,
# expiry, staff and portal actions, imports) and those of the types below even when a partner's
# call caused them, go to the partners that may read the member, stripped of whatever belongs to
# the partner that caused them.
PROGRAM_EVENT_TYPES = frozenset(
    {"member.enrolled", "tier.upgraded", "tier.downgraded", "points.expiring", "points.expired"}
)
# Payload keys that belong to the partner that caused an event; never sent to another partner.
CAUSER_KEYS = frozenset(
    {
        "partner_id",
        "external_id",
        "purchase_external_id",
        "return_external_id",
        "redemption_id",
        "reward_redemption_id",
        "coupon_use_id",
        "purchase_id",
        "store",
        "source",
    }
)


def event_causer(event: OutboxEvent) -> int | None:
    """The partner whose API call caused the event (None: the program, staff or the member)."""
    causer = (event.payload or {}).get("partner_id")
    return causer if isinstance(causer, int) else None


def event_recipient_partner_ids(*, event: OutboxEvent, partner_ids: set[int]) -> set[int]:
    """Of ``partner_ids`` (partners with an endpoint for the event's type), those that may
    receive ``event``: the causing partner, and for program events the partners that may read
    the member (``partner_member_access``)."""
    causer = event_causer(event)
    recipients = {causer} & partner_ids if causer is not None else set()
    program_event = causer is None or event.event_type in PROGRAM_EVENT_TYPES
    if program_event and event.member_id is not None:
        enrolled, shared = partner_ids_reading_member(member=event.member)
        recipients |= set(partner_ids) if shared else (enrolled & partner_ids)
    return recipients


def event_payload_for(*, event: OutboxEvent, partner_id: int) -> dict[str, Any]:
    """The event's data as ``partner_id`` may see it: whole for the partner that caused it,
    without the causing partner's ids and codes for anyone else."""
    data = dict(event.payload or {})
    if event_causer(event) == partner_id:
        return data
    return {k: v for k, v in data.items() if k not in CAUSER_KEYS}


def deliveries_create(*, event: OutboxEvent) -> list[int]:
    """Fan one outbox event out to the endpoints that subscribe to its type and whose partner may
    receive it (``event_recipient_partner_ids``)."""
    now = clock.now()
    if event.member_id is None and event_causer(event) is None:
        OutboxEvent.objects.filter(pk=event.pk, published_at__isnull=True).update(published_at=now)
        return []
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(is_active=True, deleted_at__isnull=True)
        if event.event_type in e.event_types
    ]
    recipients = event_recipient_partner_ids(event=event, partner_ids={e.partner_id for e in endpoints})
    rows = [
        WebhookDelivery(endpoint=e, event=event, next_attempt_at=now, created_at=now)
        for e in endpoints
        if e.partner_id in recipients
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    OutboxEvent.objects.filter(pk=event.pk, published_at__isnull=True).update(published_at=now)
    return list(WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING).values_list("pk", flat=True))


def _payload(event: OutboxEvent, partner_id: int) -> str:
    return json.dumps(
        {
            "type": event.event_type,
            "timestamp": event.created_at.isoformat(),
            "data": event_payload_for(event=event, partner_id=partner_id),
        },
        separators=(",", ":"),
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context (httpx's CA bundle) for every send: loading the bundle costs far
    more than a delivery (about 60 ms against under 1 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


def _send(endpoint: WebhookEndpoint, event: OutboxEvent, target: WebhookTarget) -> tuple[int | None, str]:
    """POST the signed event to the checked address of ``target``: the URL's host name goes in the
    Host header and in TLS (SNI and certificate check); no proxy from the environment, no
    redirect followed."""
    body = _payload(event, endpoint.partner_id)
    msg_id = f"msg_{event.pk}"
    signed_at = clock.now()
    signature = Webhook(webhook_secret_decrypt(endpoint.secret_encrypted)).sign(msg_id, signed_at, body)
    url = httpx.URL(target.url)
    host = url.raw_host.decode("ascii")  # the name as sent on the wire (IDNA)
    host_header = f"[{host}]" if ":" in host else host
    if target.port != {"https": 443, "http": 80}[target.scheme]:
        host_header = f"{host_header}:{target.port}"
    headers = {
        "host": host_header,
        "content-type": "application/json",
        "user-agent": "loyalty-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": signature,
    }
    try:
        with (
            httpx.Client(
                verify=_tls_context(), trust_env=False, follow_redirects=False, timeout=TIMEOUT_SECONDS
            ) as client,
            client.stream(
                "POST",
                url.copy_with(host=target.address),
                content=body.encode(),
                headers=headers,
                extensions={"sni_hostname": host},
            ) as response,  # the status is all we need: the body is never read
        ):
            status = response.status_code
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 300 <= status < 400:
        return status, f"HTTP {status}: redirects are not followed"
    if status >= 300:
        return status, f"HTTP {status}"
    return status, ""


def delivery_attempt(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send one delivery now; log the attempt; schedule a retry with exponential backoff, give up
    and disable the endpoint after 3 days of failures, disable at once on 410 Gone."""
    endpoint, event = delivery.endpoint, delivery.event
    now = clock.now()
    started = time.monotonic()
    try:
        target = webhook_target_resolve(endpoint.url)  # checked again: DNS may have changed since
        status, error = _send(endpoint, event, target)
    except ValidationFailed as exc:
        status, error = None, exc.message
    elapsed = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, attempted_at=now, status_code=status, response_ms=elapsed, error=error
        )
        delivery.attempts += 1
        if status is not None and 200 <= status < 300:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
            if endpoint.failing_since is not None:  # endpoints are configuration: write only a change
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        elif status == 410:
            delivery.status = DeliveryStatus.FAILED
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                is_active=False, disabled_reason=f"410 Gone at {now:%Y-%m-%d %H:%M}"
            )
        else:
            failing_since = endpoint.failing_since or now
            if endpoint.failing_since is None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=now)
            if now - failing_since >= DISABLE_AFTER:
                delivery.status = DeliveryStatus.FAILED
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                    is_active=False, disabled_reason=f"failing since {failing_since:%Y-%m-%d %H:%M}: {error or status}"
                )
            else:
                delivery.next_attempt_at = now + min(
                    dt.timedelta(seconds=30 * 2 ** (delivery.attempts - 1)), MAX_BACKOFF
                )
        delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])
    return delivery


def deliveries_due(*, now: dt.datetime | None = None, limit: int = 500) -> list[WebhookDelivery]:
    now = now or clock.now()
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        )
        .select_related("endpoint", "event")
        .order_by("next_attempt_at")[:limit]
    )


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Staff: send again now (reactivates nothing; a disabled endpoint must be re-enabled first)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING, next_attempt_at=clock.now())
    delivery.refresh_from_db()
    return delivery_attempt(delivery=delivery)


def outbox_undispatched() -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(Q(published_at__isnull=True)).order_by("pk")[:1000])
