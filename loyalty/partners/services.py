"""Everything that writes partners' data: for now, the outbox of events."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.core.errors import NotFound, ValidationFailed
from loyalty.core.services import Actor, audit_record
from loyalty.partners.models import (
    WEBHOOK_EVENT_TYPES,
    LinkVia,
    OutboxEvent,
    Partner,
    PartnerAPIKey,
    PartnerMember,
    WebhookEndpoint,
)
from loyalty.partners.webhooks import webhook_secret_encrypt, webhook_url_check

if TYPE_CHECKING:  # type hints only: partners and members are siblings (neither imports the other)
    from members.models import Member


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    """Dates, decimals and UUIDs become strings, the way webhooks will send them."""
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def outbox_record(*, event_type: str, member: Member | None, payload: dict[str, Any]) -> OutboxEvent:
    """Write one event row in the caller's transaction; it is delivered after commit by a later job.

    ``event_type`` is dotted (``tier.upgraded``); ``member`` may be None for events about no member."""
    if not event_type or "." not in event_type:
        raise ValidationFailed("event_type must look like 'subject.verb'", code="invalid_event_type")
    now = clock.now()
    wanted = event_type in webhook_event_types_wanted()
    event = OutboxEvent.objects.create(
        event_type=event_type,
        member=member,
        payload=_jsonable(payload),
        created_at=now,
        # no endpoint takes this type: nothing to fan out (what deliveries_create would conclude)
        published_at=None if wanted else now,
    )
    if wanted:
        transaction.on_commit(lambda: _dispatch_later(event.pk))
    return event


@dataclass(frozen=True)
class NewEvent:
    """One event for ``outbox_record_many``: what ``outbox_record`` takes, and when it happened."""

    event_type: str
    member_id: int | None
    at: dt.datetime
    payload: dict[str, Any] = field(default_factory=dict)


def outbox_record_many(*, events: Sequence[NewEvent]) -> int:
    """Write many event rows at once, in the caller's transaction, as ``outbox_record`` writes each
    (payload made JSON-safe; published at once when no endpoint takes the type). No task per
    event: the webhook sweep (``webhooks_sweep``) delivers them. Returns how many were written."""
    if any(not e.event_type or "." not in e.event_type for e in events):
        raise ValidationFailed("event_type must look like 'subject.verb'", code="invalid_event_type")
    wanted = webhook_event_types_wanted()
    OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                event_type=e.event_type,
                member_id=e.member_id,
                payload=_jsonable(e.payload),
                created_at=e.at,
                published_at=None if e.event_type in wanted else e.at,
            )
            for e in events
        ],
        batch_size=2000,
    )
    return len(events)


def partner_members_link_many(
    *, partner: Partner, member_ids: Sequence[int], linked_at: Sequence[dt.datetime], via: str = LinkVia.CARD
) -> None:
    """Link many members to ``partner`` (``linked_at``: per member), each as the one-by-one link
    does: an existing link is kept as it is."""
    if len(member_ids) != len(linked_at):
        raise ValueError("one linked_at per member")
    PartnerMember.objects.bulk_create(
        [
            PartnerMember(partner=partner, member_id=m, via=via, linked_at=at)
            for m, at in zip(member_ids, linked_at, strict=True)
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )


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


def webhook_endpoint_create(*, partner: Partner, url: str, event_types: list[str]) -> tuple[WebhookEndpoint, str]:
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


def webhook_endpoint_delete(*, partner: Partner, endpoint_id: int) -> None:
    updated = WebhookEndpoint.objects.filter(pk=endpoint_id, partner=partner, deleted_at__isnull=True).update(
        deleted_at=clock.now(), is_active=False, disabled_reason="deleted by partner"
    )
    if not updated:
        raise NotFound("No such webhook endpoint", code="webhook_not_found")


def partner_key_create(
    *,
    partner_name: str,
    scopes: list[str],
    expires_in: dt.timedelta | None = None,
    actor: Actor = "manage.py partner_key_create",
) -> tuple[Partner, bool, str]:
    """Create (if missing) the partner and a new hashed API key; returns the raw key once. Both are
    audited (the key named by its prefix: its primary key holds the hash)."""
    name = (partner_name or "").strip()
    if not name:
        raise ValidationFailed("A partner name is required", code="partner_name_required")
    if not scopes or set(scopes) - {"read", "write"}:
        raise ValidationFailed("Scopes are read and/or write", code="invalid_scopes")
    with transaction.atomic():
        partner, created = Partner.objects.get_or_create(name=name)
        expiry = clock.now() + expires_in if expires_in else None
        key, raw = PartnerAPIKey.objects.create_key(
            partner=partner, name=f"{name[:40]} key", scopes=sorted(set(scopes)), expiry_date=expiry
        )
        if created:
            audit_record(actor=actor, action="partner.created", target=partner, after={"name": partner.name})
        audit_record(
            actor=actor,
            action="api_key.created",
            target=key,
            target_id=key.prefix,
            after={"partner": partner.pk, "name": key.name, "scopes": key.scopes, "expiry_date": expiry},
        )
    return partner, created, raw


def partner_ensure(*, name: str) -> Partner:
    """The partner of this name, created if missing (no API key: see ``partner_key_create``)."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A partner name is required", code="partner_name_required")
    partner, _ = Partner.objects.get_or_create(name=name)
    return partner
