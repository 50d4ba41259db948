"""Community events: staff publish them, members register and cancel (places counted by a
conditional UPDATE: never more than the capacity, whatever the concurrency), attendance checked
in once by staff or by a partner through the event workflow (``event_attended``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F

from loyalty.core import clock
from loyalty.core.errors import Conflict, NotFound
from loyalty.core.services import audit_record, model_delete_audited, model_save_audited
from loyalty.engagement.models import CommunityEvent, EventRegistration, RegistrationStatus
from members.models import MemberStatus

if TYPE_CHECKING:
    from loyalty.ledger.services import LockedAccount
    from loyalty.partners.models import Partner
    from members.models import Member

ATTENDED_EVENT_TYPE = "event_attended"


def _not_found() -> NotFound:
    return NotFound("No community event with this id", code="community_event_not_found")


EVENT_AUDIT_FIELDS = (
    "program",
    "title",
    "kind",
    "starts_at",
    "ends_at",
    "place",
    "partner",
    "capacity",
    "is_published",
)


def community_event_save(*, event: CommunityEvent, actor: Any, created: bool, reason: str = "") -> CommunityEvent:
    """Staff create or change an event (audited). The capacity may not drop below the places taken
    (read under the event's row lock, so a registration cannot slip in between)."""
    with transaction.atomic():
        if not created:
            taken = CommunityEvent.objects.select_for_update().filter(pk=event.pk).values_list("registered", flat=True)
            event.registered = taken[0] if taken else 0
            if event.capacity < event.registered:
                raise Conflict(
                    f"{event.registered} places are taken: the capacity cannot be lower",
                    code="community_event_capacity_below_registered",
                )
        if event.created_at is None:
            event.created_at = clock.now()
        return model_save_audited(
            instance=event,
            actor=actor,
            created=created,
            fields=EVENT_AUDIT_FIELDS,
            action="community_event",
            reason=reason,
        )


def community_event_delete(*, event: CommunityEvent, actor: Any, reason: str = "") -> None:
    """Delete an event nobody registered for (else unpublish it)."""
    if EventRegistration.objects.filter(event=event).exists():
        raise Conflict(
            "Members registered for this event: unpublish it instead", code="community_event_has_registrations"
        )
    model_delete_audited(
        instance=event, actor=actor, fields=EVENT_AUDIT_FIELDS, action="community_event", reason=reason
    )


def event_register(*, member: Member, event_id: int) -> tuple[EventRegistration, bool]:
    """Take a place at a published event that has not started. Exactly ``capacity`` places: the
    count moves by ``UPDATE ... WHERE registered < capacity`` (the row lock orders concurrent
    registrations; those that find it full get ``community_event_full``). Registering again
    returns the place held (``created`` False); after a cancel it takes a place again."""
    now = clock.now()
    event = CommunityEvent.objects.filter(pk=event_id, is_published=True).first()
    if event is None:
        raise _not_found()
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(f"A {member.status} member cannot register", code="member_inactive")
    if event.starts_at <= now:
        raise Conflict("This event has started: registration is closed", code="community_event_started")
    try:
        with transaction.atomic():
            held = EventRegistration.objects.select_for_update().filter(event=event, member=member).first()
            if held is not None and held.status == RegistrationStatus.REGISTERED:
                return held, False
            if not CommunityEvent.objects.filter(pk=event.pk, registered__lt=F("capacity")).update(
                registered=F("registered") + 1
            ):
                raise Conflict("This event is full", code="community_event_full")
            if held is not None:
                held.status, held.registered_at, held.cancelled_at = RegistrationStatus.REGISTERED, now, None
                held.save(update_fields=["status", "registered_at", "cancelled_at"])
                return held, True
            return EventRegistration.objects.create(event=event, member=member, registered_at=now), True
    except IntegrityError:
        # the same member registering twice at once: the other request holds the place (and this
        # one's count was rolled back with its block)
        return EventRegistration.objects.get(event=event, member=member), False


def event_registration_cancel(*, member: Member, event_id: int) -> EventRegistration:
    """Give a place back before the event starts (its count goes down in the same transaction)."""
    now = clock.now()
    with transaction.atomic():
        held = (
            EventRegistration.objects.select_for_update()
            .select_related("event")
            .filter(event_id=event_id, member=member, status=RegistrationStatus.REGISTERED)
            .first()
        )
        if held is None:
            raise NotFound("You are not registered for this event", code="community_event_registration_not_found")
        if held.event.starts_at <= now:
            raise Conflict("This event has started: it can no longer be cancelled", code="community_event_started")
        held.status, held.cancelled_at = RegistrationStatus.CANCELLED, now
        held.save(update_fields=["status", "cancelled_at"])
        CommunityEvent.objects.filter(pk=held.event_id).update(registered=F("registered") - 1)
    return held


def community_event_attendance_locked(
    *, locked: LockedAccount, partner: Partner | None, community_event_id: int
) -> EventRegistration:
    """The registration an ``event_attended`` check-in is for (the event workflow calls it under
    the member's account lock). Who may check in: staff (``partner`` None) for any event of the
    program; a partner for its own events and coalition events (no partner) of its program; any
    other event is ``community_event_not_found`` (404, as an unknown id). A member without a
    place: ``community_event_not_registered`` (409)."""
    event = CommunityEvent.objects.filter(
        pk=community_event_id, program_id=locked.program.pk, is_published=True
    ).first()
    if event is None or (partner is not None and event.partner_id not in (None, partner.pk)):
        raise _not_found()
    held = (
        EventRegistration.objects.select_for_update()
        .filter(event=event, member_id=locked.member.pk, status=RegistrationStatus.REGISTERED)
        .first()
    )
    if held is None:
        raise Conflict("This member has no place at this event", code="community_event_not_registered")
    return held


def community_event_attended_record(
    *, registration: EventRegistration, member_event: Any, actor: Any = None, at: dt.datetime | None = None
) -> EventRegistration:
    """Mark the registration attended by ``member_event`` (the event workflow's row), in the
    caller's transaction; the one-to-one ``attendance`` keeps it once. Staff check-ins are audited."""
    registration.attended_at = at or clock.now()
    registration.attendance = member_event
    registration.save(update_fields=["attended_at", "attendance"])
    if actor is not None:
        audit_record(actor=actor, action="community_event.checked_in", target=registration, reason="")
    return registration
