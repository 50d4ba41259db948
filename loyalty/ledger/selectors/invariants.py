# ruff: noqa: S608 - every statement is built from the models' own table names and constants, no input
"""The ledger's invariants, checked over the whole database by set-based SQL (one statement per
check, no loop over rows), for ``manage.py check_ledger`` and the reliability proof.

What must hold (docs/domain.md, "Points"):

- ``transactions_unbalanced``: every ledger transaction's entries sum to zero (double entry);
- ``balance_not_entries``: a member account's balance (available + pending − debt) equals the sum of
  its entries;
- ``balance_not_lots``: a member account's available + pending equals the sum of its lots' remaining
  points (so balance = open lots − debt), and its pending equals the remaining of its pending lots;
- ``account_figures_negative``: no member account has negative available, pending or debt;
- ``lots_out_of_range``: no lot below zero (or above its points);
- ``lots_spent_after_expiry``: no lot consumed (an allocation) at or after its expiry;
- ``outbox_duplicate_events``: the outbox holds no event twice: one row per event type and natural
  key (``OUTBOX_EVENT_KEYS``: the purchase, return, redemption, reward redemption, coupon or coupon use
  it reports).

Each check counts its violations and names a few of them (``examples``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from loyalty.ledger.models import Account, Allocation, Entry, LedgerTransaction, Lot
from loyalty.partners.models import OutboxEvent

EXAMPLES = 5


@dataclass(frozen=True)
class InvariantCheck:
    name: str
    rule: str
    violations: int
    examples: list[tuple] = field(default_factory=list)


def _json(key: str) -> str:
    """The payload's ``key`` as text, on PostgreSQL and SQLite."""
    if connection.vendor == "postgresql":
        return f"(payload->>'{key}')"
    return f"CAST(json_extract(payload, '$.{key}') AS text)"


def _outbox_key_sql() -> str:
    partner = f"COALESCE({_json('partner_id')}, '')"
    keys = {
        # one per member and program
        "member.enrolled": f"{_json('member_number')} || '@' || COALESCE({_json('program')}, '')",
        # a purchase's points: the partner's external id of the purchase (events' points have no key)
        "points.earned": f"{partner} || '/' || {_json('purchase_external_id')}",
        "points.redeemed": _json("redemption_id"),
        "reward.redeemed": _json("reward_redemption_id"),
        "reward.cancelled": _json("reward_redemption_id"),
        "coupon.issued": _json("coupon_id"),
        "coupon.redeemed": _json("coupon_use_id"),
        "coupon.redemption_cancelled": _json("coupon_use_id"),
    }
    cases = [f"WHEN event_type = '{event_type}' THEN {sql}" for event_type, sql in keys.items()]
    # a return's reversal by the return's external id; a cancelled redemption's by the redemption
    cases.append(
        f"WHEN event_type = 'points.reversed' AND {_json('return_external_id')} IS NOT NULL "
        f"THEN 'return:' || {partner} || '/' || {_json('return_external_id')}"
    )
    cases.append(
        f"WHEN event_type = 'points.reversed' AND {_json('redemption_id')} IS NOT NULL "
        f"THEN 'redemption:' || {_json('redemption_id')}"
    )
    return "CASE " + " ".join(cases) + " END"


# Event types whose rows must be unique by a natural key (see ``_outbox_key_sql``).
OUTBOX_EVENT_KEYS = (
    "member.enrolled",
    "points.earned",
    "points.redeemed",
    "points.reversed",
    "reward.redeemed",
    "reward.cancelled",
    "coupon.issued",
    "coupon.redeemed",
    "coupon.redemption_cancelled",
)


def _checks() -> list[tuple[str, str, str]]:
    account = Account._meta.db_table
    entry = Entry._meta.db_table
    lot = Lot._meta.db_table
    allocation = Allocation._meta.db_table
    tx = LedgerTransaction._meta.db_table
    outbox = OutboxEvent._meta.db_table
    entries_per_account = f"SELECT account_id, SUM(points) AS total FROM {entry} GROUP BY account_id"
    lots_per_account = (
        f"SELECT account_id, SUM(remaining) AS open, "
        f"SUM(CASE WHEN is_pending THEN remaining ELSE 0 END) AS pending FROM {lot} GROUP BY account_id"
    )
    return [
        (
            "transactions_unbalanced",
            "every ledger transaction's entries sum to zero",
            f"SELECT transaction_id, SUM(points) FROM {entry} GROUP BY transaction_id HAVING SUM(points) <> 0",
        ),
        (
            "balance_not_entries",
            "member account: available + pending - debt = sum of its entries",
            f"""SELECT a.id, a.available + a.pending - a.debt, COALESCE(e.total, 0)
                FROM {account} a LEFT JOIN ({entries_per_account}) e ON e.account_id = a.id
                WHERE a.kind = 'member' AND a.available + a.pending - a.debt <> COALESCE(e.total, 0)""",
        ),
        (
            "balance_not_lots",
            "member account: available + pending = open lots (balance = open lots - debt), pending = pending lots",
            f"""SELECT a.id, a.available, a.pending, COALESCE(l.open, 0), COALESCE(l.pending, 0)
                FROM {account} a LEFT JOIN ({lots_per_account}) l ON l.account_id = a.id
                WHERE a.kind = 'member'
                  AND (a.available + a.pending <> COALESCE(l.open, 0) OR a.pending <> COALESCE(l.pending, 0))""",
        ),
        (
            "account_figures_negative",
            "member account: available, pending and debt are never below zero",
            f"""SELECT id, available, pending, debt FROM {account}
                WHERE kind = 'member' AND (available < 0 OR pending < 0 OR debt < 0)""",
        ),
        (
            "lots_out_of_range",
            "no lot below zero (0 <= remaining <= points)",
            f"SELECT id, remaining, points FROM {lot} WHERE remaining < 0 OR remaining > points",
        ),
        (
            "lots_spent_after_expiry",
            "no lot consumed at or after its expiry",
            f"""SELECT al.id, al.lot_id FROM {allocation} al
                JOIN {lot} l ON l.id = al.lot_id JOIN {tx} t ON t.id = al.transaction_id
                WHERE l.expires_at IS NOT NULL AND t.created_at >= l.expires_at""",
        ),
        (
            "outbox_duplicate_events",
            "the outbox holds each event once (event type + natural key)",
            f"""SELECT event_type, event_key, COUNT(*) FROM
                  (SELECT event_type, {_outbox_key_sql()} AS event_key FROM {outbox}) k
                WHERE event_key IS NOT NULL GROUP BY event_type, event_key HAVING COUNT(*) > 1""",
        ),
    ]


def ledger_invariant_checks() -> list[InvariantCheck]:
    """Every check over the whole database, each with its violation count (0: it holds): the counts
    in one statement, then a few examples of each check that failed."""
    checks = _checks()
    counts_sql = ", ".join(f"(SELECT COUNT(*) FROM ({sql}) v{n})" for n, (_, _, sql) in enumerate(checks))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts_sql}")
        counts = cursor.fetchone()
        results = []
        for (name, rule, sql), count in zip(checks, counts, strict=True):
            examples: list[tuple] = []
            if count:
                cursor.execute(f"{sql} LIMIT {EXAMPLES}")
                examples = [tuple(row) for row in cursor.fetchall()]
            results.append(InvariantCheck(name=name, rule=rule, violations=count, examples=examples))
    return results


def ledger_invariant_violations() -> int:
    """The number of violations of every check together (0: the ledger is exact)."""
    return sum(check.violations for check in ledger_invariant_checks())
