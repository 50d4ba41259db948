from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from loyalty.activity.models import EventRule, EventType, MemberEvent
from loyalty.activity.services.linking import partner_member_link
from loyalty.activity.services.purchases import FUTURE_TOLERANCE, _earning_member
from loyalty.core import clock
from loyalty.core.constraints import is_external_id_repeat
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.engagement.services.challenges import challenges_on_event
from loyalty.engagement.services.events import (
    ATTENDED_EVENT_TYPE,
    community_event_attendance_locked,
    community_event_attended_record,
)
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger import services as ledger
from loyalty.partners.services import outbox_record

if TYPE_CHECKING:
    from loyalty.partners.models import Partner


def event_record(
    *,
    partner: Partner | None,
    member_number: str,
    event_type: str,
    external_id: str | None = None,
    occurred_at: dt.datetime | None = None,
    program_name: str | None = None,
    community_event_id: int | None = None,
    actor: Any = None,
) -> tuple[MemberEvent, bool]:
    """Record a custom event and award the points of its rule within the rule's limits per member
    per day / week / lifetime (over the limit: recorded with 0 points and the reason).

    ``event_attended`` checks a registered member in at a community event (``community_event_id``,
    required): once per registration (a second check-in returns the first event, ``created``
    False); who may check in: ``engagement.services.events.community_event_attendance_locked``.
    ``actor``: the staff user checking in (audited)."""
    now = clock.now()
    occurred_at = occurred_at or now
    if occurred_at > now + FUTURE_TOLERANCE:
        raise ValidationFailed("occurred_at is in the future", code="invalid_occurred_at")
    kind = EventType.objects.filter(code=event_type).first()
    if kind is None:
        raise ValidationFailed(
            f"Unknown event type '{event_type}'", code="unknown_event_type", fields={"event_type": ["Unknown."]}
        )
    if (event_type == ATTENDED_EVENT_TYPE) != (community_event_id is not None):
        raise ValidationFailed(
            f"community_event_id goes with (and only with) the event type {ATTENDED_EVENT_TYPE}",
            code="community_event_required" if community_event_id is None else "community_event_unexpected",
            fields={"community_event_id": ["Required." if community_event_id is None else "Not for this type."]},
        )
    member = _earning_member(member_number, None)
    program = (
        ledger_selectors.partner_program(partner=partner, name=program_name)
        if partner
        else ledger_selectors.program_default()
    )
    with transaction.atomic(durable=True), ledger.member_account_locked(member=member, program=program) as locked:
        if external_id:
            existing = MemberEvent.objects.filter(partner=partner, external_id=external_id).first()
            if existing is not None:
                if existing.member_id != member.pk or existing.event_type_id != kind.pk:
                    raise Conflict("A different event with this external_id exists", code="duplicate_external_id")
                return existing, False
        registration = None
        if community_event_id is not None:  # engagement: a community event's check-in, once
            registration = community_event_attendance_locked(
                locked=locked, partner=partner, community_event_id=community_event_id
            )
            if registration.attendance_id is not None:
                return registration.attendance, False
        event = event_award_locked(
            locked=locked, kind=kind, partner=partner, external_id=external_id, occurred_at=occurred_at, now=now
        )
        if registration is not None:
            community_event_attended_record(registration=registration, member_event=event, actor=actor, at=now)
    return event, True


def event_award_locked(
    *,
    locked: ledger.LockedAccount,
    kind: EventType,
    partner: Partner | None,
    occurred_at: dt.datetime,
    now: dt.datetime,
    external_id: str | None = None,
    points: int | None = None,
) -> MemberEvent:
    """Record one event of ``kind`` for the locked account's member and award its rule's points within
    the rule's limits (over a limit: recorded with 0 points and the reason). ``points`` given: that many
    instead of the rule's (a survey's own reward), still within the rule's limits. The caller holds the
    account lock in its durable transaction (``event_record``, the survey workflow)."""
    member = locked.member
    program = locked.program
    rule = (
        EventRule.objects.filter(program=program, event_type=kind, is_active=True)
        .filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=now),
            Q(valid_until__isnull=True) | Q(valid_until__gt=now),
        )
        .first()
    )
    given, note = (points or 0), ("no rule for this event" if points is None else "")
    if rule is not None:
        given, note = (rule.points if points is None else points), ""
        awarded = MemberEvent.objects.filter(member=member, rule=rule, points__gt=0)
        limits = [
            (rule.limit_per_day, awarded.filter(occurred_at__gte=occurred_at - dt.timedelta(days=1)), "daily"),
            (rule.limit_per_week, awarded.filter(occurred_at__gte=occurred_at - dt.timedelta(days=7)), "weekly"),
            (rule.limit_lifetime, awarded, "lifetime"),
        ]
        for limit, used, label in limits:
            if limit is not None and used.count() >= limit:
                given, note = 0, f"{label} limit of {limit} reached"
                break
    partner_member_link(partner=partner, member=member)
    try:
        with transaction.atomic():
            event = MemberEvent.objects.create(
                member=member,
                partner=partner,
                event_type=kind,
                external_id=external_id or None,
                occurred_at=occurred_at,
                points=given,
                rule=rule,
                note=note,
                created_at=now,
            )
    except IntegrityError as exc:
        if not is_external_id_repeat(exc):
            raise
        raise Conflict("An event with this external_id exists", code="duplicate_external_id") from exc
    challenges_on_event(locked=locked, event_type=kind.code, occurred_at=occurred_at)  # engagement
    if given:
        ledger.points_credit_locked(locked=locked, points=given, reason=f"event {kind.code}", partner=partner)
        outbox_record(
            event_type="points.earned",
            member=member,
            payload={
                "member_number": member.member_number,
                "event_type": kind.code,
                "points": given,
                "partner_id": getattr(partner, "pk", None),
            },
        )
    return event
