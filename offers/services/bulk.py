"""Set-based services of the offers app for bulk loaders: another system's coupon campaigns
(The Complete Journey) become offers, the segment of who each targeted, its coupons, their uses
and the offers' redemptions. Loaders call this and write none of these tables themselves.

One campaign becomes:
- an **offer** (``source``, ``external_id`` = the campaign's id), named "CJ campaign 8 (Type A)",
  valid from its first day to the end of its last day, ``ended`` when its last day is past,
  else ``active`` (scheduled by ``valid_from`` when it starts later). What a campaign of the data
  is: coupons mailed to chosen households, each a discount on some products. So the offer's
  condition is ``sku_bought`` with the campaign's products as ``condition_skus`` and its benefit
  ``amount_coupon``. The data has no coupon amounts: ``benefit_value`` is the median coupon
  discount of the lines that bought the campaign's products during it (empty when none did);
- a **static segment** "CJ campaign 8 (Type A) — targeted" of the targeted members, the offer's
  only ``segments_include`` (through ``segments.services.segment_static_members_add``);
- one **coupon** per coupon code of the campaign (code ``CJ<campaign>-<coupon upc>``: one upc can
  belong to several campaigns, a code belongs to one), source ``import``, bound to no member,
  valid as long as the offer. ``max_uses``: each targeted household may use it once, so the
  number of households the campaign targeted in the source data, or the times it was used there
  when more (a household may use a coupon on several days); both counted over the whole source,
  so the figure does not depend on how many households a run imports;
- one **coupon use** per redemption of the data (member, day; idempotency key
  ``<source>:<campaign>:<member id>:<coupon>:<day>``), the coupon's ``uses_count`` adding up;
- one **offer redemption** per coupon a member used (their first use; channel ``import``, no
  points), the offer's ``redemptions_count`` adding up.

Idempotent: what exists is found by its key (offer by source and external id, segment by name,
coupon by code, use by idempotency key, redemption by offer, member and coupon) and not written
again; counters are only added to for rows written now, under the offers' and coupons' row
locks. Offers already imported are not changed (staff may have edited them), and are found by
source and external id whatever their program: a campaign is imported once, into the program of
the first import (an import into another program adds its members' uses to the same offers).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from loyalty.core import clock
from loyalty.core.rows import objects_insert, rows_update
from loyalty.core.services import Actor
from loyalty.ledger.models import Program
from loyalty.partners.models import Partner
from offers.models import (
    BenefitKind,
    ConditionKind,
    Coupon,
    CouponSource,
    CouponStatus,
    CouponUse,
    Offer,
    OfferRedemption,
    OfferStatus,
    RedemptionState,
)
from segments.models import Segment, SegmentKind
from segments.services import segment_create, segment_static_members_add

IMPORT_CHANNEL = "import"


@dataclass(frozen=True)
class CampaignIn:
    """A campaign as the source has it. ``coupons``: its coupon codes with the times each was
    used in the whole source; ``targeted``: households it targeted in the whole source;
    ``coupon_value``: what a coupon typically took off (the offer's ``benefit_value``), if known."""

    external_id: str
    kind: str
    starts_on: dt.date
    ends_on: dt.date
    skus: Sequence[str] = ()
    coupons: Mapping[str, int] = field(default_factory=dict)
    targeted: int = 0
    coupon_value: Decimal | None = None


@dataclass(frozen=True)
class CouponUsed:
    """A member used a campaign's coupon on a day."""

    campaign: str
    member_id: int
    coupon: str
    on: dt.date


@dataclass
class CampaignsReport:
    offers: int = 0
    segment_members: int = 0
    coupons: int = 0
    coupon_uses: int = 0
    offer_redemptions: int = 0


def campaign_name(campaign: CampaignIn) -> str:
    return f"CJ campaign {campaign.external_id}" + (f" ({campaign.kind})" if campaign.kind else "")


def campaign_segment_name(campaign: CampaignIn) -> str:
    return f"{campaign_name(campaign)} — targeted"


def campaign_coupon_code(campaign: str, coupon: str) -> str:
    return f"CJ{campaign}-{coupon}"


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=timezone.get_default_timezone())


def _new_offer(campaign: CampaignIn, *, program: Program, source: str, now: dt.datetime) -> Offer:
    valid_from, valid_until = _day_start(campaign.starts_on), _day_start(campaign.ends_on + dt.timedelta(days=1))
    return Offer(
        program=program,
        name=campaign_name(campaign)[:120],
        description=(
            f"Imported campaign {campaign.external_id} ({campaign.kind or 'no type'}), "
            f"{campaign.starts_on:%Y-%m-%d} to {campaign.ends_on:%Y-%m-%d}: discount coupons on "
            f"{len(campaign.skus)} products ({len(campaign.coupons)} coupon codes) for the "
            f"{campaign.targeted} households it targeted."
            + (
                f" A coupon took {campaign.coupon_value} off (median at the till during the campaign)."
                if campaign.coupon_value is not None
                else ""
            )
        ),
        status=OfferStatus.ENDED if valid_until <= now else OfferStatus.ACTIVE,
        condition_kind=ConditionKind.SKU_BOUGHT,
        condition_skus=sorted(set(campaign.skus), key=lambda s: (len(s), s)),
        benefit_kind=BenefitKind.AMOUNT_COUPON,
        benefit_value=campaign.coupon_value,
        valid_from=valid_from,
        valid_until=valid_until,
        source=source,
        external_id=campaign.external_id,
        created_at=now,
        updated_at=now,
    )


def _offers_ensure(
    campaigns: Sequence[CampaignIn], *, program: Program, partner: Partner | None, source: str, now: dt.datetime
) -> tuple[dict[str, Offer], int]:
    existing = {
        o.external_id: o
        for o in Offer.objects.filter(source=source, external_id__in=[c.external_id for c in campaigns])
    }
    fresh = [_new_offer(c, program=program, source=source, now=now) for c in campaigns if c.external_id not in existing]
    objects_insert(Offer, fresh)
    if fresh and partner is not None:
        Offer.partners.through.objects.bulk_create(
            [Offer.partners.through(offer_id=o.pk, partner_id=partner.pk) for o in fresh], ignore_conflicts=True
        )
    existing.update({o.external_id: o for o in fresh})
    return existing, len(fresh)


def _segments_ensure(
    campaigns: Sequence[CampaignIn],
    offers: Mapping[str, Offer],
    targets: Sequence[tuple[str, int]],
    *,
    actor: Actor,
) -> int:
    """Each campaign's static segment of targeted members (created when missing, members added),
    the offer's eligibility."""
    names = {c.external_id: campaign_segment_name(c)[:120] for c in campaigns}
    segments = {s.name: s for s in Segment.objects.filter(name__in=names.values())}
    members: dict[str, list[int]] = defaultdict(list)
    for campaign, member_id in targets:
        members[campaign].append(member_id)
    added = 0
    links = []
    for campaign in campaigns:
        name = names[campaign.external_id]
        segment = segments.get(name)
        if segment is None:
            segment = segment_create(
                name=name,
                kind=SegmentKind.STATIC,
                description=f"Households campaign {campaign.external_id} targeted (imported).",
                actor=actor,
            )
        elif segment.kind != SegmentKind.STATIC:
            continue  # a segment staff made under that name: leave it alone
        refresh = segment_static_members_add(
            segment=segment, member_ids=members.get(campaign.external_id, []), reason="campaign import", actor=actor
        )
        added += refresh.entered if refresh else 0
        links.append(Offer.segments_include.through(offer_id=offers[campaign.external_id].pk, segment_id=segment.pk))
    Offer.segments_include.through.objects.bulk_create(links, ignore_conflicts=True)
    return added


def _coupons_ensure(
    campaigns: Sequence[CampaignIn], offers: Mapping[str, Offer], used: Sequence[CouponUsed]
) -> tuple[dict[str, Coupon], int]:
    """Each campaign's coupons by code; codes used but not listed with the campaign are added."""
    times_used = Counter((u.campaign, u.coupon) for u in used)
    wanted: dict[str, tuple[CampaignIn, str, int]] = {}
    for campaign in campaigns:
        codes = dict(campaign.coupons)
        for (c, coupon), n in times_used.items():
            if c == campaign.external_id:
                codes[coupon] = max(codes.get(coupon, 0), n)
        for coupon, n in codes.items():
            wanted[campaign_coupon_code(campaign.external_id, coupon)] = (campaign, coupon, n)
    existing = {c.code: c for c in Coupon.objects.filter(code__in=list(wanted))}
    fresh = []
    for code, (campaign, _, n) in wanted.items():
        if code in existing:
            continue
        offer = offers[campaign.external_id]
        fresh.append(
            Coupon(
                code=code,
                program_id=offer.program_id,
                offer=offer,
                source=CouponSource.IMPORT,
                max_uses=max(campaign.targeted, n, 1),
                status=CouponStatus.ACTIVE,
                valid_from=offer.valid_from,
                expires_at=offer.valid_until,
                issued_at=offer.valid_from or clock.now(),
            )
        )
    objects_insert(Coupon, fresh)
    existing.update({c.code: c for c in fresh})
    return existing, len(fresh)


def _key(source: str, use: CouponUsed) -> str:
    return f"{source}:{use.campaign}:{use.member_id}:{use.coupon}:{use.on:%Y-%m-%d}"


def _uses_record(
    used: Sequence[CouponUsed], coupons: Mapping[str, Coupon], *, partner: Partner | None, source: str
) -> list[CouponUse]:
    """The coupon uses not recorded yet, and the coupons' ``uses_count`` added to."""
    by_key = {_key(source, u): u for u in used}
    known = set()
    keys = list(by_key)
    for start in range(0, len(keys), 2000):
        known |= set(
            CouponUse.objects.filter(idempotency_key__in=keys[start : start + 2000]).values_list(
                "idempotency_key", flat=True
            )
        )
    fresh = [
        CouponUse(
            coupon=coupons[campaign_coupon_code(u.campaign, u.coupon)],
            member_id=u.member_id,
            partner=partner,
            idempotency_key=key,
            status=RedemptionState.COMPLETED,
            used_at=_day_start(u.on),
        )
        for key, u in by_key.items()
        if key not in known
    ]
    per_coupon = Counter(u.coupon_id for u in fresh)
    if per_coupon:
        list(Coupon.objects.select_for_update().filter(pk__in=per_coupon).order_by("pk").values_list("pk", flat=True))
        rows_update(Coupon, rows=sorted(per_coupon.items()), add_fields=["uses_count"])
    objects_insert(CouponUse, fresh)
    return fresh


def _redemptions_record(uses: Sequence[CouponUse], offers: Mapping[str, Offer]) -> int:
    """One offer redemption per coupon a member used (at the first use), unless there is one;
    the offers' ``redemptions_count`` added to."""
    first: dict[tuple[int, int, int], dt.datetime] = {}
    offer_of = {o.pk: o for o in offers.values()}
    for use in uses:
        key = (use.coupon.offer_id, use.member_id, use.coupon_id)
        if key not in first or use.used_at < first[key]:
            first[key] = use.used_at
    if not first:
        return 0
    known = set(
        OfferRedemption.objects.filter(
            offer_id__in={k[0] for k in first}, coupon_id__in={k[2] for k in first}
        ).values_list("offer_id", "member_id", "coupon_id")
    )
    fresh = [
        OfferRedemption(
            offer=offer_of[offer_id],
            member_id=member_id,
            coupon_id=coupon_id,
            points=0,
            channel=IMPORT_CHANNEL,
            status=RedemptionState.COMPLETED,
            created_at=at,
        )
        for (offer_id, member_id, coupon_id), at in sorted(first.items(), key=lambda kv: (kv[1], kv[0]))
        if (offer_id, member_id, coupon_id) not in known
    ]
    per_offer = Counter(r.offer_id for r in fresh)
    if per_offer:
        rows_update(Offer, rows=sorted(per_offer.items()), add_fields=["redemptions_count"])
    objects_insert(OfferRedemption, fresh)
    return len(fresh)


def campaign_offers_record(
    *,
    program: Program,
    source: str,
    campaigns: Sequence[CampaignIn],
    targets: Sequence[tuple[str, int]] = (),
    used: Sequence[CouponUsed] = (),
    partner: Partner | None = None,
    actor: Actor = "import",
) -> CampaignsReport:
    """Record another system's campaigns as offers in ``program`` (see the module's text):
    ``targets`` are (campaign external id, member id), ``used`` the coupon uses. ``partner``: where
    the campaigns ran (the offers' partner and the uses' partner). Targets and uses of campaigns
    not given are ignored. Idempotent; one transaction."""
    report = CampaignsReport()
    if not campaigns:
        return report
    ids = {c.external_id for c in campaigns}
    targets = [t for t in targets if t[0] in ids]
    used = [u for u in used if u.campaign in ids]
    now = clock.now()
    with transaction.atomic():
        offers, report.offers = _offers_ensure(campaigns, program=program, partner=partner, source=source, now=now)
        # the offers' counters change below: lock them (primary-key order), as every writer of them does
        list(
            Offer.objects.select_for_update()
            .filter(pk__in=[o.pk for o in offers.values()])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        report.segment_members = _segments_ensure(campaigns, offers, targets, actor=actor)
        coupons, report.coupons = _coupons_ensure(campaigns, offers, used)
        uses = _uses_record(used, coupons, partner=partner, source=source)
        report.coupon_uses = len(uses)
        report.offer_redemptions = _redemptions_record(uses, offers)
    return report


__all__ = ["CampaignIn", "CampaignsReport", "CouponUsed", "campaign_offers_record"]
