"""Set-based services of the activity app for bulk loaders: the awards of earning rules recorded
with purchases imported in bulk. (Campaigns of imported data are offers: ``offers.services.bulk``.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from loyalty.activity.models import RuleAward


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


__all__ = ["NewAward", "rule_awards_record_many"]
