"""What the purchase workflow reads about offers: the live offers prepared for matching (from
memory, under the configuration stamp) and the buyer's earlier purchases, read only when a live
offer's condition looks at them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.ledger.models import Purchase
from offers.benefits import COUPON_KINDS, POINTS_KINDS
from offers.conditions import BuyerFacts
from offers.matching import OfferUse, PreparedOffer
from offers.selectors.eligibility import offers_active

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from members.models import Member


def purchase_offers_live(*, program: Program, now: dt.datetime | None = None) -> tuple[PreparedOffer, ...]:
    """The program's live offers a purchase can use (bonus points or a coupon), highest priority
    first, with their condition and benefit prepared once per configuration stamp. No statement
    when the configuration is warm."""
    now = now or clock.now()
    prepared = config_cached(
        ("purchase_offers", program.pk),
        lambda: tuple(
            PreparedOffer.of(offer)
            for offer in offers_active(program=program)
            if offer.benefit_kind in POINTS_KINDS or offer.benefit_kind in COUPON_KINDS
        ),
    )
    return tuple(offer for offer in prepared if offer.config.in_window(now))


def buyer_facts(*, member: Member, program: Program, purchase: Purchase, uses: list[OfferUse]) -> BuyerFacts:
    """What the conditions of ``uses`` read about the member: their birth month (when a birthday
    condition asks: the locked member row leaves it unread), and, when a
    condition looks at purchase history, their other purchases in the program (one statement: as
    far back as the longest purchase-count window, at most as many as the largest count needs;
    first-purchase offers ask whether any exists)."""
    birthday = any(u.prepared is not None and u.prepared.condition.kind == "birthday_month" for u in uses)
    birth_month = member.birth_date.month if birthday and member.birth_date else None  # read only when asked
    history = [u.prepared.condition for u in uses if u.reads_history and u.prepared is not None]
    if not history:
        return BuyerFacts(birth_month=birth_month)
    others = Purchase.objects.filter(member_id=member.pk, program_id=program.pk).exclude(pk=purchase.pk)
    windows = [c for c in history if c.kind == "purchase_count" and c.count and c.window_days]
    if not windows:
        return BuyerFacts(birth_month=birth_month, has_earlier_purchase=others.exists())
    since = purchase.occurred_at - dt.timedelta(days=max(c.window_days for c in windows))
    needed = max(c.count for c in windows)
    recent = tuple(
        others.filter(occurred_at__gt=since, occurred_at__lte=purchase.occurred_at)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)[:needed]
    )
    first_purchase_asked = any(c.kind == "first_purchase" for c in history)
    has_earlier = bool(recent) or (first_purchase_asked and others.exists())
    return BuyerFacts(birth_month=birth_month, earlier_purchases=recent, has_earlier_purchase=has_earlier)
