"""Reads of community events for the portal and staff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, Q

from loyalty.engagement.models import CommunityEvent, EventRegistration, RegistrationStatus

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from members.models import Member


@dataclass(frozen=True)
class EventCard:
    pk: int
    title: str
    kind: str
    description: str
    starts_at: dt.datetime
    place: str
    partner_name: str
    capacity: int
    places_left: int
    registered: bool
    attended: bool
    started: bool

    @property
    def full(self) -> bool:
        return self.places_left <= 0


def member_community_events(*, member: Member, program: Program, now: dt.datetime) -> list[EventCard]:
    """Published events of the program to come, and the ones the member registered for (two queries)."""
    events = list(
        CommunityEvent.objects.filter(program=program, is_published=True)
        .filter(Q(starts_at__gt=now - dt.timedelta(days=1)) | Q(registrations__member=member))
        .select_related("partner")
        .distinct()
        .order_by("starts_at", "pk")
    )
    mine = {r.event_id: r for r in EventRegistration.objects.filter(member=member, event_id__in=[e.pk for e in events])}
    cards = []
    for e in events:
        reg = mine.get(e.pk)
        cards.append(
            EventCard(
                pk=e.pk,
                title=e.title,
                kind=e.get_kind_display(),
                description=e.description,
                starts_at=e.starts_at,
                place=e.place,
                partner_name=e.partner.name if e.partner_id else "",
                capacity=e.capacity,
                places_left=e.places_left,
                registered=bool(reg and reg.status == RegistrationStatus.REGISTERED),
                attended=bool(reg and reg.attended_at),
                started=e.starts_at <= now,
            )
        )
    return cards


def community_event_figures(*, event_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per event: places taken and members checked in (one grouped query)."""
    rows = (
        EventRegistration.objects.filter(event_id__in=event_ids, status=RegistrationStatus.REGISTERED)
        .values("event_id")
        .annotate(registered=Count("id"), attended=Count("id", filter=Q(attended_at__isnull=False)))
    )
    out = {pk: {"registered": 0, "attended": 0} for pk in event_ids}
    for row in rows:
        out[row["event_id"]] = {"registered": row["registered"], "attended": row["attended"]}
    return out
