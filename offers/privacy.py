"""The rewards' part of a member's data export and erasure. Reward redemptions, coupons and their
uses hold no personal data beyond the member link; they are kept on erasure as accounting records
(the member row is pseudonymized), and the member's coupons still active are cancelled: a coupon is
a bearer credential nobody should hold for an erased member."""

from __future__ import annotations

from typing import Any

from loyalty.core import clock
from offers.models import Coupon, CouponStatus, CouponUse, RewardRedemption


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


def export_member(member) -> dict[str, Any]:
    redemptions = RewardRedemption.objects.filter(member=member).select_related("reward").order_by("created_at", "id")
    coupons = Coupon.objects.filter(member=member).order_by("issued_at", "id")
    uses = CouponUse.objects.filter(member=member).select_related("coupon").order_by("used_at", "id")
    return {
        "reward_redemptions": [
            {
                "reward": r.reward.name,
                "points": r.points,
                "status": r.status,
                "channel": r.channel,
                "at": _time(r.created_at),
                "cancelled_at": _time(r.cancelled_at),
            }
            for r in redemptions
        ],
        "coupons": [
            {
                "code": c.code,
                "source": c.source,
                "status": c.status,
                "uses": c.uses_count,
                "max_uses": c.max_uses,
                "issued_at": _time(c.issued_at),
                "expires_at": _time(c.expires_at),
            }
            for c in coupons
        ],
        "coupon_uses": [
            {"code": u.coupon.code, "discount": str(u.discount), "status": u.status, "at": _time(u.used_at)}
            for u in uses
        ],
    }


def erase_member(member) -> None:
    """Cancel the member's coupons still active; keep the records (no personal data of their own)."""
    Coupon.objects.filter(member=member, status=CouponStatus.ACTIVE).update(
        status=CouponStatus.CANCELLED, cancelled_at=clock.now()
    )
