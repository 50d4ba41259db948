"""Coupons: code generation and issue (the one place that draws codes), batches and imports, and
the lifecycle: validate (may it be used, what does it give), redeem (one use, exact under
concurrency), cancel a use (the purchase was voided) or the coupon (staff).

Use counters move only by conditional UPDATEs (``uses_count + 1 WHERE uses_count < max_uses``,
the offer's ``redemptions_count`` within ``max_redemptions``), under the coupon's row lock."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Upper

from loyalty.core import clock
from loyalty.core.constraints import constraint_name
from loyalty.core.errors import Conflict, NotFound, ValidationFailed
from loyalty.core.services import audit_record
from loyalty.partners.services import outbox_record
from members.models import MemberStatus
from offers.models import (
    ConditionKind,
    Coupon,
    CouponBatch,
    CouponSource,
    CouponStatus,
    CouponUse,
    Offer,
    OfferRedemption,
    OfferStatus,
    RedemptionState,
    Reward,
    RewardRedemption,
)
from offers.selectors.catalog import CouponBenefit, coupon_benefit, coupon_get

if TYPE_CHECKING:
    from loyalty.core.services import Actor
    from loyalty.ledger.models import Program
    from loyalty.partners.models import Partner
    from members.models import Member

# No 0/O, 1/I/L: codes are read aloud and typed at tills.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH_MIN, CODE_LENGTH_MAX = 6, 32
_ISSUE_ATTEMPTS = 5


def coupon_code_generate(*, prefix: str = "", length: int = 10) -> str:
    """A random code: ``prefix`` (upper-cased) followed by ``length`` characters of ``CODE_ALPHABET``
    (31 symbols: 10 characters are about 50 bits)."""
    if not CODE_LENGTH_MIN <= length <= CODE_LENGTH_MAX:
        raise ValidationFailed(
            f"A code has {CODE_LENGTH_MIN} to {CODE_LENGTH_MAX} random characters",
            code="invalid_code_length",
            fields={"code_length": [f"Between {CODE_LENGTH_MIN} and {CODE_LENGTH_MAX}."]},
        )
    prefix = prefix.strip().upper()
    if prefix and not prefix.replace("-", "").isalnum():
        raise ValidationFailed(
            "A code prefix is letters, digits and dashes", code="invalid_code_prefix", fields={"prefix": ["Invalid."]}
        )
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def coupon_issue(
    *,
    program: Program,
    source: str,
    member: Member | None = None,
    offer: Offer | None = None,
    reward: Reward | None = None,
    batch: CouponBatch | None = None,
    max_uses: int = 1,
    valid_days: int | None = None,
    expires_at: dt.datetime | None = None,
    prefix: str = "",
    length: int = 10,
) -> Coupon:
    """Issue one coupon with a fresh random code (a collision with an existing code, vanishingly
    rare, draws again). ``valid_days`` from now, or ``expires_at``; neither: it does not expire."""
    if source not in CouponSource.values:
        raise ValueError(f"unknown coupon source {source!r}")
    now = clock.now()
    if expires_at is None and valid_days is not None:
        expires_at = now + dt.timedelta(days=valid_days)
    for _ in range(_ISSUE_ATTEMPTS):
        try:
            with transaction.atomic():
                return Coupon.objects.create(
                    code=coupon_code_generate(prefix=prefix, length=length),
                    program=program,
                    batch=batch,
                    offer=offer,
                    reward=reward,
                    member=member,
                    source=source,
                    max_uses=max_uses,
                    expires_at=expires_at,
                    issued_at=now,
                )
        except IntegrityError as exc:
            if constraint_name(exc) != "coupon_code_unique_ci":
                raise
            # the code was taken: draw another
    raise RuntimeError("could not draw a free coupon code")  # pragma: no cover - 31^10 codes


# --- batches ----------------------------------------------------------------------------------------

BATCH_COUNT_MAX = 1_000_000
_INSERT_CHUNK = 5000


def coupon_batch_generate(
    *,
    program: Program,
    name: str,
    count: int,
    prefix: str = "",
    length: int = 10,
    max_uses: int = 1,
    expires_at: dt.datetime | None = None,
    valid_from: dt.datetime | None = None,
    offer: Offer | None = None,
    member: Member | None = None,
    actor: Actor = None,
) -> CouponBatch:
    """Generate ``count`` coupons with fresh random codes (``prefix`` + ``length`` characters),
    single-use (``max_uses`` 1) or multi-use, expiring at ``expires_at``, bound to ``member`` or
    to nobody, giving what ``offer`` gives. Set-based: codes are drawn in Python, inserted in
    chunks with ON CONFLICT DO NOTHING (a code another coupon holds is skipped), and what a
    collision left out is drawn again until ``count`` are written. Audited as
    ``coupon_batch.generated``."""
    if not 1 <= count <= BATCH_COUNT_MAX:
        raise ValidationFailed(
            f"A batch has 1 to {BATCH_COUNT_MAX} coupons", code="invalid_count", fields={"count": ["Out of range."]}
        )
    if max_uses < 1:
        raise ValidationFailed("A coupon has at least one use", code="invalid_max_uses", fields={"max_uses": ["≥ 1."]})
    if expires_at is not None and valid_from is not None and expires_at <= valid_from:
        raise ValidationFailed(
            "A coupon must expire after it starts", code="invalid_window", fields={"expires_at": ["After the start."]}
        )
    if offer is not None and offer.program_id != program.pk:
        raise ValidationFailed("The offer is of another program", code="program_mismatch")
    coupon_code_generate(prefix=prefix, length=length)  # checks prefix and length before writing anything
    prefix = prefix.strip().upper()
    now = clock.now()
    with transaction.atomic():
        batch = CouponBatch.objects.create(
            program=program,
            name=name,
            offer=offer,
            prefix=prefix,
            code_length=length,
            count=count,
            max_uses=max_uses,
            expires_at=expires_at,
            created_by=actor if getattr(actor, "pk", None) is not None else None,
            created_at=now,
        )
        written = 0
        for _ in range(_ISSUE_ATTEMPTS * 4):
            missing = count - written
            if missing == 0:
                break
            codes: set[str] = set()
            while len(codes) < missing:
                codes.add(coupon_code_generate(prefix=prefix, length=length))
            rows = [
                Coupon(
                    code=code,
                    program=program,
                    batch=batch,
                    offer=offer,
                    member=member,
                    source=CouponSource.BATCH,
                    max_uses=max_uses,
                    valid_from=valid_from,
                    expires_at=expires_at,
                    issued_at=now,
                )
                for code in codes
            ]
            Coupon.objects.bulk_create(rows, batch_size=_INSERT_CHUNK, ignore_conflicts=True)
            written = Coupon.objects.filter(batch=batch).count()
        if written != count:  # pragma: no cover - the code space is exhausted (short codes, huge batch)
            raise Conflict("Not enough free codes of this prefix and length", code="code_space_exhausted")
        audit_record(
            actor=actor,
            action="coupon_batch.generated",
            target=batch,
            after={
                "count": count,
                "prefix": prefix,
                "code_length": length,
                "max_uses": max_uses,
                "offer_id": getattr(offer, "pk", None),
                "member_id": getattr(member, "pk", None),
            },
        )
    return batch


def coupons_import(*, program: Program, rows: Sequence[ImportedCoupon], name: str, actor: Actor = None) -> CouponBatch:
    """Import coupons with codes from elsewhere (the admin's import): one batch, source ``import``.
    Codes are upper-cased; a code already taken (any case), repeated in the file, or not letters,
    digits and dashes refuses the whole import with the rows concerned (``invalid_coupon_codes``).
    Audited as ``coupon_batch.imported``."""
    if not rows:
        raise ValidationFailed("Nothing to import", code="empty_import")
    codes = [r.code.strip().upper() for r in rows]
    bad = [c for c in codes if not c or len(c) > 48 or not c.replace("-", "").isalnum()]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    now = clock.now()
    with transaction.atomic():
        taken = sorted(
            Coupon.objects.annotate(upper=Upper("code")).filter(upper__in=codes).values_list("upper", flat=True)
        )
        if bad or repeated or taken:
            raise ValidationFailed(
                "Some codes cannot be imported",
                code="invalid_coupon_codes",
                extra={"invalid": bad[:50], "repeated": repeated[:50], "taken": taken[:50]},
            )
        batch = CouponBatch.objects.create(
            program=program,
            name=name,
            code_length=max(CODE_LENGTH_MIN, min(CODE_LENGTH_MAX, max(len(c) for c in codes))),
            count=len(rows),
            max_uses=max(r.max_uses for r in rows),
            created_by=actor if getattr(actor, "pk", None) is not None else None,
            created_at=now,
        )
        Coupon.objects.bulk_create(
            [
                Coupon(
                    code=code,
                    program=program,
                    batch=batch,
                    offer=r.offer,
                    member=r.member,
                    source=CouponSource.IMPORT,
                    max_uses=r.max_uses,
                    valid_from=r.valid_from,
                    expires_at=r.expires_at,
                    issued_at=now,
                )
                for code, r in zip(codes, rows, strict=True)
            ],
            batch_size=_INSERT_CHUNK,
        )
        audit_record(actor=actor, action="coupon_batch.imported", target=batch, after={"count": len(rows)})
    return batch


@dataclass(frozen=True, slots=True)
class ImportedCoupon:
    """One row of a coupon import."""

    code: str
    max_uses: int = 1
    member: Member | None = None
    offer: Offer | None = None
    valid_from: dt.datetime | None = None
    expires_at: dt.datetime | None = None


# --- validate, redeem, cancel -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CouponCheck:
    """A coupon that may be used now, and what it gives (``benefit``)."""

    coupon: Coupon
    benefit: CouponBenefit
    uses_left: int


def _usable(
    coupon: Coupon, *, member: Member | None, basket_total: Decimal | None, now: dt.datetime, with_uses: bool = True
) -> None:
    """Raise the first reason ``coupon`` cannot be used now by ``member`` on this basket."""
    if coupon.status == CouponStatus.CANCELLED:
        raise Conflict("This coupon was cancelled", code="coupon_cancelled")
    if coupon.valid_from is not None and now < coupon.valid_from:
        raise Conflict(f"This coupon can be used from {coupon.valid_from:%Y-%m-%d}", code="coupon_not_started")
    if coupon.expires_at is not None and now >= coupon.expires_at:
        raise Conflict("This coupon has expired", code="coupon_expired")
    if with_uses and coupon.uses_count >= coupon.max_uses:
        raise Conflict("This coupon has been used up", code="coupon_exhausted")
    if coupon.member_id is not None and (member is None or member.pk != coupon.member_id):
        raise Conflict("This coupon belongs to another member", code="coupon_member_mismatch")
    if member is not None and member.status != MemberStatus.ACTIVE:
        raise Conflict("Only active members may use coupons", code="member_inactive")
    offer = coupon.offer
    if offer is not None:
        if member is None:
            raise ValidationFailed(
                "This coupon is part of an offer: say which member uses it",
                code="coupon_member_required",
                fields={"member_number": ["Required for this coupon."]},
            )
        if offer.status != OfferStatus.ACTIVE or (offer.valid_until is not None and now >= offer.valid_until):
            raise Conflict("The offer of this coupon is not running", code="coupon_offer_ended")
        if (
            offer.condition_kind == ConditionKind.MIN_SPEND
            and offer.condition_min_spend is not None
            and (basket_total is None or basket_total < offer.condition_min_spend)
        ):
            raise Conflict(
                f"This coupon needs a basket of at least {offer.condition_min_spend}",
                code="coupon_min_spend_not_met",
                extra={"min_spend": str(offer.condition_min_spend)},
            )


def coupon_validate(
    *,
    code: str,
    partner: Partner | None = None,
    member: Member | None = None,
    basket_total: Decimal | None = None,
) -> CouponCheck:
    """Is the coupon usable now, at ``partner``, by ``member``, on a basket of ``basket_total``,
    and what does it give? Reads only. Refusals (stable codes): ``coupon_not_found`` 404 (unknown,
    or not this partner's to see), ``coupon_cancelled``, ``coupon_not_started``, ``coupon_expired``,
    ``coupon_exhausted``, ``coupon_member_mismatch``, ``member_inactive``, ``coupon_offer_ended``,
    ``coupon_min_spend_not_met`` (409), ``coupon_member_required`` (422)."""
    coupon = coupon_get(code=code, partner=partner)
    _usable(coupon, member=member, basket_total=basket_total, now=clock.now())
    return CouponCheck(
        coupon=coupon,
        benefit=coupon_benefit(coupon=coupon, basket_total=basket_total),
        uses_left=coupon.max_uses - coupon.uses_count,
    )


def coupon_redeem(
    *,
    code: str,
    idempotency_key: str | None = None,
    partner: Partner | None = None,
    member: Member | None = None,
    basket_total: Decimal | None = None,
    purchase_external_id: str = "",
    channel: str = "api",
) -> CouponUse:
    """Use the coupon once: the checks of ``coupon_validate``, then ``uses_count + 1`` by a
    conditional UPDATE (``WHERE uses_count < max_uses``: concurrent uses never pass ``max_uses``,
    the others get ``coupon_exhausted``), a ``CouponUse`` with the discount given, and for a coupon
    of an offer an ``OfferRedemption`` counted against the offer's ``max_redemptions`` by the
    same kind of UPDATE (``offer_exhausted``). Event ``coupon.redeemed``. The same
    ``idempotency_key`` again returns the first use (``idempotency_key_reused`` for another
    coupon)."""
    coupon = coupon_get(code=code, partner=partner)
    with transaction.atomic():
        # the coupon row is locked first: concurrent uses of one key wait and then find the first
        Coupon.objects.select_for_update().filter(pk=coupon.pk).values_list("pk", flat=True).get()
        if idempotency_key:
            found = CouponUse.objects.filter(idempotency_key=idempotency_key).first()
            if found is not None:
                if found.coupon_id != coupon.pk:
                    raise Conflict("This idempotency key was used for another coupon", code="idempotency_key_reused")
                return found
        coupon.refresh_from_db(fields=["status", "uses_count", "max_uses", "valid_from", "expires_at"])
        now = clock.now()
        _usable(coupon, member=member, basket_total=basket_total, now=now)
        if not Coupon.objects.filter(pk=coupon.pk, status=CouponStatus.ACTIVE, uses_count__lt=F("max_uses")).update(
            uses_count=F("uses_count") + 1
        ):  # pragma: no cover - the row lock above makes the check exact; this is the database's word
            raise Conflict("This coupon has been used up", code="coupon_exhausted")
        benefit = coupon_benefit(coupon=coupon, basket_total=basket_total)
        use = CouponUse.objects.create(
            coupon=coupon,
            member=member,
            partner=partner,
            purchase_external_id=purchase_external_id or "",
            basket_total=basket_total,
            discount=benefit.discount or Decimal("0"),
            idempotency_key=idempotency_key or None,
            used_at=now,
        )
        if coupon.offer_id is not None:
            if (
                not Offer.objects.filter(pk=coupon.offer_id)
                .filter(Q(max_redemptions__isnull=True) | Q(redemptions_count__lt=F("max_redemptions")))
                .update(redemptions_count=F("redemptions_count") + 1)
            ):
                raise Conflict("The offer of this coupon has been used up", code="offer_exhausted")
            OfferRedemption.objects.create(
                offer_id=coupon.offer_id, member=member, coupon=coupon, channel=channel, created_at=now
            )
        outbox_record(
            event_type="coupon.redeemed",
            member=member or coupon.member,
            payload={
                "member_number": (member or coupon.member).member_number if (member or coupon.member) else None,
                "coupon_id": coupon.pk,
                "coupon_use_id": use.pk,
                "reward_id": coupon.reward_id,
                "offer_id": coupon.offer_id,
                "discount": use.discount,
                "purchase_external_id": use.purchase_external_id,
                "partner_id": partner.pk if partner is not None else None,
            },
        )
    return use


def coupon_use_cancel(*, coupon_use: CouponUse, partner: Partner | None = None, actor: Actor = None) -> CouponUse:
    """Give a use back (the purchase it was for was voided): the use is cancelled, the coupon's
    ``uses_count`` goes down by one, and for an offer's coupon the offer redemption is cancelled and
    the offer's count goes down too. Event ``coupon.redemption_cancelled``. A use already cancelled
    is returned as it is (of concurrent cancels, one gives the use back). ``partner``: only the
    partner that used it (else ``coupon_use_not_found``)."""
    if partner is not None and coupon_use.partner_id != partner.pk:
        raise NotFound("No such use of this coupon", code="coupon_use_not_found")
    with transaction.atomic():
        Coupon.objects.select_for_update().filter(pk=coupon_use.coupon_id).values_list("pk", flat=True).get()
        use = CouponUse.objects.select_related("coupon", "member").get(pk=coupon_use.pk)
        if use.status == RedemptionState.CANCELLED:
            return use
        now = clock.now()
        CouponUse.objects.filter(pk=use.pk).update(status=RedemptionState.CANCELLED, cancelled_at=now)
        Coupon.objects.filter(pk=use.coupon_id, uses_count__gt=0).update(uses_count=F("uses_count") - 1)
        coupon = use.coupon
        if coupon.offer_id is not None and use.member_id is not None:
            offer_use = (
                OfferRedemption.objects.filter(
                    offer_id=coupon.offer_id, coupon=coupon, member_id=use.member_id, status=RedemptionState.COMPLETED
                )
                .order_by("-created_at", "-pk")
                .first()
            )
            if offer_use is not None:
                OfferRedemption.objects.filter(pk=offer_use.pk).update(
                    status=RedemptionState.CANCELLED, cancelled_at=now
                )
                Offer.objects.filter(pk=coupon.offer_id, redemptions_count__gt=0).update(
                    redemptions_count=F("redemptions_count") - 1
                )
        if actor is not None:
            audit_record(actor=actor, action="coupon_use.cancelled", target=use)
        outbox_record(
            event_type="coupon.redemption_cancelled",
            member=use.member or coupon.member,
            payload={
                "member_number": (use.member or coupon.member).member_number if (use.member or coupon.member) else None,
                "coupon_id": coupon.pk,
                "coupon_use_id": use.pk,
                "purchase_external_id": use.purchase_external_id,
                "partner_id": partner.pk if partner is not None else None,
            },
        )
    use.refresh_from_db()
    return use


def coupon_use_for_cancel(
    *, coupon: Coupon, partner: Partner, use_id: int | None = None, purchase_external_id: str = ""
) -> CouponUse:
    """The use of ``coupon`` by ``partner`` that a partner's cancel means: the one with ``use_id``,
    else the one for ``purchase_external_id``, else the latest completed one (when none is left,
    the latest cancelled one, so a repeated cancel answers the same). ``coupon_use_not_found``."""
    uses = CouponUse.objects.filter(coupon=coupon, partner=partner)
    if use_id is not None:
        uses = uses.filter(pk=use_id)
    elif purchase_external_id:
        uses = uses.filter(purchase_external_id=purchase_external_id)
    found = (
        uses.filter(status=RedemptionState.COMPLETED).order_by("-used_at", "-pk").first()
        or uses.order_by("-cancelled_at", "-pk").first()
    )
    if found is None:
        raise NotFound("This partner has no use of this coupon to cancel", code="coupon_use_not_found")
    return found


def coupon_cancel(*, coupon: Coupon, actor: Actor, reason: str = "") -> Coupon:
    """Staff cancel a coupon: it can no longer be used (uses already made stay). A reward's coupon
    is cancelled by cancelling the reward redemption (which refunds the points):
    ``coupon_of_reward``. Audited as ``coupon.cancelled``."""
    if RewardRedemption.objects.filter(coupon=coupon, status=RedemptionState.COMPLETED).exists():
        raise Conflict(
            "This coupon was bought with points: cancel the reward redemption instead", code="coupon_of_reward"
        )
    with transaction.atomic():
        now = clock.now()
        if Coupon.objects.filter(pk=coupon.pk, status=CouponStatus.ACTIVE).update(
            status=CouponStatus.CANCELLED, cancelled_at=now
        ):
            audit_record(
                actor=actor,
                action="coupon.cancelled",
                target=coupon,
                reason=reason,
                before={"status": CouponStatus.ACTIVE},
                after={"status": CouponStatus.CANCELLED},
            )
    coupon.refresh_from_db()
    return coupon
