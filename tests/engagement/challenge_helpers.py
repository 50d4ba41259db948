"""Builders shared by the challenge, celebration and community-event tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from loyalty.activity.models import EventType
from loyalty.activity.services import purchase_record
from loyalty.core import clock
from loyalty.engagement.models import Badge, Challenge
from loyalty.ledger.selectors import program_default

T = dt.datetime(2030, 5, 10, 12, tzinfo=dt.UTC)
MAY = (dt.datetime(2030, 5, 1, tzinfo=dt.UTC), dt.datetime(2030, 6, 1, tzinfo=dt.UTC))


def challenge(**fields) -> Challenge:
    fields.setdefault("program", program_default())
    fields.setdefault("name", "Dairy in May")
    fields.setdefault("kind", "purchase_count")
    fields.setdefault("target", Decimal("3"))
    fields.setdefault("starts_at", MAY[0])
    fields.setdefault("ends_at", MAY[1])
    fields.setdefault("reward_points", 100)
    fields.setdefault("created_at", clock.now())
    segments = fields.pop("segments", [])
    tiers = fields.pop("tiers", [])
    c = Challenge.objects.create(**fields)
    c.segments.set(segments)
    c.tiers.set(tiers)
    return c


def badge(name="Dairy fan", icon="leaf") -> Badge:
    return Badge.objects.create(name=name, icon=icon, created_at=clock.now())


def buy(member, external_id, *, category="Dairy", amount="10.00", partner=None, store="", at=None):
    return purchase_record(
        partner=partner,
        member=member,
        external_id=external_id,
        occurred_at=at or clock.now(),
        lines=[{"sku": f"sku-{category}", "category": category, "quantity": "1", "amount": amount}],
        store=store,
    )


def event_type(code="survey_completed", name="Survey completed") -> EventType:
    return EventType.objects.get_or_create(code=code, defaults={"name": name})[0]
