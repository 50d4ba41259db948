"""The ledger's part of data export. Ledger records hold no personal data beyond the member
link, and accounting records are kept on erasure, so the eraser changes nothing."""

from __future__ import annotations

from typing import Any

from loyalty.ledger.models import Account, Entry, Purchase


def export_member(member) -> dict[str, Any]:
    accounts = Account.objects.filter(member=member).select_related("program")
    return {
        "accounts": [
            {
                "program": a.program.name,
                "available": a.available,
                "pending": a.pending,
                "debt": a.debt,
                "earned": a.earned,
                "redeemed": a.redeemed,
                "expired": a.expired,
                "reversed": a.reversed,
            }
            for a in accounts
        ],
        "entries": [
            {"kind": e.kind, "points": e.points, "reason": e.transaction.reason, "created_at": e.created_at.isoformat()}
            for e in Entry.objects.filter(account__member=member)
            .select_related("transaction")
            .order_by("created_at", "id")
        ],
        "purchases": [
            {
                "external_id": p.external_id,
                "occurred_at": p.occurred_at.isoformat(),
                "store": p.store_code,
                "total": str(p.total),
                "points_earned": p.points_earned,
            }
            for p in Purchase.objects.filter(member=member).order_by("occurred_at", "id")
        ],
    }


def erase_member(member) -> None:
    """Nothing to erase: balances, entries and purchases are accounting records with no
    personal data of their own (the member row they point at is pseudonymized)."""
