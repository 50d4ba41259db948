"""Reads for others about partners: the one coalition access rule.

A partner sees a member's personal data (profile, balance, entries) and may burn the member's
points only where the member enrolled with it, or where the member's consent "sharing with
partners" is on record. Earning by card number is open to every partner of the program. A card
presented at a partner (``LinkVia.CARD``) makes an earn-only link that never widens this.
Everything that asks "may this partner ...?" about a member calls ``partner_member_access`` (one
member) or ``partner_members_visible`` (a queryset), and nothing else decides it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from loyalty.partners.models import LinkVia, Partner, PartnerMember

if TYPE_CHECKING:  # type hints only: partners and members are siblings (neither imports the other)
    from members.models import Member

# members.models.ConsentPurpose.PARTNER_SHARING, on every channel (the partners app sits beside
# members and does not import it; tests/api/test_access.py checks the two agree).
PARTNER_SHARING = "partner_sharing"
SHARING_CHANNEL = ""


@dataclass(frozen=True)
class Access:
    """What a partner may do with one member."""

    earn: bool  # name the member in purchases and events (every partner of the program)
    read: bool  # see personal data, balance and entries; receive the member's program webhooks
    burn: bool  # redeem points without a one-time redemption code from the member


def partner_member_access(*, partner: Partner | None, member: Member) -> Access:
    """What ``partner`` may do with ``member`` (None: staff and the member themselves, who may do
    all). One query: the enrollment link or the sharing consent, as ``partner_members_visible``."""
    if partner is None:
        return Access(earn=True, read=True, burn=True)
    one = member._meta.model.objects.filter(pk=member.pk)
    readable = partner_members_visible(partner=partner, members=one).exists()
    return Access(earn=True, read=readable, burn=readable)


def partner_members_visible(*, partner: Partner, members: QuerySet) -> QuerySet:
    """The members of ``members`` whose personal data ``partner`` may read (bulk form of
    ``partner_member_access(...).read``: one query, no row per member in Python)."""
    enrolled = PartnerMember.objects.filter(partner=partner, member=OuterRef("pk"), via=LinkVia.ENROLLED)
    consent = members.model._meta.get_field("consents").related_model
    shared = consent.objects.filter(
        member=OuterRef("pk"), purpose=PARTNER_SHARING, channel=SHARING_CHANNEL, granted=True
    )
    return members.filter(Q(Exists(enrolled)) | Q(Exists(shared)))


def partner_ids_reading_member(*, member: Member) -> tuple[frozenset[int], bool]:
    """Who may read ``member``: the ids of the partners it enrolled with, and whether its sharing
    consent is on record (then every partner may). For the webhook fan-out."""
    enrolled = frozenset(
        PartnerMember.objects.filter(member=member, via=LinkVia.ENROLLED).values_list("partner_id", flat=True)
    )
    shared = member.consents.filter(purpose=PARTNER_SHARING, channel=SHARING_CHANNEL, granted=True).exists()
    return enrolled, shared
