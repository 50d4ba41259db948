"""Reward redemption and its cancel: points (ledger, FEFO), stock, the coupon, the events.

Everything a redemption changes happens in one transaction under the member's account lock
(``ledger.member_account_locked``): eligibility and the per-member limit are read under it, so two
redemptions of one member are one after the other. Stock is shared between members: it is taken
by a conditional UPDATE (``stock = stock - 1 WHERE stock > 0``), so concurrent redemptions of the
last items can never take more than there is. Locks are always taken in the same order (the
account, then the reward row), by redemptions and cancels alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F

from loyalty.core import clock
from loyalty.core.errors import Conflict, NotFound, ValidationFailed
from loyalty.core.services import audit_record, model_delete_audited, model_save_audited
from loyalty.ledger import services as ledger
from loyalty.partners.services import outbox_record
from offers.models import Coupon, CouponSource, CouponStatus, RedemptionState, Reward, RewardRedemption
from offers.selectors.eligibility import early_access_reward_ids, member_facts, offers_live, reward_eligibility
from offers.services.coupons import coupon_issue

if TYPE_CHECKING:
    from loyalty.core.services import Actor
    from loyalty.partners.models import Partner
    from members.models import Member

IDEMPOTENCY_KEY_MAX = 200


def _reward_fresh(reward: Reward) -> Reward:
    """The reward as stored now, with what eligibility reads (tiers and segments) prefetched."""
    found = (
        Reward.objects.filter(pk=reward.pk)
        .select_related("program")
        .prefetch_related("tiers", "segments_include", "segments_exclude")
        .first()
    )
    if found is None:
        raise NotFound("No such reward", code="reward_not_found")
    return found


def _existing(idempotency_key: str, *, member: Member, reward: Reward) -> RewardRedemption | None:
    found = RewardRedemption.objects.filter(idempotency_key=idempotency_key).select_related("coupon").first()
    if found is not None and (found.member_id != member.pk or found.reward_id != reward.pk):
        raise Conflict("This idempotency key was used for another redemption", code="idempotency_key_reused")
    return found


def reward_redeem(
    *,
    member: Member,
    reward: Reward,
    channel: str,
    idempotency_key: str,
    partner: Partner | None = None,
    actor: Actor = None,
) -> RewardRedemption:
    """Redeem ``reward`` for ``member``: debit its points (FEFO, through the ledger), take one
    from stock, issue the coupon, record the redemption and the events ``reward.redeemed`` and
    ``coupon.issued``. The same ``idempotency_key`` again returns the first redemption (nothing is
    debited twice); with another member or reward it is ``idempotency_key_reused``.

    Refusals, each changing nothing: the eligibility codes (``reward_eligibility``: 422),
    ``reward_member_limit_reached`` (409), ``insufficient_points`` (409, from the ledger),
    ``out_of_stock`` (409). ``partner``: where it is redeemed (a reward another partner honours
    is ``reward_partner_excluded``)."""
    if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed(
            f"An idempotency key of 1 to {IDEMPOTENCY_KEY_MAX} characters is required", code="invalid_idempotency_key"
        )
    reward = _reward_fresh(reward)
    program = reward.program
    with transaction.atomic(), ledger.member_account_locked(program=program, member=member) as locked:
        if (found := _existing(idempotency_key, member=member, reward=reward)) is not None:
            return found
        now = clock.now()
        offers = offers_live(program=program, now=now)
        facts = member_facts(member=member, program=program, offers=offers, personalization=False)
        answer = reward_eligibility(
            reward=reward,
            facts=facts,
            now=now,
            partner_id=partner.pk if partner is not None else None,
            early_access=early_access_reward_ids(offers=offers, facts=facts, now=now),
        )
        if not answer:
            # an inactive member is a state, as everywhere in the API (409); the reward's rules are 422
            error = Conflict if answer.code == "member_inactive" else ValidationFailed
            raise error(answer.reason, code=answer.code)
        if reward.per_member_limit is not None:
            # counted under the account lock: this member's other redemptions wait for it
            taken = RewardRedemption.objects.filter(
                member=member, reward=reward, status=RedemptionState.COMPLETED
            ).count()
            if taken >= reward.per_member_limit:
                raise Conflict(
                    f"You have redeemed this reward {taken} times, as often as it allows",
                    code="reward_member_limit_reached",
                    extra={"per_member_limit": reward.per_member_limit},
                )
        redemption = ledger.points_redeem(
            account=locked.account,
            points=reward.points_cost,
            description=f"Reward: {reward.name}"[:255],
            partner=partner,
            actor=actor,
        )
        # stock after the debit: a member short of points never holds the reward row's lock
        if reward.stock is not None and not Reward.objects.filter(pk=reward.pk, stock__gt=0).update(
            stock=F("stock") - 1
        ):
            raise Conflict("This reward is out of stock", code="out_of_stock")
        coupon = coupon_issue(
            program=program,
            source=CouponSource.REWARD,
            member=member,
            reward=reward,
            valid_days=reward.coupon_valid_days,
        )
        try:
            with transaction.atomic():
                reward_redemption = RewardRedemption.objects.create(
                    reward=reward,
                    member=member,
                    redemption=redemption,
                    coupon=coupon,
                    partner=partner,
                    channel=channel,
                    points=reward.points_cost,
                    idempotency_key=idempotency_key,
                    created_at=now,
                )
        except IntegrityError:
            # the same key, at the same moment, for another member: refuse (this one rolls back whole)
            raise Conflict(
                "This idempotency key was used for another redemption", code="idempotency_key_reused"
            ) from None
        partner_id = partner.pk if partner is not None else None
        outbox_record(
            event_type="reward.redeemed",
            member=member,
            payload={
                "member_number": member.member_number,
                "reward_id": reward.pk,
                "reward_redemption_id": reward_redemption.pk,
                "points": reward.points_cost,
                "coupon_id": coupon.pk,
                "channel": channel,
                "partner_id": partner_id,
            },
        )
        outbox_record(
            event_type="coupon.issued",
            member=member,
            payload={
                "member_number": member.member_number,
                "coupon_id": coupon.pk,
                "reward_id": reward.pk,
                "source": CouponSource.REWARD.value,
                "expires_at": coupon.expires_at,
                "partner_id": partner_id,
            },
        )
    return reward_redemption


def reward_redemption_cancel(
    *, reward_redemption: RewardRedemption, actor: Actor = None, partner: Partner | None = None, reason: str = ""
) -> RewardRedemption:
    """Cancel a reward redemption: the points go back to the exact lots they came from (ledger
        ``points_refund``), the item back to stock, the coupon is cancelled; event ``reward.cancelled``.
        Refused with ``coupon_already_used`` (409) when the coupon was used. Cancelling a cancelled
        redemption changes nothing (of concurrent cancels, one refunds). ``partner``: only the partner
        that redeemed it may cancel it (else ``reward_redemption_not_found``). Staff (``actor``) are
    audited as ``reward_redemption.cancelled`` with their ``reason``."""
    if partner is not None and reward_redemption.partner_id != partner.pk:
        raise NotFound("No such reward redemption", code="reward_redemption_not_found")
    member = reward_redemption.member
    program = reward_redemption.reward.program
    with transaction.atomic(), ledger.member_account_locked(program=program, member=member):
        current = RewardRedemption.objects.select_related("redemption", "coupon").get(pk=reward_redemption.pk)
        if current.status == RedemptionState.CANCELLED:
            return current
        now = clock.now()
        if current.coupon_id is not None:
            cancelled = Coupon.objects.filter(pk=current.coupon_id, uses_count=0, status=CouponStatus.ACTIVE).update(
                status=CouponStatus.CANCELLED, cancelled_at=now
            )
            # Not cancelled here: used (refuse), or cancelled by staff already (refund all the same).
            # A use committed first is seen here; a use after this UPDATE finds the coupon cancelled.
            if not cancelled and Coupon.objects.filter(pk=current.coupon_id, uses_count__gt=0).exists():
                raise Conflict(
                    "The coupon of this redemption was used: it cannot be cancelled", code="coupon_already_used"
                )
        ledger.points_refund(redemption=current.redemption, reason="reward redemption cancelled", actor=actor)
        Reward.objects.filter(pk=current.reward_id, stock__isnull=False).update(stock=F("stock") + 1)
        RewardRedemption.objects.filter(pk=current.pk).update(status=RedemptionState.CANCELLED, cancelled_at=now)
        if actor is not None:
            audit_record(
                actor=actor,
                action="reward_redemption.cancelled",
                target=current,
                reason=reason,
                before={"status": RedemptionState.COMPLETED},
                after={"status": RedemptionState.CANCELLED, "points_refunded": current.points},
            )
        outbox_record(
            event_type="reward.cancelled",
            member=member,
            payload={
                "member_number": member.member_number,
                "reward_id": current.reward_id,
                "reward_redemption_id": current.pk,
                "points_refunded": current.points,
                "coupon_id": current.coupon_id,
                "partner_id": partner.pk if partner is not None else None,
            },
        )
    current.refresh_from_db()
    return current


# What an audit row of a reward shows (its many-to-many eligibility is recorded by ``reward_rules_record``).
REWARD_AUDIT_FIELDS = (
    "program",
    "name",
    "kind",
    "points_cost",
    "value",
    "sku",
    "cost_to_business",
    "stock",
    "per_member_limit",
    "valid_from",
    "valid_until",
    "early_access_from",
    "exclusive",
    "partner",
    "coupon_valid_days",
    "is_active",
)


def reward_save(*, reward: Reward, actor: Actor, created: bool, reason: str = "") -> Reward:
    """Staff create or change a reward (the admin): timestamps set, audited as ``reward.created`` /
    ``reward.changed`` with the fields before and after."""
    now = clock.now()
    if created:
        reward.created_at = now
    reward.updated_at = now
    return model_save_audited(
        instance=reward, actor=actor, created=created, fields=REWARD_AUDIT_FIELDS, action="reward", reason=reason
    )


def reward_rules_record(*, reward: Reward, actor: Actor, before: dict[str, list[int]] | None) -> None:
    """Audit a change of who may redeem ``reward`` (tiers, segments included and excluded), saved
    by the admin's form after the reward itself: ``reward.eligibility_changed`` when they differ."""
    after = reward_rules(reward=reward)
    if before is None or before != after:
        audit_record(actor=actor, action="reward.eligibility_changed", target=reward, before=before, after=after)


def reward_rules(*, reward: Reward) -> dict[str, list[int]]:
    return {
        name: sorted(getattr(reward, name).values_list("pk", flat=True))
        for name in ("tiers", "segments_include", "segments_exclude")
    }


def reward_delete(*, reward: Reward, actor: Actor, reason: str = "") -> None:
    """Staff delete a reward nobody redeemed (one with redemptions or coupons is kept by the
    database: ``reward_in_use``; make it inactive instead). Audited as ``reward.deleted``."""
    if RewardRedemption.objects.filter(reward=reward).exists() or Coupon.objects.filter(reward=reward).exists():
        raise Conflict("This reward was redeemed: make it inactive instead", code="reward_in_use")
    model_delete_audited(instance=reward, actor=actor, fields=REWARD_AUDIT_FIELDS, action="reward", reason=reason)
