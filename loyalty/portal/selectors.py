"""What each portal page shows, as plain data, read through the domain selectors. No writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator

from loyalty.core.errors import NotFound
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Account, Entry, EntryKind, Program
from loyalty.tiers.selectors import TierProgress, tier_progress
from members.models import Member

EXPIRING_WITHIN_DAYS = 90
RECENT_ACTIVITY = 5
HISTORY_PAGE_SIZE = 20

# What each kind of movement is called on the member's pages.
KIND_WORDS = {
    EntryKind.EARN: "Points earned",
    EntryKind.REDEEM: "Points redeemed",
    EntryKind.EXPIRE: "Points expired",
    EntryKind.REVERSE: "Points taken back after a return",
    EntryKind.ADJUST: "Adjustment by our team",
    EntryKind.TRANSFER_IN: "Points received",
    EntryKind.TRANSFER_OUT: "Points sent",
    EntryKind.REFUND: "Points given back (cancelled redemption)",
}
# The kinds the history page filters by (transfers show under "all").
HISTORY_FILTERS = {
    "earn": "Earned",
    "redeem": "Redeemed",
    "expire": "Expired",
    "reverse": "Returns",
    "adjust": "Adjustments",
    "refund": "Refunds",
}
METRIC_WORDS = {"spend": "spent", "points": "points earned", "purchases": "purchases"}


@dataclass(frozen=True)
class HistoryLine:
    transaction_id: int
    at: dt.datetime
    kind: str
    title: str
    points: int
    note: str
    explanation: list[str]


@dataclass(frozen=True)
class Bar:
    """One bar toward the next tier: where the member is, what the tier asks, in percent."""

    metric: str
    label: str
    current: Decimal | int
    target: Decimal | int
    missing: Decimal | int
    percent: int


@dataclass(frozen=True)
class Home:
    member: Member
    program: Program
    available: int
    pending: int
    debt: int
    pending_by_date: list[dict]
    expiring: list[dict]
    progress: TierProgress
    bars: list[Bar]
    keep: list[Bar] | None
    recent: list[HistoryLine] = field(default_factory=list)


def member_program_account(*, member: Member) -> tuple[Program, Account | None]:
    program = ledger_selectors.program_default()
    return program, ledger_selectors.member_account(member=member, program=program)


def _number(text: str) -> str:
    """A rule's points or rate as a person writes it: 80, 1.5, 1,200 (not 8E+1)."""
    try:
        value = Decimal(str(text))
    except ArithmeticError:
        return str(text)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,f}".rstrip("0").rstrip(".")


def explanation_words(explanation: list[dict[str, Any]]) -> list[str]:
    """The earning rules' explanation lines in plain words: "Double points on dairy: +40"."""
    words = []
    for item in explanation or []:
        rule, detail, points = item.get("rule", ""), item.get("detail", ""), item.get("points")
        if rule == "Total":
            continue
        if rule == "Base rate" and points is not None:
            spend, _, rate = detail.partition(" × ")
            per = f" ({_number(rate)} a unit)" if rate and Decimal(rate) != 1 else ""
            words.append(f"Points for {spend} spent{per}: +{_number(points)}")
        elif detail == "cap reached":
            words.append(f"{rule}: limit reached, no more points this period")
        elif points is not None:
            words.append(f"{rule}: +{_number(points)}")
        else:
            words.append(f"{rule}: {detail}" if not detail.startswith("×") else f"{rule} {detail}")
    return words


def history_line(entry: Entry) -> HistoryLine:
    tx = entry.transaction
    return HistoryLine(
        transaction_id=tx.pk,
        at=entry.created_at,
        kind=entry.kind,
        title=KIND_WORDS.get(entry.kind, entry.get_kind_display()),
        points=entry.points,
        note=tx.reason if entry.kind != EntryKind.EARN else "",
        explanation=explanation_words(tx.explanation) if entry.kind == EntryKind.EARN else [],
    )


def _bars(progress: TierProgress, missing: dict | None) -> list[Bar]:
    bars = []
    for metric, short in (missing or {}).items():
        current = progress.metrics.value(metric)
        target = current + short
        percent = 100 if not target else min(100, int(Decimal(current) * 100 / Decimal(target)))
        bars.append(Bar(metric, METRIC_WORDS.get(metric, metric), current, target, short, percent))
    return bars


def home(*, member: Member) -> Home:
    """Balance (available, pending by date, expiring soon), tier with what is missing for the next
    one and to keep this one, and the latest movements. A fixed number of queries."""
    program, account = member_program_account(member=member)
    progress = tier_progress(member=member, program=program)
    recent: list[HistoryLine] = []
    if account is not None:
        recent = [history_line(e) for e in ledger_selectors.account_entries(account=account)[:RECENT_ACTIVITY]]
    keep = None
    if progress.keep is not None:
        keep = [
            Bar(m, METRIC_WORDS.get(m, m), progress.keep_metrics.value(m), progress.keep_metrics.value(m) + s, s, 0)
            for m, s in progress.keep.items()
        ]
    return Home(
        member=member,
        program=program,
        available=account.available if account else 0,
        pending=account.pending if account else 0,
        debt=account.debt if account else 0,
        pending_by_date=ledger_selectors.points_pending(account=account) if account else [],
        expiring=ledger_selectors.points_expiring(account=account, within_days=EXPIRING_WITHIN_DAYS) if account else [],
        progress=progress,
        bars=_bars(progress, progress.to_next),
        keep=keep,
        recent=recent,
    )


@dataclass(frozen=True)
class HistoryFilter:
    kind: str = ""
    since: dt.date | None = None
    until: dt.date | None = None


def history(*, member: Member, filters: HistoryFilter, page: int | str = 1) -> tuple[Page, list[HistoryLine]]:
    """The member's movements, newest first, filtered by kind and date (``until`` inclusive), one
    page at a time: two queries (count and page)."""
    _program, account = member_program_account(member=member)
    entries = ledger_selectors.account_entries(account=account) if account else Entry.objects.none()
    if filters.kind:
        entries = entries.filter(kind=filters.kind)
    if filters.since:
        entries = entries.filter(created_at__date__gte=filters.since)
    if filters.until:
        entries = entries.filter(created_at__date__lte=filters.until)
    page_obj = Paginator(entries, HISTORY_PAGE_SIZE).get_page(page)
    return page_obj, [history_line(e) for e in page_obj.object_list]


@dataclass(frozen=True)
class Movement:
    line: HistoryLine
    store: str
    purchase_total: Decimal | None
    currency: str
    partner: str


def movement(*, member: Member, transaction_id: int) -> Movement:
    """One movement of the member's own account; any other transaction is 404."""
    _program, account = member_program_account(member=member)
    entry = (
        Entry.objects.filter(account=account, transaction_id=transaction_id)
        .select_related("transaction", "transaction__purchase", "transaction__partner")
        .first()
        if account
        else None
    )
    if entry is None:
        raise NotFound("No such movement on your account", code="movement_not_found")
    purchase = entry.transaction.purchase
    partner = entry.transaction.partner
    return Movement(
        line=history_line(entry),
        store=purchase.store_code if purchase else "",
        purchase_total=purchase.total if purchase else None,
        currency=purchase.currency if purchase else "",
        partner=partner.name if partner else "",
    )
