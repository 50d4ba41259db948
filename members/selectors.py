from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from loyalty.core.errors import NotFound, ValidationFailed
from members import luhn
from members.models import Consent, ConsentEvent, Member


def member_number_clean(member_number: str) -> str:
    """The member number as stored (spaces and dashes dropped); ``invalid_member_number`` when its
    check digit is wrong."""
    number = (member_number or "").replace(" ", "").replace("-", "")
    if not luhn.is_valid(number):
        raise ValidationFailed(f"'{member_number}' is not a valid member number", code="invalid_member_number")
    return number


def member_get_by_number(*, member_number: str) -> Member:
    number = member_number_clean(member_number)
    try:
        return Member.objects.get(member_number=number)
    except Member.DoesNotExist:
        raise NotFound("No member with this number", code="member_not_found") from None


def consent_state(*, member: Member) -> dict[tuple[str, str], bool]:
    """Current consent per (purpose, channel). Absent means never granted."""
    return {(c.purpose, c.channel): c.granted for c in Consent.objects.filter(member=member)}


def consent_granted(*, member: Member, purpose: str, channel: str = "") -> bool:
    """The one answer to "may we use this member's data for <purpose> on <channel>?"."""
    return Consent.objects.filter(member=member, purpose=purpose, channel=channel, granted=True).exists()


def members_with_consent(
    *, purpose: str, channel: str = "", queryset: QuerySet[Member] | None = None
) -> QuerySet[Member]:
    """Bulk form of ``consent_granted`` for campaigns and segments: one EXISTS subquery."""
    base = queryset if queryset is not None else Member.objects.all()
    return base.filter(
        Exists(Consent.objects.filter(member=OuterRef("pk"), purpose=purpose, channel=channel, granted=True))
    )


def consent_history(*, member: Member) -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(member=member).order_by("-occurred_at", "-id")


def consent_states_of(*, member_ids: list[int], purpose: str) -> dict[int, dict[str, bool]]:
    """Bulk form of ``consent_state`` for one purpose: per member, the recorded state per channel
    ("" = all channels); a member or channel absent was never asked (one query)."""
    states: dict[int, dict[str, bool]] = {}
    rows = Consent.objects.filter(member_id__in=member_ids, purpose=purpose).values_list(
        "member_id", "channel", "granted"
    )
    for member_id, channel, granted in rows:
        states.setdefault(member_id, {})[channel] = granted
    return states
