"""Offers: staff saves and status changes (audited), members activating offers, and what a purchase
takes from the offers it meets, within their limits.

Limits (``max_redemptions``, ``max_per_member``, ``points_budget``) are exact under concurrency:

- per member: counted under the member's account lock (the purchase holds it), so two purchases
  of one member cannot both take the last use;
- total redemptions and the points budget: the offer rows a purchase uses are locked (SELECT ...
  FOR UPDATE, in primary-key order, after the account lock: every caller takes them in the same
  order), what is left is worked out from the locked counters, and one UPDATE adds what was taken.
  The check constraints ``offer_redemptions_within_limit`` and ``offer_points_within_budget`` are
  the database's last word.

The counters (``redemptions_count``, ``points_issued``) are kept only while an offer has a total
limit: an offer without one is used by purchases that do not wait for each other (its row is only
share-locked), and its figures are its redemptions. A staff save that gives an offer its first
total limit counts its redemptions into the counters, after the purchases using it committed.

A points budget that cannot give all the bonus a purchase would earn gives what is left, and the
explanation line says "budget reached"; once nothing is left the offer gives nothing (and is
``exhausted`` for eligibility).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Case, Count, F, Sum, Value, When

from loyalty.core import clock
from loyalty.core.errors import Conflict
from loyalty.core.services import audit_record, model_delete_audited, model_values
from offers.matching import OfferUse
from offers.models import (
    CouponSource,
    Offer,
    OfferActivation,
    OfferRedemption,
    OfferStatus,
    RedemptionState,
)
from offers.selectors.eligibility import OfferConfig, member_facts, offer_eligibility, offers_active
from offers.services.coupons import coupon_issue

if TYPE_CHECKING:
    from loyalty.core.services import Actor
    from loyalty.ledger.models import Purchase
    from loyalty.ledger.services.locking import LockedAccount
    from members.models import Member
    from offers.models import Coupon

# What a staff save writes: every column but the counters, which only purchases change.
COUNTERS = ("redemptions_count", "points_issued")
AUDITED = (
    "name",
    "status",
    "priority",
    "condition_kind",
    "condition_min_spend",
    "condition_categories",
    "condition_skus",
    "condition_count",
    "condition_window_days",
    "condition_days_of_week",
    "condition_channels",
    "benefit_kind",
    "benefit_multiplier",
    "benefit_points",
    "benefit_value",
    "benefit_sku",
    "benefit_reward",
    "scope_categories",
    "scope_skus",
    "valid_from",
    "valid_until",
    "requires_activation",
    "max_redemptions",
    "max_per_member",
    "points_budget",
)


def offer_save(*, offer: Offer, actor: Actor, reason: str = "") -> Offer:
    """Create or change an offer as staff do (the admin form), audited as ``offer.created`` /
    ``offer.changed`` with the fields before and after. The counters are never written from here:
    a form holding figures read a minute ago must not undo the purchases made since."""
    now = clock.now()
    created = offer.pk is None
    with transaction.atomic():
        offer.updated_at = now
        before = None
        if created:
            offer.created_at = now
            offer.save()
        else:
            stored = Offer.objects.select_for_update().get(pk=offer.pk)
            before = model_values(stored, AUDITED)
            fields = [
                f.name
                for f in Offer._meta.concrete_fields
                if not f.primary_key and f.name not in COUNTERS and f.name != "created_at"
            ]
            if not _limited(stored) and _limited(offer):
                # counters are kept only while an offer has a total limit: count what it gave so
                # far (purchases using it hold a share lock that this row lock waited for)
                used = OfferRedemption.objects.filter(offer_id=offer.pk, status=RedemptionState.COMPLETED).aggregate(
                    n=Count("id"), points=Sum("points")
                )
                offer.redemptions_count, offer.points_issued = used["n"], used["points"] or 0
                fields += list(COUNTERS)
            offer.save(update_fields=fields)
        after = model_values(offer, AUDITED)
        if before is not None:
            changed = [name for name in AUDITED if before[name] != after[name]]
            before, after = {n: before[n] for n in changed}, {n: after[n] for n in changed}
        audit_record(
            actor=actor,
            action=f"offer.{'created' if created else 'changed'}",
            target=offer,
            reason=reason,
            before=before,
            after=after,
        )
    return offer


def _limited(offer: Offer) -> bool:
    return offer.max_redemptions is not None or offer.points_budget is not None


# status changes staff may make: (from, to) -> the audit verb
TRANSITIONS = {
    (OfferStatus.DRAFT, OfferStatus.ACTIVE): "published",
    (OfferStatus.ACTIVE, OfferStatus.PAUSED): "paused",
    (OfferStatus.PAUSED, OfferStatus.ACTIVE): "resumed",
    (OfferStatus.DRAFT, OfferStatus.ENDED): "ended",
    (OfferStatus.ACTIVE, OfferStatus.ENDED): "ended",
    (OfferStatus.PAUSED, OfferStatus.ENDED): "ended",
}


def _status_change(*, offer: Offer, to: str, actor: Actor, reason: str) -> Offer:
    with transaction.atomic():
        stored = Offer.objects.select_for_update().get(pk=offer.pk)
        verb = TRANSITIONS.get((stored.status, to))
        if verb is None:
            raise Conflict(
                f"A {stored.get_status_display().lower()} offer cannot become {OfferStatus(to).label.lower()}",
                code="offer_status_invalid",
                extra={"status": stored.status},
            )
        now = clock.now()
        Offer.objects.filter(pk=offer.pk).update(status=to, updated_at=now)
        audit_record(
            actor=actor,
            action=f"offer.{verb}",
            target=stored,
            reason=reason,
            before={"status": stored.status},
            after={"status": to},
        )
    offer.status, offer.updated_at = to, now
    return offer


def offer_publish(*, offer: Offer, actor: Actor, reason: str = "") -> Offer:
    """A draft goes live: active now, or scheduled when its ``valid_from`` is still ahead (live
    offers are the active ones inside their validity window)."""
    return _status_change(offer=offer, to=OfferStatus.ACTIVE, actor=actor, reason=reason)


def offer_pause(*, offer: Offer, actor: Actor, reason: str = "") -> Offer:
    """An active offer stops applying until resumed (its counters and activations stay)."""
    return _status_change(offer=offer, to=OfferStatus.PAUSED, actor=actor, reason=reason)


def offer_resume(*, offer: Offer, actor: Actor, reason: str = "") -> Offer:
    return _status_change(offer=offer, to=OfferStatus.ACTIVE, actor=actor, reason=reason)


def offer_end(*, offer: Offer, actor: Actor, reason: str = "") -> Offer:
    """The offer stops for good (it cannot be resumed; its figures stay)."""
    return _status_change(offer=offer, to=OfferStatus.ENDED, actor=actor, reason=reason)


def _config(offer: Offer) -> OfferConfig | None:
    return next((o for o in offers_active(program=offer.program) if o.pk == offer.pk), None)


def offer_activate(*, member: Member, offer: Offer, channel: str) -> tuple[OfferActivation, bool]:
    """The member clips ``offer`` to their card. Idempotent: activating again returns the first
    activation (``created`` False). Refused (409) with the eligibility's code when the member may
    not use the offer now (``offer_not_active``, ``offer_ended``, ``offer_tier_excluded``, ...),
    and with ``offer_activation_not_required`` for an offer that applies without activation."""
    config = _config(offer)
    if config is None:
        raise Conflict("This offer is not running", code="offer_not_active")
    if not config.requires_activation:
        raise Conflict("This offer applies without activating it", code="offer_activation_not_required")
    now = clock.now()
    answer = offer_eligibility(
        offer=config,
        facts=member_facts(member=member, program=offer.program, offers=(config,), personalization=False),
        now=now,
    )
    if not answer.ok:
        raise Conflict(answer.reason, code=answer.code)
    with transaction.atomic():
        return OfferActivation.objects.get_or_create(
            offer_id=offer.pk, member=member, defaults={"channel": channel[:20], "activated_at": now}
        )


@dataclass
class OfferTaken:
    """What the purchase got from an offer, within its limits. ``points`` may be less than asked
    (``budget_reached``); ``points`` 0 and no coupon means the offer's limits left nothing."""

    offer: OfferConfig
    points: int
    detail: str
    budget_reached: bool = False
    coupon: Coupon | None = None
    redemption: OfferRedemption | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """How the explanation names it: "Double points on dairy (offer #12)"."""
        return f"{self.offer.name} (offer #{self.offer.pk})"

    def explanation_line(self) -> dict[str, Any]:
        if self.coupon is not None:
            return {"rule": self.label, "detail": self.detail or "coupon issued", "points": "0"}
        detail = f"{self.detail}; budget reached" if self.budget_reached else self.detail
        return {"rule": self.label, "detail": detail if self.points else "budget reached", "points": str(self.points)}


def offer_uses_claim(
    *, locked: LockedAccount, purchase: Purchase, uses: list[OfferUse], channel: str
) -> list[OfferTaken]:
    """Take what ``uses`` ask from their offers for ``purchase``, within each offer's total limits,
    and record one ``OfferRedemption`` per offer that gave something (issuing the coupons). The
    caller holds the member's account lock (``locked``) and checked the per-member limits under
    it. What the limits leave is given (a points budget may give part of the bonus). Writes
    nothing when ``uses`` is empty.

    Offers with a total limit (``OfferConfig.limited``) are locked FOR UPDATE in primary-key order
    and their counters moved by one UPDATE: purchases using one take turns on its row. Offers
    without one keep no counters (their figures are their redemptions): their rows are only
    share-locked (``_unlimited_still``), which purchases do not wait for, so a popular offer
    without limits costs no waiting."""
    if not uses:
        return []
    assert locked.held  # noqa: S101 - the type says it; a released lock raises LockReleased here
    by_pk = {use.offer.pk: use for use in uses}
    taken: dict[int, OfferTaken] = {}
    unlimited = [pk for pk, use in by_pk.items() if not use.offer.limited]
    for pk in _unlimited_still(unlimited):
        use = by_pk[pk]
        taken[pk] = OfferTaken(offer=use.offer, points=use.points, detail=use.detail)
    limited = [pk for pk, use in by_pk.items() if use.offer.limited]
    rows = (
        Offer.objects.select_for_update()
        .filter(pk__in=limited, status=OfferStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", "redemptions_count", "max_redemptions", "points_issued", "points_budget")
        if limited
        else ()
    )
    counted = []
    for pk, count, max_count, issued, budget in rows:
        use = by_pk[pk]
        if max_count is None and budget is None:
            continue  # its limits were just removed: taken again by the next purchase, uncounted
        if max_count is not None and count >= max_count:
            continue
        points, short = use.points, False
        if budget is not None and use.coupon is None:
            left = max(budget - issued, 0)
            points, short = min(use.points, left), use.points > left
            if points <= 0:
                taken[pk] = OfferTaken(offer=use.offer, points=0, detail=use.detail, budget_reached=True)
                continue
        taken[pk] = OfferTaken(offer=use.offer, points=points, detail=use.detail, budget_reached=short)
        counted.append(taken[pk])
    if counted:
        Offer.objects.filter(pk__in=[t.offer.pk for t in counted]).update(
            redemptions_count=F("redemptions_count") + 1,
            points_issued=F("points_issued")
            + Case(*(When(pk=t.offer.pk, then=Value(t.points)) for t in counted), default=Value(0)),
        )
    given = [t for t in taken.values() if t.points or by_pk[t.offer.pk].coupon is not None]
    if given:
        _redemptions_record(locked=locked, purchase=purchase, given=given, by_pk=by_pk, channel=channel)
    return [taken[use.offer.pk] for use in uses if use.offer.pk in taken]


def _unlimited_still(pks: list[int]) -> list[int]:
    """Of offers the purchase saw without total limits, those still active and without them,
    share-locked (FOR KEY SHARE, primary-key order) until the purchase commits: purchases do not
    wait for each other, while a staff save (``offer_save`` locks the row FOR UPDATE) waits for
    them, so the counters it recounts when it sets a limit miss no redemption. An offer given a
    limit meanwhile gives this purchase nothing (the next purchase counts it). On other
    databases (SQLite writes one transaction at a time) a plain read."""
    if not pks:
        return []
    if connection.vendor != "postgresql":
        return list(
            Offer.objects.filter(
                pk__in=pks, status=OfferStatus.ACTIVE, max_redemptions__isnull=True, points_budget__isnull=True
            ).values_list("pk", flat=True)
        )
    table = connection.ops.quote_name(Offer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s) AND status = %s"  # noqa: S608 - names from the model
            " AND max_redemptions IS NULL AND points_budget IS NULL ORDER BY id FOR KEY SHARE",
            [pks, OfferStatus.ACTIVE.value],
        )
        return [row[0] for row in cursor.fetchall()]


def _redemptions_record(
    *, locked: LockedAccount, purchase: Purchase, given: list[OfferTaken], by_pk: dict[int, OfferUse], channel: str
) -> None:
    member = locked.member
    now = clock.now()
    for t in given:
        grant = by_pk[t.offer.pk].coupon
        if grant is not None:
            t.coupon = coupon_issue(
                program=locked.program,
                source=CouponSource.OFFER,
                member=member,
                offer=Offer(pk=t.offer.pk),
                valid_days=grant.valid_days,
            )
    redemptions = OfferRedemption.objects.bulk_create(
        [
            OfferRedemption(
                offer_id=t.offer.pk,
                member=member,
                purchase=purchase,
                coupon=t.coupon,
                points=t.points,
                channel=channel[:20],
                created_at=now,
            )
            for t in given
        ]
    )
    for t, redemption in zip(given, redemptions, strict=True):
        t.redemption = redemption


def offer_delete(*, offer: Offer, actor: Actor, reason: str = "") -> None:
    """Delete an offer nobody used (an offer with redemptions or coupons is protected: end it
    instead), audited as ``offer.deleted``."""
    model_delete_audited(instance=offer, actor=actor, fields=AUDITED, action="offer", reason=reason)
