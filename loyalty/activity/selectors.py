"""Reads across the member's apps for staff: the member 360 page of the admin.

``member_overview`` gathers what the owning apps' selectors say about one member (balance with
pending and expiring points, tier and progress, purchases, ledger entries, segments, consents,
offers and coupons, messages, audit trail) into plain data, pages of purchases and entries
included. It lives in the workflow layer because it reads every domain app below it; it writes
nothing. A fixed number of queries whatever the member's history (pinned by a test)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, QuerySet

from loyalty.core.models import AuditEvent
from loyalty.core.selectors import audit_events_for
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.explanations import explanation_words
from loyalty.ledger.models import Account, Entry, Program, Purchase
from loyalty.messaging.models import Message
from loyalty.tiers.selectors import TierProgress, tier_progress
from members.models import ConsentChannel, ConsentEvent, ConsentPurpose, Member
from members.selectors import consent_history, consent_state
from offers.models import Coupon, OfferActivation, OfferRedemption, RewardRedemption
from segments.models import Segment, SegmentMembership

EXPIRING_WITHIN_DAYS = 90
ENTRIES_PER_PAGE = 20
PURCHASES_PER_PAGE = 10
RECENT = 10
METRIC_WORDS = {"spend": "spend", "points": "points", "purchases": "purchases"}


@dataclass(frozen=True)
class EntryLine:
    at: dt.datetime
    kind: str
    points: int
    reason: str
    actor: str
    explanation: list[str]
    transaction_id: int


@dataclass
class MemberOverview:
    member: Member
    program: Program | None
    account: Account | None
    available: int = 0
    pending: int = 0
    debt: int = 0
    pending_by_day: list[dict] = field(default_factory=list)
    expiring_by_day: list[dict] = field(default_factory=list)
    progress: TierProgress | None = None
    tier_words: list[str] = field(default_factory=list)
    purchases: Page | None = None
    entries: Page | None = None
    entry_lines: list[EntryLine] = field(default_factory=list)
    segments: list[SegmentMembership] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    consent_events: list[ConsentEvent] = field(default_factory=list)
    coupons: list[Coupon] = field(default_factory=list)
    reward_redemptions: list[RewardRedemption] = field(default_factory=list)
    offer_redemptions: list[OfferRedemption] = field(default_factory=list)
    offer_activations: list[OfferActivation] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)

    @property
    def expiring_total(self) -> int:
        return sum(row["points"] for row in self.expiring_by_day)


def _amount(value: Decimal | int, metric: str) -> str:
    if metric == "spend":
        return f"{Decimal(value):,.2f}"
    return f"{int(value):,}"


def tier_words(progress: TierProgress) -> list[str]:
    """The tier and its progress as sentences: "Silver since 2026-03-01", "Gold: 120.00 more spend"."""
    words = []
    if progress.tier is not None:
        since = f" since {progress.tier_since:%Y-%m-%d}" if progress.tier_since else ""
        manual = f" (set by hand until {progress.manual_until:%Y-%m-%d})" if progress.manual_until else ""
        words.append(f"{progress.tier.name}{since}{manual}")
    else:
        words.append("No tier")
    if progress.next_tier is not None and progress.to_next:
        joiner = " or " if progress.next_combine == "any" else " and "
        missing = joiner.join(f"{_amount(v, m)} more {METRIC_WORDS.get(m, m)}" for m, v in progress.to_next.items())
        words.append(f"To reach {progress.next_tier.name}: {missing}")
    elif progress.tier is not None:
        words.append("Top tier")
    if progress.keep is not None:
        if any(progress.keep.values()):
            joiner = " or " if progress.keep_combine == "any" else " and "
            missing = joiner.join(f"{_amount(v, m)} more {METRIC_WORDS.get(m, m)}" for m, v in progress.keep.items())
            by = f" by {progress.keep_by:%Y-%m-%d}" if progress.keep_by else ""
            words.append(f"To keep {progress.tier.name}{by}: {missing}")
        else:
            words.append(f"{progress.tier.name} is secured for this period")
    if progress.downgrade_at and progress.downgrade_to:
        words.append(f"Moves to {progress.downgrade_to.name} on {progress.downgrade_at:%Y-%m-%d}")
    return words


def _page(queryset, number: Any, per_page: int) -> Page:
    return Paginator(queryset, per_page).get_page(number)


def member_overview(*, member: Member, entries_page: Any = 1, purchases_page: Any = 1) -> MemberOverview:
    """Everything staff need about ``member`` at a glance, in the default program."""
    program = Program.objects.filter(is_default=True).first()
    account = ledger_selectors.member_account(member=member, program=program) if program else None
    overview = MemberOverview(member=member, program=program, account=account)
    if account is not None:
        overview.available, overview.pending, overview.debt = account.available, account.pending, account.debt
        overview.pending_by_day = ledger_selectors.points_pending(account=account)
        overview.expiring_by_day = ledger_selectors.points_expiring(account=account, within_days=EXPIRING_WITHIN_DAYS)
        entries = (
            ledger_selectors.account_entries(account=account)
            .select_related("transaction")
            .order_by("-created_at", "-id")
        )
        overview.entries = _page(entries, entries_page, ENTRIES_PER_PAGE)
        overview.entry_lines = [_entry_line(e) for e in overview.entries.object_list]
    if program is not None:
        overview.progress = tier_progress(member=member, program=program)
        overview.tier_words = tier_words(overview.progress)
    purchases = Purchase.objects.filter(member=member).select_related("partner").order_by("-occurred_at", "-id")
    overview.purchases = _page(purchases, purchases_page, PURCHASES_PER_PAGE)
    overview.segments = list(
        SegmentMembership.objects.filter(member=member, left_at__isnull=True)
        .select_related("segment")
        .order_by("segment__name")
    )
    overview.consent_events = list(consent_history(member=member)[:RECENT])
    overview.consents = _consent_state(member)
    overview.coupons = list(
        Coupon.objects.filter(member=member).select_related("offer", "reward").order_by("-issued_at", "-id")[:RECENT]
    )
    overview.reward_redemptions = list(
        RewardRedemption.objects.filter(member=member).select_related("reward").order_by("-created_at", "-id")[:RECENT]
    )
    overview.offer_redemptions = list(
        OfferRedemption.objects.filter(member=member).select_related("offer").order_by("-created_at", "-id")[:RECENT]
    )
    overview.offer_activations = list(
        OfferActivation.objects.filter(member=member).select_related("offer").order_by("-activated_at", "-id")[:RECENT]
    )
    overview.messages = list(
        Message.objects.filter(member=member).select_related("content").order_by("-created_at", "-id")[:RECENT]
    )
    overview.audit = list(audit_events_for(target=member).order_by("-created_at", "-id")[:RECENT])
    return overview


def _consent_state(member: Member) -> list[dict[str, Any]]:
    """The standing consent per purpose and channel, in words."""
    purposes, channels = dict(ConsentPurpose.choices), dict(ConsentChannel.choices)
    return [
        {
            "purpose": purposes.get(purpose, purpose),
            "channel": channels.get(channel, channel) if channel else "all channels",
            "granted": granted,
        }
        for (purpose, channel), granted in sorted(consent_state(member=member).items())
    ]


def _entry_line(entry: Entry) -> EntryLine:
    tx = entry.transaction
    return EntryLine(
        at=entry.created_at,
        kind=entry.get_kind_display(),
        points=entry.points,
        reason=tx.reason,
        actor=tx.actor_label or "",
        explanation=explanation_words(tx.explanation),
        transaction_id=tx.pk,
    )


def segment_choices() -> list[tuple[int, str]]:
    """Segments by name, for the member list's filter."""
    return list(Segment.objects.order_by("name").values_list("pk", "name"))


def members_in_segment(members: QuerySet[Member], *, segment_id: int) -> QuerySet[Member]:
    """``members`` narrowed to the current members of one segment (one subquery, no list of ids)."""
    inside = SegmentMembership.objects.filter(segment_id=segment_id, left_at__isnull=True, member_id=OuterRef("pk"))
    return members.filter(Exists(inside))
