"""Set-based services of the activity app for bulk loaders: the awards of earning rules recorded
with purchases imported in bulk, and campaign history kept from another system."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from loyalty.activity.models import CampaignTarget, CouponRedemption, ImportedCampaign, RuleAward


@dataclass(frozen=True)
class NewAward:
    """Points a rule gave with a purchase (``purchase_record`` writes one per rule that gave)."""

    rule_id: int
    member_id: int
    purchase_id: int
    points: int
    at: dt.datetime


def rule_awards_record_many(*, awards: Sequence[NewAward]) -> int:
    """Record rule awards as ``purchase_record`` does (the monthly caps count them); zero awards
    are not recorded. Returns how many were written."""
    rows = [
        RuleAward(rule_id=a.rule_id, member_id=a.member_id, purchase_id=a.purchase_id, points=a.points, awarded_at=a.at)
        for a in awards
        if a.points
    ]
    RuleAward.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def imported_campaigns_record(
    *,
    source: str,
    campaigns: Sequence[dict[str, Any]],
    targets: Sequence[tuple[str, int]],
    redemptions: Sequence[tuple[str, int, str, dt.date]],
) -> None:
    """Keep another system's campaign history (idempotent): ``campaigns`` (external_id, kind,
    starts_on, ends_on), the members each targeted (campaign external id, member id) and the
    coupons they redeemed (campaign, member id, coupon code, date)."""
    with transaction.atomic():
        for row in campaigns:
            ImportedCampaign.objects.update_or_create(
                source=source,
                external_id=row["external_id"],
                defaults={"kind": row["kind"], "starts_on": row["starts_on"], "ends_on": row["ends_on"]},
            )
        ids = dict(ImportedCampaign.objects.filter(source=source).values_list("external_id", "pk"))
        CampaignTarget.objects.bulk_create(
            [CampaignTarget(campaign_id=ids[c], member_id=m) for c, m in targets if c in ids],
            ignore_conflicts=True,
            batch_size=5000,
        )
        CouponRedemption.objects.bulk_create(
            [
                CouponRedemption(campaign_id=ids[c], member_id=m, coupon_code=u, redeemed_on=d)
                for c, m, u, d in redemptions
                if c in ids
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )


__all__ = ["NewAward", "imported_campaigns_record", "rule_awards_record_many"]
