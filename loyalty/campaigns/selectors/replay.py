"""The Complete Journey replay: the data's 27 coupon campaigns read back as campaign results.

Each imported campaign is an offer (source ``complete_journey``, see ``offers.services.bulk``) whose
only eligibility is a static segment of the households it targeted. For one campaign:

- arm **targeted**: the members of that segment (open memberships);
- arm **holdout** (untargeted): the other members of the offer's program *active in the data*, i.e. with at
  least one purchase in that program at any time (every imported household has baskets; members who never
  bought, such as staff-made test members, are left out);
- the window: the campaign's days, from the offer's ``valid_from`` to its ``valid_until`` (the day after
  its last day);
- a member's **revenue**: kept spend in the window, the sum over its purchases of eligible amount less the
  returned amount (the spend the segments and the ranking use); **converted**: at least one purchase in
  the window that was not returned in full;
- **delivered**: every targeted household got the campaign's mailer (the targeted arm's reach), the
  holdout none; **clicked**: members of the arm who used one of the campaign's coupons in the window
  (the data's coupon redemptions); **reward cost**: those uses × the offer's coupon value (the median
  coupon discount at the till, ``benefit_value``; 0 when the data shows none). No points or messages.

Then ``loyalty.campaigns.results.campaign_results`` gives the figures. The caveat (``REPLAY_CAVEAT``):
the households were chosen by the retailer, not randomized, so the difference between the arms mixes
the campaign's effect with who was chosen (targeted households are the heavier buyers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from loyalty.campaigns.results import ArmData, CampaignResults, campaign_results
from loyalty.ledger.models import Purchase
from offers.models import CouponUse, Offer, RedemptionState
from segments.models import SegmentKind, SegmentMembership

CJ_SOURCE = "complete_journey"  # offers.services.bulk's source for The Complete Journey's campaigns
TARGETED = "targeted"
HOLDOUT = "holdout"
REPLAY_CAVEAT = (
    "The households were chosen by the retailer, not randomized: the difference between targeted and "
    "untargeted households mixes the campaign's effect with who was chosen, so it is not the campaign's uplift."
)

_KEPT = ExpressionWrapper(
    F("eligible_amount") - F("returned_amount"), output_field=DecimalField(max_digits=16, decimal_places=2)
)


@dataclass(frozen=True)
class CampaignReplay:
    offer_id: int
    external_id: str
    name: str
    starts_on: dt.date | None
    ends_on: dt.date | None  # the campaign's last day
    arms: tuple[ArmData, ...]
    results: CampaignResults | None  # None when the campaign has no window
    notes: tuple[str, ...] = ()
    caveat: str = REPLAY_CAVEAT


def imported_campaigns(*, program_id: int | None = None) -> list[Offer]:
    """The offers the Complete Journey's campaigns became, in campaign-number order."""
    offers = Offer.objects.filter(source=CJ_SOURCE, external_id__isnull=False)
    if program_id is not None:
        offers = offers.filter(program_id=program_id)
    return sorted(offers, key=lambda o: (len(o.external_id), o.external_id))


def _active_members(program_id: int) -> set[int]:
    return set(Purchase.objects.filter(program_id=program_id).values_list("member_id", flat=True).distinct())


def _targeted_members(offer: Offer) -> set[int]:
    return set(
        SegmentMembership.objects.filter(
            segment__in=offer.segments_include.filter(kind=SegmentKind.STATIC), left_at__isnull=True
        )
        .values_list("member_id", flat=True)
        .distinct()
    )


def _arms(offer: Offer, *, active: set[int]) -> list[ArmData]:
    start, end = offer.valid_from, offer.valid_until
    spend = list(
        Purchase.objects.filter(program_id=offer.program_id, occurred_at__gte=start, occurred_at__lt=end)
        .values("member_id")
        .annotate(kept=Sum(_KEPT), bought=Count("id", filter=Q(returned_amount__lt=F("eligible_amount"))))
        .values_list("member_id", "kept", "bought")
    )
    revenue_of = {member: float(kept or 0) for member, kept, _ in spend}
    converted = {member for member, _, bought in spend if bought}
    uses = dict(
        CouponUse.objects.filter(
            coupon__offer=offer,
            status=RedemptionState.COMPLETED,
            used_at__gte=start,
            used_at__lt=end,
            member_id__isnull=False,
        )
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    coupon_value = offer.benefit_value or Decimal(0)
    targeted = _targeted_members(offer)
    holdout = active - targeted

    def arm(name: str, members: Iterable[int], *, is_holdout: bool) -> ArmData:
        ids = sorted(members)
        return ArmData(
            name=name,
            is_holdout=is_holdout,
            revenue=np.fromiter((revenue_of.get(m, 0.0) for m in ids), dtype=np.float64, count=len(ids)),
            converted=sum(1 for m in ids if m in converted),
            delivered=0 if is_holdout else len(ids),
            clicked=sum(1 for m in ids if m in uses),
            reward_cost=(Decimal(0) if is_holdout else coupon_value * sum(uses.get(m, 0) for m in ids)),
        )

    return [arm(TARGETED, targeted, is_holdout=False), arm(HOLDOUT, holdout, is_holdout=True)]


def replay_arms(offer: Offer) -> list[ArmData]:
    """The arms of one imported campaign (targeted, holdout) over its window; empty without a window."""
    if offer.valid_from is None or offer.valid_until is None:
        return []
    return _arms(offer, active=_active_members(offer.program_id))


def _days(offer: Offer) -> tuple[dt.date | None, dt.date | None]:
    zone = timezone.get_default_timezone()
    starts = timezone.localtime(offer.valid_from, zone).date() if offer.valid_from else None
    ends = (
        (timezone.localtime(offer.valid_until, zone) - dt.timedelta(microseconds=1)).date()
        if offer.valid_until
        else None
    )
    return starts, ends


def _replay(offer: Offer, *, active: set[int], confidence: float, bootstrap: int, seed: int) -> CampaignReplay:
    starts, ends = _days(offer)
    if offer.valid_from is None or offer.valid_until is None:
        return CampaignReplay(
            offer.pk, offer.external_id or "", offer.name, starts, ends, (), None, ("The campaign has no dates.",)
        )
    arms = _arms(offer, active=active)
    results = campaign_results(arms, confidence=confidence, bootstrap=bootstrap, seed=seed)
    return CampaignReplay(offer.pk, offer.external_id or "", offer.name, starts, ends, tuple(arms), results)


def replay(offer: Offer, *, confidence: float = 0.95, bootstrap: int = 2000, seed: int = 0) -> CampaignReplay:
    """One imported campaign's arms and results."""
    return _replay(
        offer, active=_active_members(offer.program_id), confidence=confidence, bootstrap=bootstrap, seed=seed
    )


def replay_all(
    *, program_id: int | None = None, confidence: float = 0.95, bootstrap: int = 2000, seed: int = 0
) -> list[CampaignReplay]:
    """Every imported Complete Journey campaign (of one program, or all), in campaign-number order.
    Queries: 1 for the offers, 1 per program for its active members, 3 per campaign."""
    active_by_program: dict[int, set[int]] = {}
    replays = []
    for offer in imported_campaigns(program_id=program_id):
        if offer.program_id not in active_by_program:
            active_by_program[offer.program_id] = _active_members(offer.program_id)
        replays.append(
            _replay(
                offer,
                active=active_by_program[offer.program_id],
                confidence=confidence,
                bootstrap=bootstrap,
                seed=seed,
            )
        )
    return replays
