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

from dataclasses import dataclass
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
    share-locked (``CLAIM_SQL``), which purchases do not wait for, so a popular offer
    without limits costs no waiting."""
    if not uses:
        return []
    assert locked.held  # noqa: S101 - the type says it; a released lock raises LockReleased here
    by_pk = {use.offer.pk: use for use in uses}
    unlimited = sorted(pk for pk, use in by_pk.items() if not use.offer.limited)
    limited = sorted(pk for pk, use in by_pk.items() if use.offer.limited)
    claim = _claim_postgresql if connection.vendor == "postgresql" else _claim_orm
    still, granted = claim(unlimited=unlimited, limited=[by_pk[pk] for pk in limited])
    taken: dict[int, OfferTaken] = {}
    for pk in still:
        use = by_pk[pk]
        taken[pk] = OfferTaken(offer=use.offer, points=use.points, detail=use.detail)
    for pk, points in granted.items():
        use = by_pk[pk]
        short = use.coupon is None and points < use.points
        taken[pk] = OfferTaken(offer=use.offer, points=points, detail=use.detail, budget_reached=short)
    given = [t for t in taken.values() if t.points or by_pk[t.offer.pk].coupon is not None]
    if given:
        _redemptions_record(locked=locked, purchase=purchase, given=given, by_pk=by_pk, channel=channel)
    return [taken[use.offer.pk] for use in uses if use.offer.pk in taken]


def _grant(use: OfferUse, count: int, max_count: int | None, issued: int, budget: int | None) -> int | None:
    """What an offer with a total limit gives ``use`` from its locked counters (None: nothing left)."""
    if max_count is not None and count >= max_count:
        return None
    if budget is None or use.coupon is not None:
        return use.points
    return min(use.points, max(budget - issued, 0))


def _claim_orm(*, unlimited: list[int], limited: list[OfferUse]) -> tuple[list[int], dict[int, int]]:
    """``_claim_postgresql`` through the ORM (SQLite writes one transaction at a time: the rows
    need no share lock there)."""
    still = list(
        Offer.objects.filter(
            pk__in=unlimited, status=OfferStatus.ACTIVE, max_redemptions__isnull=True, points_budget__isnull=True
        ).values_list("pk", flat=True)
    )
    granted: dict[int, int] = {}
    if not limited:
        return still, granted
    by_pk = {use.offer.pk: use for use in limited}
    rows = (
        Offer.objects.select_for_update()
        .filter(pk__in=by_pk, status=OfferStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", "redemptions_count", "max_redemptions", "points_issued", "points_budget")
    )
    for pk, count, max_count, issued, budget in rows:
        if max_count is None and budget is None:
            continue  # its limits were just removed: the next purchase takes it, uncounted
        points = _grant(by_pk[pk], count, max_count, issued, budget)
        if points is not None:
            granted[pk] = points
    counted = {pk: points for pk, points in granted.items() if points or by_pk[pk].coupon is not None}
    if counted:
        Offer.objects.filter(pk__in=counted).update(
            redemptions_count=F("redemptions_count") + 1,
            points_issued=F("points_issued")
            + Case(*(When(pk=pk, then=Value(points)) for pk, points in counted.items()), default=Value(0)),
        )
    return still, granted


# One statement: the offers without a total limit that still have none, share-locked (FOR KEY SHARE:
# purchases do not wait for each other; a staff save, which locks the row FOR UPDATE, waits for them,
# so the counters it recounts when it sets a first limit miss no redemption); the offers with one
# locked FOR UPDATE in primary-key order, what their counters leave worked out from the locked
# (newest) row, and their counters moved by the UPDATE of the same statement.
CLAIM_SQL = """
WITH still AS (
    SELECT id FROM {table}
    WHERE id = ANY(%(unlimited)s) AND status = %(active)s AND max_redemptions IS NULL AND points_budget IS NULL
    ORDER BY id FOR KEY SHARE
), cur AS (
    SELECT id, redemptions_count, max_redemptions, points_issued, points_budget FROM {table}
    WHERE id = ANY(%(limited)s) AND status = %(active)s
    ORDER BY id FOR UPDATE
), wanted AS (
    SELECT * FROM unnest(%(limited)s::bigint[], %(points)s::bigint[], %(coupon)s::boolean[]) AS w (id, points, coupon)
), granted AS (
    SELECT cur.id, wanted.coupon,
        CASE WHEN cur.points_budget IS NULL OR wanted.coupon THEN wanted.points
             ELSE LEAST(wanted.points, GREATEST(cur.points_budget - cur.points_issued, 0)) END AS points
    FROM cur JOIN wanted USING (id)
    WHERE (cur.max_redemptions IS NOT NULL OR cur.points_budget IS NOT NULL)
      AND (cur.max_redemptions IS NULL OR cur.redemptions_count < cur.max_redemptions)
), counted AS (
    UPDATE {table} AS o
    SET redemptions_count = o.redemptions_count + 1, points_issued = o.points_issued + granted.points
    FROM granted WHERE o.id = granted.id AND (granted.points > 0 OR granted.coupon)
    RETURNING o.id
)
SELECT 'still', id, 0 FROM still
UNION ALL SELECT 'granted', id, points FROM granted
UNION ALL SELECT 'counted', id, 0 FROM counted
"""


def _claim_postgresql(*, unlimited: list[int], limited: list[OfferUse]) -> tuple[list[int], dict[int, int]]:
    """Of the offers a purchase meets: those without a total limit it may still take whole, and
    what those with one give it (``CLAIM_SQL``, one statement)."""
    sql = CLAIM_SQL.format(table=connection.ops.quote_name(Offer._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "unlimited": unlimited,
                "limited": [use.offer.pk for use in limited],
                "points": [use.points for use in limited],
                "coupon": [use.coupon is not None for use in limited],
                "active": OfferStatus.ACTIVE.value,
            },
        )
        rows = cursor.fetchall()
    still = [pk for kind, pk, _points in rows if kind == "still"]
    return still, {pk: points for kind, pk, points in rows if kind == "granted"}


def _redemptions_record(
    *, locked: LockedAccount, purchase: Purchase, given: list[OfferTaken], by_pk: dict[int, OfferUse], channel: str
) -> None:
    """One ``OfferRedemption`` per offer that gave something, in one INSERT (coupon offers issue
    their coupon first)."""
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
    if connection.vendor == "postgresql":
        # the ORM's bulk_create compiles a statement per call: a few milliseconds of the purchase's CPU
        table = connection.ops.quote_name(OfferRedemption._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (offer_id, member_id, purchase_id, coupon_id, points, channel, status,"  # noqa: S608
                " created_at) SELECT o, %s, %s, c, p, %s, %s, %s FROM unnest(%s::bigint[], %s::bigint[],"
                " %s::bigint[]) AS r (o, c, p)",
                [
                    member.pk,
                    purchase.pk,
                    channel[:20],
                    RedemptionState.COMPLETED.value,
                    now,
                    [t.offer.pk for t in given],
                    [t.coupon.pk if t.coupon is not None else None for t in given],
                    [t.points for t in given],
                ],
            )
        return
    OfferRedemption.objects.bulk_create(
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


def offer_delete(*, offer: Offer, actor: Actor, reason: str = "") -> None:
    """Delete an offer nobody used (an offer with redemptions or coupons is protected: end it
    instead), audited as ``offer.deleted``."""
    model_delete_audited(instance=offer, actor=actor, fields=AUDITED, action="offer", reason=reason)


def offer_activations_record_many(*, offer_id: int, member_ids: list[int], channel: str) -> int:
    """Activate one offer for many members at once (a gift the program gives, e.g. on birthdays:
    no eligibility asked), set-based; members who hold it already are left as they are. Returns
    how many rows were asked for."""
    now = clock.now()
    OfferActivation.objects.bulk_create(
        [OfferActivation(offer_id=offer_id, member_id=m, channel=channel[:20], activated_at=now) for m in member_ids],
        ignore_conflicts=True,
        batch_size=5000,
    )
    return len(member_ids)
