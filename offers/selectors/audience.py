"""Who an offer reaches: the preview staff see before publishing (how many members, and a sample).

Set-based over the member base: active members with an account in the offer's program, in one of
its tiers (when it names tiers; members without a tier status count as the program's base tier),
in one of its included segments and in none of its excluded ones. Conditions on a purchase and the
limits are not part of it (they are met, or not, purchase by purchase).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from loyalty.ledger.models import Account
from loyalty.tiers import qualification
from loyalty.tiers.models import MemberTier
from loyalty.tiers.selectors import program_tiers
from members.models import Member, MemberStatus
from offers.models import Offer
from segments.models import SegmentMembership

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class AudiencePreview:
    count: int
    sample: tuple[tuple[str, str], ...]  # (member number, name)


def offer_audience(*, offer: Offer, sample_size: int = SAMPLE_SIZE) -> AudiencePreview:
    """How many members the offer's audience rules let in now, and the first few of them."""
    members = Member.objects.filter(status=MemberStatus.ACTIVE).filter(
        Exists(Account.objects.filter(member_id=OuterRef("pk"), program_id=offer.program_id))
    )
    tier_ids = set(offer.tiers.values_list("pk", flat=True))
    if tier_ids:
        statuses = MemberTier.objects.filter(member_id=OuterRef("pk"), program_id=offer.program_id)
        in_tier = Exists(statuses.filter(tier_id__in=tier_ids))
        base = qualification.base_tier(program_tiers(program=offer.program).rules)
        if base is not None and base.id in tier_ids:
            in_tier = in_tier | ~Exists(statuses)
        members = members.filter(in_tier)
    include = list(offer.segments_include.values_list("pk", flat=True))
    exclude = list(offer.segments_exclude.values_list("pk", flat=True))
    open_rows = SegmentMembership.objects.filter(member_id=OuterRef("pk"), left_at__isnull=True)
    if include:
        members = members.filter(Exists(open_rows.filter(segment_id__in=include)))
    if exclude:
        members = members.filter(~Exists(open_rows.filter(segment_id__in=exclude)))
    sample = tuple(
        (number, f"{first} {last}".strip())
        for number, first, last in members.order_by("pk").values_list("member_number", "first_name", "last_name")[
            :sample_size
        ]
    )
    return AudiencePreview(count=members.count(), sample=sample)


__all__ = ["AudiencePreview", "offer_audience"]
