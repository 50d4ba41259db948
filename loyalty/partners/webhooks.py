"""Webhook URL safety, signing (Standard Webhooks) and delivery with backoff."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from standardwebhooks.webhooks import Webhook

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.partners.models import (
    DeliveryStatus,
    OutboxEvent,
    PartnerMember,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

TIMEOUT_SECONDS = 10
DISABLE_AFTER = dt.timedelta(days=3)
MAX_BACKOFF = dt.timedelta(hours=6)


def _test_loopback_allowed(scheme: str, host: str) -> bool:
    return (
        bool(getattr(settings, "WEBHOOKS_ALLOW_HTTP_LOCALHOST", False))
        and scheme in ("http", "https")
        and host == "127.0.0.1"
    )


def webhook_url_check(url: str) -> None:
    """https only, and the host must not resolve to a loopback, private, link-local, reserved
    or metadata address (checked at registration and again before every send)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _test_loopback_allowed(parts.scheme, host):
        return
    if parts.scheme != "https" or not host:
        raise ValidationFailed(
            "Webhook URLs must use https", code="invalid_webhook_url", fields={"url": ["Must be https."]}
        )
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ValidationFailed(
            "Webhook host does not resolve", code="invalid_webhook_url", fields={"url": ["Host does not resolve."]}
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise ValidationFailed(
                "Webhook URLs must not point at private, loopback, link-local or metadata addresses",
                code="invalid_webhook_url",
                fields={"url": ["Not a public address."]},
            )


def deliveries_create(*, event: OutboxEvent) -> list[int]:
    """Fan one outbox event out to the endpoints of partners linked to its member."""
    if event.member_id is None:
        OutboxEvent.objects.filter(pk=event.pk, published_at__isnull=True).update(published_at=clock.now())
        return []
    partners = PartnerMember.objects.filter(member_id=event.member_id).values("partner_id")
    endpoints = WebhookEndpoint.objects.filter(partner_id__in=partners, is_active=True, deleted_at__isnull=True)
    now = clock.now()
    rows = [
        WebhookDelivery(endpoint=e, event=event, next_attempt_at=now, created_at=now)
        for e in endpoints
        if event.event_type in e.event_types
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    OutboxEvent.objects.filter(pk=event.pk, published_at__isnull=True).update(published_at=now)
    return list(WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING).values_list("pk", flat=True))


def _payload(event: OutboxEvent) -> str:
    return json.dumps(
        {"type": event.event_type, "timestamp": event.created_at.isoformat(), "data": event.payload},
        separators=(",", ":"),
    )


def _send(endpoint: WebhookEndpoint, event: OutboxEvent) -> tuple[int | None, str]:
    body = _payload(event)
    msg_id = f"msg_{event.pk}"
    signed_at = clock.now()
    signature = Webhook(endpoint.secret).sign(msg_id, signed_at, body)
    request = urllib.request.Request(  # noqa: S310 - scheme and address checked by webhook_url_check
        endpoint.url,
        data=body.encode(),
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))[:500]


def delivery_attempt(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send one delivery now; log the attempt; schedule a retry with exponential backoff, give up
    and disable the endpoint after 3 days of failures, disable at once on 410 Gone."""
    endpoint, event = delivery.endpoint, delivery.event
    now = clock.now()
    started = time.monotonic()
    try:
        webhook_url_check(endpoint.url)
        status, error = _send(endpoint, event)
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
