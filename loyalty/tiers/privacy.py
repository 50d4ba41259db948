"""The tiers' part of data export. Tier status and history hold no personal data beyond the
member link; they are kept on erasure (the member row they point at is pseudonymized)."""

from __future__ import annotations

from typing import Any

from loyalty.tiers.models import MemberTier, TierChange


def export_member(member) -> dict[str, Any]:
    statuses = MemberTier.objects.filter(member=member).select_related("program", "tier")
    changes = (
        TierChange.objects.filter(member=member)
        .select_related("program", "from_tier", "to_tier")
        .order_by("changed_at", "id")
    )
    return {
        "statuses": [
            {
                "program": s.program.name,
                "tier": s.tier.name if s.tier else None,
                "since": s.tier_since.isoformat(),
                "manual_until": s.manual_until.isoformat() if s.manual_until else None,
            }
            for s in statuses
        ],
        "history": [
            {
                "program": c.program.name,
                "from": c.from_tier.name if c.from_tier else None,
                "to": c.to_tier.name if c.to_tier else None,
                "reason": c.reason,
                "at": c.changed_at.isoformat(),
            }
            for c in changes
        ],
    }


def erase_member(member) -> None:
    """Nothing to erase: tier records carry no personal data of their own."""
