"""What each portal page shows, as plain data, read through the domain selectors. No writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.paginator import Page, Paginator

from loyalty.core.errors import NotFound
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.explanations import explanation_words
from loyalty.ledger.explanations import number_words as _number
from loyalty.ledger.models import Account, Entry, EntryKind, Program
from loyalty.portal import cards
from loyalty.tiers.selectors import TierProgress, tier_progress
from members.models import Member
from offers.models import Coupon, Offer, RedemptionState, Reward, RewardKind, RewardRedemption
from offers.selectors.catalog import CatalogItem, WalletCoupon, coupon_wallet, reward_catalog
from offers.selectors.ranking import RankedItem, offers_for_member

EXPIRING_WITHIN_DAYS = 90
HOME_OFFERS = 3
PORTAL_CHANNEL = "portal"
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
    rewards_near: list[RewardCard] = field(default_factory=list)
    for_you: list[RankedItem] = field(default_factory=list)


def member_program_account(*, member: Member) -> tuple[Program, Account | None]:
    program = ledger_selectors.program_default()
    return program, ledger_selectors.member_account(member=member, program=program)


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
        rewards_near=rewards_within_reach(rewards(member=member, program=program, account=account)),
        # the offers only: the rewards have their own panel just above
        for_you=[item for item in offers_for_you(member=member) if item.kind == "offer"][:HOME_OFFERS],
    )


def rewards_within_reach(page: RewardsPage) -> list[RewardCard]:
    """For the home page: the costliest rewards the member can have now, then the nearest ones
    points away (at most two of those, so both kinds show)."""
    near = page.within_reach[:2]
    can = sorted(page.can_redeem, key=lambda c: -c.reward.points_cost)[: REWARDS_WITHIN_REACH - len(near)]
    return can + near


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


# --- rewards and the coupon wallet ----------------------------------------------------------------

REWARDS_WITHIN_REACH = 3

# What each kind of reward gives, in the member's words.
REWARD_KIND_WORDS = {
    RewardKind.AMOUNT_COUPON: "Money off your shopping",
    RewardKind.PERCENT_COUPON: "A discount on your shopping",
    RewardKind.FREE_PRODUCT: "A free product",
    RewardKind.PARTNER_VOUCHER: "A partner voucher",
    RewardKind.EXPERIENCE: "An experience",
    RewardKind.DONATION: "A donation to a good cause",
}


@dataclass(frozen=True)
class RewardCard:
    """One reward as the member sees it: what it gives, what it costs, and whether they can have it
    now, else why not in plain words (points missing with progress, stock, limit, audience)."""

    reward: Reward
    what: str
    redeemable: bool
    points_missing: int
    percent: int  # how far the member's points go toward the cost
    why_not: str
    short_of_points: bool  # points are all that stands between the member and this reward


@dataclass(frozen=True)
class RewardsPage:
    available: int
    can_redeem: list[RewardCard]
    within_reach: list[RewardCard]  # eligible, only points missing, nearest first
    others: list[RewardCard]  # eligible but sold out or limit reached


def reward_gives(*, kind: str, value: Decimal | None, sku: str = "") -> str:
    """What a reward or coupon gives, in words: "5.00 off", "10% off", "Free product (SKU 123)"."""
    if kind in ("amount", RewardKind.AMOUNT_COUPON) and value is not None:
        return f"{value:,.2f} off"
    if kind in ("percent", RewardKind.PERCENT_COUPON) and value is not None:
        return f"{_number(str(value))}% off"
    if kind in ("voucher", RewardKind.PARTNER_VOUCHER) and value is not None:
        return f"Voucher worth {value:,.2f}"
    if kind in ("free_item", RewardKind.FREE_PRODUCT):
        return "A free product" + (f" ({sku})" if sku else "")
    return REWARD_KIND_WORDS.get(kind, "")


def _reward_card(item: CatalogItem) -> RewardCard:
    reward = item.reward
    cost = reward.points_cost
    why_not = ""
    in_stock = item.stock is None or item.stock > 0
    limit_ok = item.limit_left is None or item.limit_left > 0
    if not item.eligible:
        why_not = item.reason
    elif not in_stock:
        why_not = "Sold out for now"
    elif not limit_ok:
        why_not = "You have redeemed this as often as it allows"
    elif not item.affordable:
        why_not = f"{item.points_missing:,} more points needed"
    return RewardCard(
        reward=reward,
        what=reward_gives(kind=reward.kind, value=reward.value, sku=reward.sku),
        redeemable=item.redeemable,
        points_missing=item.points_missing,
        percent=100 if not cost else min(100, int((cost - item.points_missing) * 100 / cost)),
        why_not=why_not,
        short_of_points=item.eligible and in_stock and limit_ok and not item.affordable,
    )


def rewards(*, member: Member, program: Program | None = None, account: Account | None = None) -> RewardsPage:
    """The catalog for the member: what they may redeem and can afford now, the rewards only points
    stand between them and (nearest first, with the progress), and eligible ones sold out or used
    up. Rewards for other tiers or segments are not shown. A fixed number of queries."""
    if program is None:
        program, account = member_program_account(member=member)
    can, reach, others = [], [], []
    for item in reward_catalog(member=member, program=program, only_eligible=True):
        card = _reward_card(item)
        if card.redeemable:
            can.append(card)
        elif card.short_of_points:
            reach.append(card)
        else:
            others.append(card)
    reach.sort(key=lambda c: (c.points_missing, c.reward.pk))
    return RewardsPage(available=account.available if account else 0, can_redeem=can, within_reach=reach, others=others)


def reward_to_redeem(*, member: Member, reward_id: int) -> RewardCard:
    """One active reward of the member's program, as they see it (refusals are shown on the
    confirmation page); any other id is 404."""
    program, _account = member_program_account(member=member)
    for item in reward_catalog(member=member, program=program):
        if item.reward.pk == reward_id:
            return _reward_card(item)
    raise NotFound("No such reward", code="reward_not_found")


@dataclass(frozen=True)
class WalletItem:
    coupon: Coupon
    title: str  # the reward or offer it came from
    what: str
    uses_left: int
    reward_redemption_id: int | None  # the redemption that may be cancelled (unused reward coupon)
    qr: str = ""  # data URIs of the scannable images
    barcode: str = ""


@dataclass(frozen=True)
class PastReward:
    reward_redemption: RewardRedemption
    title: str
    points: int
    cancelled: bool
    code: str


@dataclass(frozen=True)
class Wallet:
    coupons: list[WalletItem]
    past: list[PastReward]


WALLET_PAST = 10


def _wallet_item(found: WalletCoupon, *, redemption_ids: dict[int, int], images: bool) -> WalletItem:
    coupon = found.coupon
    source = coupon.reward or coupon.offer
    benefit = found.benefit
    return WalletItem(
        coupon=coupon,
        title=source.name if source is not None else "Coupon",
        what=reward_gives(kind=benefit.kind, value=benefit.value, sku=benefit.sku),
        uses_left=found.uses_left,
        reward_redemption_id=redemption_ids.get(coupon.pk),
        qr=cards.qr_svg_uri(coupon.code) if images else "",
        barcode=cards.barcode_svg_uri(coupon.code) if images else "",
    )


def wallet(*, member: Member) -> Wallet:
    """The coupons the member can use now (soonest expiry first) with their codes as QR and barcode
    images, each cancellable while unused when it came from a reward; and the latest reward
    redemptions (cancelled ones too). Three queries."""
    usable = coupon_wallet(member=member)
    redemptions = list(
        RewardRedemption.objects.filter(member=member)
        .select_related("reward", "coupon")
        .order_by("-created_at", "-pk")[:WALLET_PAST]
    )
    cancellable = {
        r.coupon_id: r.pk
        for r in redemptions
        if r.status == RedemptionState.COMPLETED and r.coupon_id is not None and r.coupon.uses_count == 0
    }
    missing = [w.coupon.pk for w in usable if w.coupon.reward_id is not None and w.coupon.pk not in cancellable]
    if missing:  # an older redemption than the latest few: one more query, only then
        cancellable.update(
            RewardRedemption.objects.filter(
                member=member, coupon_id__in=missing, status=RedemptionState.COMPLETED, coupon__uses_count=0
            ).values_list("coupon_id", "pk")
        )
    return Wallet(
        coupons=[_wallet_item(w, redemption_ids=cancellable, images=True) for w in usable],
        past=[
            PastReward(
                reward_redemption=r,
                title=r.reward.name,
                points=r.points,
                cancelled=r.status == RedemptionState.CANCELLED,
                code=r.coupon.code if r.coupon_id else "",
            )
            for r in redemptions
        ],
    )


def wallet_coupon(*, member: Member, coupon_id: int) -> WalletItem:
    """One of the member's own usable coupons with its images; anything else is 404."""
    for found in coupon_wallet(member=member):
        if found.coupon.pk == coupon_id:
            ids = dict(
                RewardRedemption.objects.filter(
                    member=member, coupon_id=coupon_id, status=RedemptionState.COMPLETED, coupon__uses_count=0
                ).values_list("coupon_id", "pk")
            )
            return _wallet_item(found, redemption_ids=ids, images=True)
    raise NotFound("No such coupon in your wallet", code="coupon_not_found")


def reward_redemption_of(*, member: Member, reward_redemption_id: int) -> RewardRedemption:
    """One of the member's own reward redemptions (with its reward and coupon); any other is 404."""
    found = (
        RewardRedemption.objects.filter(pk=reward_redemption_id, member=member)
        .select_related("reward", "coupon")
        .first()
    )
    if found is None:
        raise NotFound("No such reward redemption", code="reward_redemption_not_found")
    return found


# --- offers for you ---------------------------------------------------------------------------------


def offers_for_you(*, member: Member, limit: int | None = None) -> list[RankedItem]:
    """The member's offers and rewards, best first, with the reasons in plain words (the ranking's
    ``offers_for_member`` for the portal channel); ``limit`` for the home page."""
    return offers_for_member(member=member, channel=PORTAL_CHANNEL, limit=limit)


def offer_to_activate(*, member: Member, offer_id: int) -> Offer:
    """An offer of the member's program (the service says whether they may activate it); any other
    id is 404."""
    program, _account = member_program_account(member=member)
    found = Offer.objects.filter(pk=offer_id, program=program).first()
    if found is None:
        raise NotFound("No such offer", code="offer_not_found")
    return found
