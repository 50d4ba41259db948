"""Transactional messages: outbox events in, queued messages out.

Each outbox event of a type below is consumed once: the sweep (and the task after a write) takes
recent events without an ``EventHandled`` row, queues the trigger's content on its channels with
the send key ``event:<event id>:<member>:<channel>`` and writes the ``EventHandled`` row, both with
``ON CONFLICT DO NOTHING``; two sweeps at once queue each message once. The lookback window bounds
the scan; events older than it are not messaged (a welcome three days late is worse than none)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program
from loyalty.messaging.models import Content, EventHandled, MessagingPolicy, Trigger
from loyalty.messaging.services.sending import messages_dispatch, messages_queue
from loyalty.partners.models import OutboxEvent
from offers.models import Coupon, Reward

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


@dataclass(frozen=True)
class Lookups:
    """Names and codes the events refer to by id (offers' payloads carry ids, never a coupon code):
    read once per sweep. The code goes only to the coupon's own member."""

    rewards: dict[int, str]
    coupons: dict[int, dict[str, Any]]


def lookups_for(events: list[OutboxEvent]) -> Lookups:
    reward_ids = {e.payload.get("reward_id") for e in events} - {None}
    coupon_ids = {e.payload.get("coupon_id") for e in events} - {None}
    rewards = dict(Reward.objects.filter(pk__in=reward_ids).values_list("pk", "name")) if reward_ids else {}
    coupons = (
        {
            c["pk"]: c
            for c in Coupon.objects.filter(pk__in=coupon_ids).values(
                "pk", "code", "member_id", "expires_at", "reward__name", "offer__name"
            )
        }
        if coupon_ids
        else {}
    )
    return Lookups(rewards=rewards, coupons=coupons)


def event_variables(
    event_type: str, payload: dict[str, Any], member_id: int | None = None, lookups: Lookups | None = None
) -> dict[str, Any]:
    """The variables a trigger's content may use, from the event's payload (and what it names by id)."""
    lookups = lookups or Lookups(rewards={}, coupons={})
    coupon = lookups.coupons.get(payload.get("coupon_id"))
    if coupon is not None and coupon["member_id"] != member_id:
        coupon = None  # never show a code to anyone but its member
    if event_type == "member.enrolled":
        return {"program": payload.get("program")}
    if event_type == "points.earned":
        return {"points": payload.get("points")}
    if event_type in ("tier.upgraded", "tier.downgraded"):
        return {"tier": payload.get("to_tier") or ""}
    if event_type == "reward.redeemed":
        return {
            "reward": lookups.rewards.get(payload.get("reward_id")) or _first(payload, "reward", "reward_name"),
            "points": _first(payload, "points", "points_cost"),
            "coupon_code": coupon["code"] if coupon else _first(payload, "coupon_code", "code"),
        }
    if event_type == "coupon.issued":
        expires = (
            coupon["expires_at"] if coupon and coupon["expires_at"] else _first(payload, "expires_at", "valid_until")
        )
        return {
            "coupon_code": coupon["code"] if coupon else _first(payload, "coupon_code", "code"),
            "reward": (coupon and (coupon["reward__name"] or coupon["offer__name"]))
            or lookups.rewards.get(payload.get("reward_id"))
            or _first(payload, "reward", "reward_name", "offer", "offer_name"),
            "expires_on": _date_text(expires),
        }
    return {}


def _date_text(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, str) and len(value) >= 10:
        return value[:10]
    return value


def _wanted(event: OutboxEvent) -> bool:
    """A coupon issued by a reward redemption is announced by the reward's own message (which
    carries the code): one message per redemption, not two."""
    return not (event.event_type == "coupon.issued" and event.payload.get("source") == "reward")


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
        lookups = lookups_for(events)
        for event in events:
            content = contents.get(EVENT_TRIGGERS[event.event_type])
            if content is None or event.member_id is None or not content.channels or not _wanted(event):
                continue
            program_id = event.payload.get("program_id")
            queued += messages_queue(
                content=content,
                member_ids=[event.member_id],
                channels=content.channels,
                source=f"trigger:{content.trigger}",
                key=f"event:{event.pk}",
                program=Program(pk=program_id) if isinstance(program_id, int) else None,
                context=event_variables(event.event_type, event.payload, event.member_id, lookups),
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
