"""Campaigns kept raw by earlier imports (activity ``ImportedCampaign``, ``CampaignTarget``,
``CouponRedemption``) become what the import now writes (``offers.services.bulk``): an offer per
campaign, a static segment of who it targeted, a coupon per code, a coupon use per redemption and
an offer redemption per coupon a member used. Activity migration 0005 then drops the raw tables.

Written with the historical models (a migration must not call today's services); the names and
keys are those of ``offers.services.bulk`` so a later import finds these rows and adds nothing.
The raw rows never held the campaigns' products: ``condition_skus`` stays empty for these.
Databases with no raw campaigns (every new one) have nothing to do.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from django.db import migrations
from django.utils import timezone


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=timezone.get_default_timezone())


def forward(apps, schema_editor):
    ImportedCampaign = apps.get_model("activity", "ImportedCampaign")
    CampaignTarget = apps.get_model("activity", "CampaignTarget")
    CouponRedemption = apps.get_model("activity", "CouponRedemption")
    if not ImportedCampaign.objects.exists():
        return
    Offer = apps.get_model("offers", "Offer")
    Coupon = apps.get_model("offers", "Coupon")
    CouponUse = apps.get_model("offers", "CouponUse")
    OfferRedemption = apps.get_model("offers", "OfferRedemption")
    Segment = apps.get_model("segments", "Segment")
    SegmentMembership = apps.get_model("segments", "SegmentMembership")
    SegmentRefresh = apps.get_model("segments", "SegmentRefresh")
    SegmentEvent = apps.get_model("segments", "SegmentEvent")
    Program = apps.get_model("ledger", "Program")
    Account = apps.get_model("ledger", "Account")
    Partner = apps.get_model("partners", "Partner")

    now = timezone.now()
    partner = Partner.objects.filter(name="Complete Journey Stores").first()
    targets = defaultdict(set)
    for campaign_id, member_id in CampaignTarget.objects.values_list("campaign_id", "member_id"):
        targets[campaign_id].add(member_id)
    used = defaultdict(list)
    for row in CouponRedemption.objects.order_by("redeemed_on", "pk"):
        used[row.campaign_id].append(row)

    for campaign in ImportedCampaign.objects.order_by("pk"):
        # the program the campaign's members were imported into, else the default program
        members = targets[campaign.pk] | {r.member_id for r in used[campaign.pk]}
        account = Account.objects.filter(member_id__in=members, kind="member").order_by("pk").first()
        program_id = account.program_id if account else Program.objects.filter(is_default=True).values_list(
            "pk", flat=True
        ).first()
        if program_id is None:
            continue
        name = f"CJ campaign {campaign.external_id}" + (f" ({campaign.kind})" if campaign.kind else "")
        offer = Offer.objects.filter(source=campaign.source, external_id=campaign.external_id).first()
        if offer is None:
            valid_from = _day_start(campaign.starts_on) if campaign.starts_on else None
            valid_until = _day_start(campaign.ends_on + dt.timedelta(days=1)) if campaign.ends_on else None
            offer = Offer.objects.create(
                program_id=program_id,
                name=name[:120],
                description=(
                    f"Imported campaign {campaign.external_id} ({campaign.kind or 'no type'}): discount coupons "
                    f"for the {len(targets[campaign.pk])} households it targeted. Coupon amounts are not in the data."
                ),
                status="ended" if valid_until and valid_until <= now else "active",
                condition_kind="sku_bought",
                benefit_kind="amount_coupon",
                valid_from=valid_from,
                valid_until=valid_until,
                source=campaign.source,
                external_id=campaign.external_id,
                created_at=now,
                updated_at=now,
            )
            if partner is not None:
                offer.partners.add(partner)
        segment_name = f"{name} — targeted"[:120]
        segment = Segment.objects.filter(name=segment_name).first()
        if segment is None:
            segment = Segment.objects.create(
                name=segment_name,
                kind="static",
                description=f"Households campaign {campaign.external_id} targeted (imported).",
                auto_refresh=False,
                created_at=now,
                updated_at=now,
            )
        if segment.kind == "static":
            offer.segments_include.add(segment)
            present = set(
                SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list(
                    "member_id", flat=True
                )
            )
            new = sorted(targets[campaign.pk] - present)
            if new:
                refresh = SegmentRefresh.objects.create(
                    segment=segment,
                    trigger="upload",
                    refreshed_at=now,
                    size=len(present) + len(new),
                    entered=len(new),
                    left=0,
                )
                SegmentMembership.objects.bulk_create(
                    [SegmentMembership(segment=segment, member_id=m, entered_at=now) for m in new]
                )
                SegmentEvent.objects.bulk_create(
                    [
                        SegmentEvent(segment=segment, member_id=m, kind="entered", refresh=refresh, occurred_at=now)
                        for m in new
                    ]
                )
                Segment.objects.filter(pk=segment.pk).update(size=len(present) + len(new), last_refreshed_at=now)

        times_used = Counter(r.coupon_code for r in used[campaign.pk])
        first_use = {}
        for row in used[campaign.pk]:
            code = f"CJ{campaign.external_id}-{row.coupon_code}"
            coupon = Coupon.objects.filter(code=code).first()
            if coupon is None:
                coupon = Coupon.objects.create(
                    code=code,
                    program_id=offer.program_id,
                    offer=offer,
                    source="import",
                    max_uses=max(len(targets[campaign.pk]), times_used[row.coupon_code], 1),
                    status="active",
                    valid_from=offer.valid_from,
                    expires_at=offer.valid_until,
                    issued_at=offer.valid_from or now,
                )
            key = f"{campaign.source}:{campaign.external_id}:{row.member_id}:{row.coupon_code}:{row.redeemed_on:%Y-%m-%d}"
            if CouponUse.objects.filter(idempotency_key=key).exists():
                continue
            CouponUse.objects.create(
                coupon=coupon,
                member_id=row.member_id,
                partner=partner,
                idempotency_key=key,
                status="completed",
                used_at=_day_start(row.redeemed_on),
            )
            Coupon.objects.filter(pk=coupon.pk).update(uses_count=coupon.uses_count + 1)
            coupon.uses_count += 1
            first_use.setdefault((row.member_id, coupon.pk), _day_start(row.redeemed_on))
        for (member_id, coupon_id), at in first_use.items():
            if OfferRedemption.objects.filter(offer=offer, member_id=member_id, coupon_id=coupon_id).exists():
                continue
            OfferRedemption.objects.create(
                offer=offer,
                member_id=member_id,
                coupon_id=coupon_id,
                points=0,
                channel="import",
                status="completed",
                created_at=at,
            )
            Offer.objects.filter(pk=offer.pk).update(redemptions_count=offer.redemptions_count + 1)
            offer.redemptions_count += 1


class Migration(migrations.Migration):
    dependencies = [
        ("offers", "0003_config_stamp_triggers"),
        ("activity", "0004_config_stamp_triggers"),
        ("segments", "0005_score_run_fit_diagnostics"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
