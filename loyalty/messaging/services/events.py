"""Transactional messages: outbox events in, queued messages out.

Each outbox event of a type below is consumed once: the sweep (and the task after a write) takes
recent events without an ``EventHandled`` row, queues the trigger's content on its channels with
the send key ``event:<event id>:<member>:<channel>`` and writes the ``EventHandled`` row, both with
``ON CONFLICT DO NOTHING``; two sweeps at once queue each message once. The lookback window bounds
the scan; events older than it are not messaged (a welcome three days late is worse than none)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program
from loyalty.messaging.models import Content, EventHandled, MessagingPolicy, Trigger
from loyalty.messaging.services.sending import messages_dispatch, messages_queue
from loyalty.partners.models import OutboxEvent

LOOKBACK = dt.timedelta(days=2)

EVENT_TRIGGERS: dict[str, str] = {
    "member.enrolled": Trigger.WELCOME,
    "points.earned": Trigger.POINTS_EARNED,
    "tier.upgraded": Trigger.TIER_UP,
    "tier.downgraded": Trigger.TIER_DOWN,
    "reward.redeemed": Trigger.REWARD_REDEEMED,
    "coupon.issued": Trigger.COUPON_ISSUED,
}


def _first(payload: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = payload.get(name)
        if value not in (None, ""):
            return value
    return None


def event_variables(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The variables a trigger's content may use, from the event's payload."""
    if event_type == "member.enrolled":
        return {"program": payload.get("program")}
    if event_type == "points.earned":
        return {"points": payload.get("points")}
    if event_type in ("tier.upgraded", "tier.downgraded"):
        return {"tier": payload.get("to_tier") or ""}
    if event_type == "reward.redeemed":
        return {
            "reward": _first(payload, "reward", "reward_name"),
            "points": _first(payload, "points", "points_cost"),
            "coupon_code": _first(payload, "coupon_code", "code"),
        }
    if event_type == "coupon.issued":
        return {
            "coupon_code": _first(payload, "coupon_code", "code"),
            "reward": _first(payload, "reward", "reward_name", "offer", "offer_name"),
            "expires_on": _first(payload, "expires_on", "valid_until", "expires_at"),
        }
    return {}


def trigger_contents() -> dict[str, Content]:
    contents = Content.objects.filter(is_active=True).exclude(trigger="").select_related("offer", "reward")
    return {c.trigger: c for c in contents}


def outbox_consume(*, limit: int = 2000, now: dt.datetime | None = None, dispatch: bool = True) -> int:
    """Queue the transactional messages of up to ``limit`` unhandled recent events. Returns the
    number of events handled."""
    now = now or clock.now()
    contents = trigger_contents()
    handled = EventHandled.objects.filter(event=OuterRef("pk"))
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.filter(event_type__in=list(EVENT_TRIGGERS), created_at__gte=now - LOOKBACK)
            .exclude(Exists(handled))
            .order_by("id")[:limit]
        )
        queued: list[int] = []
        for event in events:
            content = contents.get(EVENT_TRIGGERS[event.event_type])
            if content is None or event.member_id is None or not content.channels:
                continue
            program_id = event.payload.get("program_id")
            queued += messages_queue(
                content=content,
                member_ids=[event.member_id],
                channels=content.channels,
                source=f"trigger:{content.trigger}",
                key=f"event:{event.pk}",
                program=Program(pk=program_id) if isinstance(program_id, int) else None,
                context=event_variables(event.event_type, event.payload),
                event_id=event.pk,
                dispatch=False,
            )
        EventHandled.objects.bulk_create(
            [EventHandled(event_id=e.pk, handled_at=now) for e in events], ignore_conflicts=True
        )
        if dispatch and queued:
            transaction.on_commit(lambda: messages_dispatch(message_ids=queued))
    return len(events)


def expiring_reminders_queue(*, now: dt.datetime | None = None, dispatch: bool = True) -> int:
    """Daily: per program, members whose points expire on the day ``expiring_days`` ahead (the
    program's messaging policy; 7 without one, 0 turns it off) get the ``points_expiring`` content.
    Set-based per program; the send key names the account and the day, so a second run that day
    queues nothing. Returns messages queued."""
    now = now or clock.now()
    content = trigger_contents().get(Trigger.POINTS_EXPIRING)
    if content is None or not content.channels:
        return 0
    policies = {p.program_id: p for p in MessagingPolicy.objects.all()}
    default_days = MessagingPolicy._meta.get_field("expiring_days").default
    queued = 0
    for program in Program.objects.all():
        policy = policies.get(program.pk)
        days = policy.expiring_days if policy else default_days
        if not days:
            continue
        start = (now + dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        rows = ledger_selectors.accounts_expiring_between(
            start=start, end=start + dt.timedelta(days=1), program_id=program.pk
        )
        by_points: dict[int, list[int]] = {}
        for row in rows:
            by_points.setdefault(row["points"], []).append(row["account__member_id"])
        for points, member_ids in by_points.items():
            queued += len(
                messages_queue(
                    content=content,
                    member_ids=member_ids,
                    channels=content.channels,
                    source=f"trigger:{content.trigger}",
                    key=f"expiring:{program.pk}:{start.date().isoformat()}",
                    program=program,
                    context={"points": points, "expires_on": start.date().isoformat()},
                    dispatch=dispatch,
                )
            )
    return queued
