from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from loyalty.activity import rules as rule_engine
from loyalty.activity.models import EarningRule, RuleAward
from loyalty.activity.services.linking import partner_member_link
from loyalty.core import clock
from loyalty.core.config import config_cached
from loyalty.core.errors import Conflict, NotFound, ValidationFailed
from loyalty.engagement.services.challenges import challenges_on_purchase, challenges_return_check
from loyalty.engagement.services.referrals import referral_purchase_check, referral_return_check
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger import services as ledger
from loyalty.ledger.models import LedgerTransaction, Lot, Program, Purchase, Return, TransactionKind
from loyalty.partners.services import outbox_record
from loyalty.tiers.selectors import ProgramTiers, member_tier, program_tiers
from loyalty.tiers.services import tier_upgrade_check
from members.models import Member, MemberStatus
from members.selectors import member_get_by_number, member_number_clean
from offers.conditions import PurchaseContext
from offers.matching import offer_uses, offer_uses_met
from offers.selectors.eligibility import member_facts, offer_eligibility
from offers.selectors.purchase import buyer_facts, purchase_offers_live
from offers.services.offers import OfferTaken, offer_uses_claim

if TYPE_CHECKING:
    from loyalty.partners.models import Partner
    from loyalty.tiers.models import Tier

FUTURE_TOLERANCE = dt.timedelta(minutes=5)
_TIER_UNREAD = object()


@dataclass
class PurchaseOutcome:
    purchase: Purchase
    created: bool
    points: int
    pending_until: dt.datetime | None
    explanation: list[dict] = field(default_factory=list)
    offers: list[OfferTaken] = field(default_factory=list)


def _earning_member(member_number: str | None, member: Member | None) -> Member:
    member = member or member_get_by_number(member_number=member_number or "")
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(f"A {member.status} member cannot earn or burn points", code="member_inactive")
    return member


@dataclass(frozen=True, slots=True)
class EarningRuleConfig:
    """An earning rule as the configuration cache keeps it (frozen: shared between requests)."""

    pk: int
    name: str
    kind: str
    categories: tuple[str, ...]
    skus: tuple[str, ...]
    multiplier: Decimal
    bonus_points: int
    min_spend: Decimal
    priority: int
    stackable: bool
    cap_per_day: int | None
    cap_per_month: int | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None

    @classmethod
    def of(cls, rule: EarningRule) -> EarningRuleConfig:
        return cls(
            pk=rule.pk,
            name=rule.name,
            kind=rule.kind,
            categories=tuple(rule.categories),
            skus=tuple(rule.skus),
            multiplier=rule.multiplier,
            bonus_points=rule.bonus_points,
            min_spend=rule.min_spend,
            priority=rule.priority,
            stackable=rule.stackable,
            cap_per_day=rule.cap_per_day,
            cap_per_month=rule.cap_per_month,
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
        )


# What the rule functions read: the cached frozen rules, or the models (the batch importer).
AnyRule = EarningRuleConfig | EarningRule


def _rules_for(program: Program, partner: Partner | None, now: dt.datetime) -> list[EarningRuleConfig]:
    """The program's active rules for this partner valid at ``now``; the rules are configuration,
    read once per configuration stamp (``loyalty.core.config``)."""
    partner_id = getattr(partner, "pk", None)
    rules = config_cached(
        ("earning_rules", program.pk, partner_id),
        lambda: tuple(
            EarningRuleConfig.of(rule)
            for rule in EarningRule.objects.filter(program=program, is_active=True).filter(
                Q(partner__isnull=True) | Q(partner_id=partner_id)
            )
        ),
    )
    return rules_active(rules, now)


def _cap_left(rules: Sequence[AnyRule], member: Member, now: dt.datetime) -> dict[int, int | None]:
    capped = [r.pk for r in rules if r.cap_per_day or r.cap_per_month]
    if not capped:
        return {r.pk: None for r in rules}
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    awards = RuleAward.objects.filter(rule_id__in=capped, member=member, awarded_at__gte=month_start)
    return caps_left(rules, awards.values_list("rule_id", "awarded_at", "points"), now)


def caps_left(
    rules: Sequence[AnyRule], awards: Iterable[tuple[int, dt.datetime, int]], now: dt.datetime
) -> dict[int, int | None]:
    """Points each rule may still give a member at ``now`` under its day and month caps (None: no
    cap), from the member's earlier awards as (rule id, awarded_at, points). Pure: the purchase
    workflow feeds it from the database, the batch importer from memory."""
    left: dict[int, int | None] = {r.pk: None for r in rules}
    capped = [r for r in rules if r.cap_per_day or r.cap_per_month]
    if not capped:
        return left
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    used: dict[int, list[int]] = {}
    for rule_id, awarded_at, points in awards:
        if awarded_at >= month_start:
            day_month = used.setdefault(rule_id, [0, 0])
            day_month[1] += points
            if awarded_at >= day_start:
                day_month[0] += points
    for rule in capped:
        day, month = used.get(rule.pk, (0, 0))
        limits = []
        if rule.cap_per_day:
            limits.append(rule.cap_per_day - day)
        if rule.cap_per_month:
            limits.append(rule.cap_per_month - month)
        left[rule.pk] = max(min(limits), 0)
    return left


def earn_for(
    *,
    program: Program,
    partner: Partner | None,
    member: Member,
    lines: list[dict[str, Any]],
    now: dt.datetime,
    tiers: ProgramTiers | None = None,
    tier: Tier | None | object = _TIER_UNREAD,
) -> rule_engine.Result:
    """Evaluate the program's active rules for a purchase: the one source of points for the API,
    the admin and importers. ``tiers``: the program's tiers, ``tier``: the member's tier, when the
    caller read them already."""
    rules = _rules_for(program, partner, now)
    return earn_evaluate(
        program=program,
        partner=partner,
        rules=rules,
        caps=_cap_left(rules, member, now),
        tier=member_tier(member=member, program=program, tiers=tiers) if tier is _TIER_UNREAD else tier,
        lines=lines,
    )


def rules_active(rules: Sequence[AnyRule], now: dt.datetime) -> list[AnyRule]:
    """The rules (already filtered by program, partner and ``is_active``) valid at ``now``."""
    return [
        r
        for r in rules
        if (r.valid_from is None or r.valid_from <= now) and (r.valid_until is None or r.valid_until > now)
    ]


def earn_evaluate(
    *,
    program: Program,
    partner: Partner | None,
    rules: Sequence[AnyRule],
    caps: dict[int, int | None],
    tier: Tier | None,
    lines: list[dict[str, Any]],
) -> rule_engine.Result:
    """``earn_for`` without the database: the rules valid now, what their caps leave, the
    member's tier. The batch importer calls it with the same inputs kept in memory."""
    context = rule_engine.Context(
        earn_rate=program.earn_rate,
        rounding=program.earn_rounding,
        partner_multiplier=partner.earn_multiplier if partner is not None else Decimal("1"),
        tier_multiplier=tier.earn_multiplier if tier is not None else Decimal("1"),
        tier_name=tier.name if tier is not None else "",
    )
    return rule_engine.evaluate(
        [
            rule_engine.Line(
                sku=str(line.get("sku", "")),
                category=str(line.get("category", "")),
                amount=Decimal(str(line.get("amount", 0))),
                discount=Decimal(str(line.get("discount", 0) or 0)),
            )
            for line in lines
        ],
        context,
        [
            rule_engine.Rule(
                id=r.pk,
                name=r.name,
                kind=r.kind,
                categories=frozenset(r.categories),
                skus=frozenset(str(s) for s in r.skus),
                multiplier=r.multiplier,
                bonus_points=r.bonus_points,
                min_spend=r.min_spend,
                priority=r.priority,
                stackable=r.stackable,
                cap_left=caps.get(r.pk),
            )
            for r in rules
        ],
    )


def _pending_until(earn: LedgerTransaction, lot: Lot | None) -> dt.datetime | None:
    return lot.available_at if lot is not None and lot.available_at > earn.created_at else None


def _outcome(purchase: Purchase, created: bool) -> PurchaseOutcome:
    """The outcome of a stored purchase, read back (a repeat of the same purchase)."""
    earn = LedgerTransaction.objects.filter(purchase=purchase, kind=TransactionKind.EARN).first()
    pending_until = None
    if earn is not None:
        pending_until = _pending_until(earn, Lot.objects.filter(transaction=earn).first())
    return PurchaseOutcome(
        purchase=purchase,
        created=created,
        points=purchase.points_earned,
        pending_until=pending_until,
        explanation=earn.explanation if earn is not None else [],
    )


def _same_purchase(existing: Purchase, member: Member, occurred_at: dt.datetime, lines: list[dict], total: Any) -> bool:
    def norm(value: Any) -> Decimal:
        return Decimal(str(value or 0)).quantize(Decimal("0.001"))

    stored = sorted(
        (line.sku, norm(line.quantity), norm(line.amount), norm(line.discount)) for line in existing.lines.all()
    )
    sent = sorted(
        (str(line.get("sku", "")), norm(line.get("quantity", 1)), norm(line.get("amount")), norm(line.get("discount")))
        for line in lines
    )
    same_total = total is None or norm(total) == norm(existing.total)
    return existing.member_id == member.pk and existing.occurred_at == occurred_at and stored == sent and same_total


def purchase_record(
    *,
    partner: Partner | None,
    external_id: str,
    occurred_at: dt.datetime,
    lines: list[dict[str, Any]],
    member_number: str | None = None,
    member: Member | None = None,
    program_name: str | None = None,
    currency: str | None = None,
    total: Any | None = None,
    tax: Any = 0,
    discount: Any = 0,
    store: str = "",
    check_window: bool = False,
    channel: str = "store",
    card_fingerprint: str = "",
) -> PurchaseOutcome:
    """Store a purchase, link member and partner, evaluate earning rules, credit (pending for the
    program's return window), ask tiers for an upgrade and record ``points.earned``.
    The same external_id with the same content returns the first outcome (``created`` False);
    with other content it is ``duplicate_external_id``. A purchase that would earn more than the
    program's ``max_points_per_transaction`` is refused whole (``points_cap_exceeded``), nothing
    stored. ``check_window``: a purchase reported as it happens (the partner API) must not
    precede the program's start (``occurred_at_before_program_start``); importers replaying
    history leave it off.

    Offers: the live offers whose condition the purchase meets and that the member may use
    (``_offers_take``) add their bonus points to the same credit, each with an explanation line
    "<offer name> (offer #<id>)" and an entry in the event's ``offers``; coupon offers issue their
    coupon. Offer points are not counted against ``max_points_per_transaction`` (that cap guards
    the earning rules; offers have their own limits and budgets). ``channel``: how the purchase
    was made (``offers.conditions.PURCHASE_CHANNELS``), for channel conditions. ``card_fingerprint``: the
    payment card's fingerprint when the partner sends one (stored as a keyed hash, for the referral guard)."""
    if not lines:
        raise ValidationFailed(
            "A purchase needs at least one line", code="lines_required", fields={"lines": ["Required."]}
        )
    now = clock.now()
    if occurred_at > now + FUTURE_TOLERANCE:
        raise ValidationFailed(
            "occurred_at is in the future", code="invalid_occurred_at", fields={"occurred_at": ["In the future."]}
        )
    if member is None:
        member_number = member_number_clean(member_number or "")
    program = (
        ledger_selectors.partner_program(partner=partner, name=program_name)
        if partner
        else (Program.objects.get(name=program_name) if program_name else ledger_selectors.program_default())
    )
    if check_window and occurred_at < program.created_at:
        raise ValidationFailed(
            "occurred_at is before the program started",
            code="occurred_at_before_program_start",
            fields={"occurred_at": [f"Not before {program.created_at.isoformat()}."]},
        )
    if currency and currency.upper() != program.currency:
        raise ValidationFailed(
            f"This program takes {program.currency}",
            code="currency_mismatch",
            fields={"currency": [f"Use {program.currency}."]},
        )
    if member is not None:
        _earning_member(None, member)
    # the usual case: one statement finds the member by number and locks its account
    with (
        transaction.atomic(durable=True),
        ledger.member_account_locked(program=program, member=member, member_number=member_number or "") as locked,
    ):
        member = _earning_member(None, locked.member)
        try:
            purchase = ledger.purchase_create(
                program=program,
                member=member,
                partner=partner,
                external_id=external_id,
                occurred_at=occurred_at,
                lines=lines,
                currency=program.currency,
                total=total,
                tax=tax,
                discount=discount,
                store_code=store,
            )
        except Conflict:
            existing = Purchase.objects.filter(partner=partner, external_id=external_id).first()
            if existing is not None and _same_purchase(existing, member, occurred_at, lines, total):
                return _outcome(existing, created=False)
            raise Conflict("A different purchase with this external_id exists", code="duplicate_external_id") from None
        tiers = program_tiers(program=program)  # read once: the earn multiplier, then the upgrade check
        tier = member_tier(member=member, program=program, tiers=tiers)
        result = earn_for(program=program, partner=partner, member=member, lines=lines, now=now, tiers=tiers, tier=tier)
        cap = program.max_points_per_transaction
        if cap is not None and result.points > cap:
            # raised inside the block: the purchase just stored is rolled back with it
            raise ValidationFailed(
                f"This purchase would earn {result.points} points; the program allows at most {cap} per purchase",
                code="points_cap_exceeded",
                extra={"points": result.points, "max_points_per_transaction": cap},
            )
        partner_member_link(partner=partner, member=member)  # before the offers: their row locks are held shortest
        taken = _offers_take(
            locked=locked,
            purchase=purchase,
            partner=partner,
            lines=lines,
            total=total,
            channel=channel,
            now=now,
            tier=tier,
        )
        offer_points = sum(t.points for t in taken)
        explanation = _with_offer_lines(result.explanation, taken, result.points + offer_points)
        outcome = PurchaseOutcome(
            purchase=purchase,
            created=True,
            points=0,
            pending_until=None,
            explanation=explanation if taken else [],
            offers=taken,
        )
        if result.points + offer_points > 0:
            earn = ledger.points_credit_locked(
                locked=locked,
                points=result.points + offer_points,
                reason=f"purchase {external_id}",
                purchase=purchase,
                partner=partner,
                pending=True,
                explanation=explanation,
            )
            RuleAward.objects.bulk_create(
                [
                    RuleAward(rule_id=rule_id, member=member, purchase=purchase, points=points, awarded_at=now)
                    for rule_id, points in result.awards.items()
                    if points
                ]
            )
            outcome.points = purchase.points_earned
            outcome.pending_until = _pending_until(earn, earn.credited_lot)
            outcome.explanation = earn.explanation
        tier_upgrade_check(member=member, program=program, tiers=tiers)
        referral_purchase_check(locked=locked, purchase=purchase, card_fingerprint=card_fingerprint)
        challenges_on_purchase(locked=locked, purchase=purchase, lines=lines)  # engagement: challenge progress
        if outcome.points:
            outbox_record(
                event_type="points.earned",
                member=member,
                payload={
                    "member_number": member.member_number,
                    "purchase_external_id": external_id,
                    "points": outcome.points,
                    "pending_until": outcome.pending_until,
                    "partner_id": getattr(partner, "pk", None),
                    "offers": [{"offer_id": t.offer.pk, "points": t.points} for t in taken if t.points],
                },
            )
    return outcome


def _offers_take(
    *,
    locked: ledger.LockedAccount,
    purchase: Purchase,
    partner: Partner | None,
    lines: list[dict[str, Any]],
    total: Any,
    channel: str,
    now: dt.datetime,
    tier: Tier | None,
) -> list[OfferTaken]:
    """What the live offers give this purchase, taken within their limits (under the account
    lock the caller holds). No statement when no live offer can give the purchase anything: the
    offers come from memory and are matched in Python; the member's facts (one statement) are
    read only for offers the purchase meets, the purchase history only when such an offer's
    condition looks at it."""
    live = purchase_offers_live(program=locked.program, now=now)
    if not live:
        return []
    program = locked.program
    context = PurchaseContext.of(
        lines=lines,
        partner_id=getattr(partner, "pk", None),
        channel=channel,
        occurred_at=timezone.localtime(purchase.occurred_at),
        total=total,
    )
    uses = offer_uses(live, context, earn_rate=program.earn_rate, rounding=program.earn_rounding)
    if not uses:
        return []
    member = locked.member
    uses = offer_uses_met(uses, context, buyer_facts(member=member, program=program, purchase=purchase, uses=uses))
    if not uses:
        return []
    facts = member_facts(
        member=member,
        program=program,
        offers=tuple(u.offer for u in uses),
        personalization=False,
        tier=tier,
        birth_month=False,
    )
    allowed = []
    for use in uses:
        answer = offer_eligibility(offer=use.offer, facts=facts, now=now, partner_id=context.partner_id)
        if answer.ok and not answer.needs_activation:
            allowed.append(use)
    return offer_uses_claim(locked=locked, purchase=purchase, uses=allowed, channel=channel)


def _with_offer_lines(explanation: list[dict], taken: list[OfferTaken], total: int) -> list[dict]:
    """The rules' explanation with one line per offer before the total, which then counts them."""
    if not taken:
        return explanation
    *rules, last = explanation
    lines = [t.explanation_line() for t in taken]
    if last.get("rule") != "Total":  # pragma: no cover - evaluate always ends with the total
        return [*explanation, *lines]
    return [*rules, *lines, {**last, "detail": f"{last['detail']}, offers added", "points": str(total)}]


def _same_return(existing: Return, purchase: Purchase, amount: Any | None, lines: list[dict] | None) -> bool:
    return existing.purchase_id == purchase.pk and (
        (amount is not None and Decimal(str(amount)).quantize(Decimal("0.01")) == existing.amount)
        or bool(
            lines
            and sorted((str(i.get("sku")), Decimal(str(i.get("quantity", 0)))) for i in lines)
            == sorted((i["sku"], Decimal(i["quantity"])) for i in existing.lines)
        )
    )


def return_record(
    *,
    partner: Partner | None,
    purchase_external_id: str,
    external_id: str,
    lines: list[dict[str, Any]] | None = None,
    amount: Any | None = None,
    occurred_at: dt.datetime | None = None,
) -> tuple[Return, bool]:
    """Record a return of a partner's purchase and reverse its points per the return policy.
    Returns (return, created). "New or repeat" is decided under the member's account lock, so of
    concurrent copies of one return exactly one claws back, records the event and is ``created``."""
    purchase = (
        Purchase.objects.filter(partner=partner, external_id=purchase_external_id)
        .select_related("member", "program")
        .first()
    )
    if purchase is None:
        raise NotFound("No purchase with this external_id", code="purchase_not_found")
    with (
        transaction.atomic(durable=True),
        ledger.member_account_locked(member=purchase.member, program=purchase.program),
    ):
        # new or repeat is decided under the account lock: concurrent copies wait here, then see the first
        existing = Return.objects.filter(partner=partner, external_id=external_id).first()
        if existing is not None:
            if not _same_return(existing, purchase, amount, lines):
                raise Conflict("A different return with this external_id exists", code="duplicate_external_id")
            return existing, False
        ret = ledger.purchase_return_clawback(
            purchase=purchase,
            external_id=external_id,
            amount=amount,
            lines=lines,
            occurred_at=occurred_at,
            partner=partner,
        )
        referral_return_check(purchase=purchase, ret=ret)
        challenges_return_check(purchase=purchase, ret=ret)
        reversed_points = ret.points_reversed + ret.points_to_debt
        if reversed_points or ret.points_written_off:
            outbox_record(
                event_type="points.reversed",
                member=purchase.member,
                payload={
                    "member_number": purchase.member.member_number,
                    "purchase_external_id": purchase_external_id,
                    "return_external_id": external_id,
                    "points_reversed": reversed_points,
                    "points_written_off": ret.points_written_off,
                    "partner_id": getattr(partner, "pk", None),
                },
            )
    return ret, True
