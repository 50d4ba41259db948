"""Everything that writes partners' data: for now, the outbox of events."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.core.errors import NotFound, ValidationFailed
from loyalty.core.sql import Writes, row_insert
from loyalty.partners.models import WEBHOOK_EVENT_TYPES, OutboxEvent, Partner, PartnerAPIKey, WebhookEndpoint
from loyalty.partners.webhooks import webhook_secret_encrypt, webhook_url_check


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    """Dates, decimals and UUIDs become strings, the way webhooks will send them."""
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def outbox_record(
    *, event_type: str, member: Any | None, payload: dict[str, Any], writes: Writes | None = None
) -> OutboxEvent:
    """Write one event row in the caller's transaction; it is delivered after commit by a later job.

    ``event_type`` is dotted (``tier.upgraded``); ``member`` may be None for events about no member.
    ``writes``: add the row to the caller's unit of work (written when it runs) instead of now."""
    if not event_type or "." not in event_type:
        raise ValidationFailed("event_type must look like 'subject.verb'", code="invalid_event_type")
    now = clock.now()
    wanted = event_type in webhook_event_types_wanted()
    event = OutboxEvent(
        event_type=event_type,
        member=member,
        payload=_jsonable(payload),
        created_at=now,
        # no endpoint takes this type: nothing to fan out (what deliveries_create would conclude)
        published_at=None if wanted else now,
    )
    if writes is not None:
        writes.insert(event)
    else:
        row_insert(event)
    if wanted:
        transaction.on_commit(lambda: _dispatch_later(event.pk))  # the pk is set by then
    return event


def webhook_event_types_wanted() -> frozenset[str]:
    """The event types some active webhook endpoint subscribes to (configuration, read once per
    configuration stamp)."""

    def load() -> frozenset[str]:
        endpoints = WebhookEndpoint.objects.filter(is_active=True, deleted_at__isnull=True)
        return frozenset(t for types in endpoints.values_list("event_types", flat=True) for t in types)

    return config_cached("webhook_event_types_wanted", load)


def _dispatch_later(event_id: int) -> None:
    from loyalty.partners.tasks import webhooks_dispatch_event

    webhooks_dispatch_event.delay(event_id)


def webhook_endpoint_create(*, partner, url: str, event_types: list[str]) -> tuple[WebhookEndpoint, str]:
    """Register a partner's endpoint; returns it with its signing secret (shown once)."""
    unknown = set(event_types) - set(WEBHOOK_EVENT_TYPES)
    if unknown or not event_types:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(sorted(unknown)) or 'none given'}", code="invalid_event_types"
        )
    webhook_url_check(url)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    endpoint = WebhookEndpoint.objects.create(
        partner=partner,
        url=url,
        event_types=sorted(set(event_types)),
        secret_encrypted=webhook_secret_encrypt(secret),
        created_at=clock.now(),
    )
    return endpoint, secret


def webhook_endpoint_delete(*, partner, endpoint_id: int) -> None:
    updated = WebhookEndpoint.objects.filter(pk=endpoint_id, partner=partner, deleted_at__isnull=True).update(
        deleted_at=clock.now(), is_active=False, disabled_reason="deleted by partner"
    )
    if not updated:
        raise NotFound("No such webhook endpoint", code="webhook_not_found")


def partner_key_create(*, partner_name: str, scopes: list[str], expires_in=None) -> tuple[Partner, bool, str]:
    """Create (if missing) the partner and a new hashed API key; returns the raw key once."""
    name = (partner_name or "").strip()
    if not name:
        raise ValidationFailed("A partner name is required", code="partner_name_required")
    if not scopes or set(scopes) - {"read", "write"}:
        raise ValidationFailed("Scopes are read and/or write", code="invalid_scopes")
    with transaction.atomic():
        partner, created = Partner.objects.get_or_create(name=name)
        expiry = clock.now() + expires_in if expires_in else None
        _, raw = PartnerAPIKey.objects.create_key(
            partner=partner, name=f"{name[:40]} key", scopes=sorted(set(scopes)), expiry_date=expiry
        )
    return partner, created, raw
