"""Partner workflows of the offers app: a member redeems a reward at a partner, a partner checks,
uses and gives back a coupon. The same access rules as point redemptions
(``redemptions.redemption_record``): a partner the member enrolled with (or consented to share
with) may burn their points; any other only with the member's one-time ``redemption_code``; else
the member is not found. Each opens the outermost transaction (``durable=True``), so its effects
and its outbox events commit together."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

from django.db import transaction

from loyalty.activity.services.linking import partner_member_link
from loyalty.activity.services.purchases import _earning_member
from loyalty.core.errors import NotFound
from loyalty.ledger import services as ledger
from loyalty.partners.models import Partner
from loyalty.partners.selectors import partner_member_access
from members.models import Member
from members.services import redemption_code_consume
from offers.models import Coupon, CouponUse, RedemptionState, Reward, RewardRedemption
from offers.selectors.catalog import coupon_get, reward_for_partner
from offers.services.coupons import (
    CouponCheck,
    coupon_redeem,
    coupon_use_cancel,
    coupon_use_for_cancel,
    coupon_validate,
)
from offers.services.rewards import reward_redeem


def _scoped(partner: Partner | None, key: str | None) -> str:
    """The service's idempotency key for a partner's key (partners' keys never meet); no key:
    a fresh one (each call is a new redemption)."""
    if not key:
        return f"new:{uuid.uuid4().hex}"
    # hashed: a header key may be 255 characters, the stored one at most 200
    return f"partner:{partner.pk if partner else 0}:{hashlib.sha256(key.encode()).hexdigest()}"


def reward_redemption_record(
    *,
    partner: Partner | None,
    member_number: str,
    reward_id: int,
    idempotency_key: str | None = None,
    redemption_code: str | None = None,
    channel: str = "api",
) -> tuple[RewardRedemption, bool]:
    """Redeem a reward the partner honours for a member (``offers.services.rewards.reward_redeem``).
    Returns (reward redemption, created): the same ``idempotency_key`` from the same partner
    returns the first one, decided under the account lock, and uses no second redemption code.
    404 ``member_not_found`` when the partner may not burn and gave no code, ``reward_not_found``
    for a reward it does not honour."""
    member = _earning_member(member_number, None)
    may_burn = partner_member_access(partner=partner, member=member).burn
    if not may_burn and not redemption_code:
        raise NotFound("No member with this number", code="member_not_found")
    if partner is not None:
        reward = reward_for_partner(partner=partner, reward_id=reward_id)
    elif (reward := Reward.objects.filter(pk=reward_id).first()) is None:
        raise NotFound("No such reward", code="reward_not_found")
    key = _scoped(partner, idempotency_key)
    with (
        transaction.atomic(durable=True),
        ledger.member_account_locked(program=reward.program, member=member),
    ):
        before = RewardRedemption.objects.filter(idempotency_key=key).values_list("pk", flat=True).first()
        if not may_burn and before is None:
            redemption_code_consume(member=member, code=redemption_code)
        found = reward_redeem(member=member, reward=reward, channel=channel, idempotency_key=key, partner=partner)
        created = before is None
        if created and partner is not None:
            partner_member_link(partner=partner, member=member)
    return found, created


def _coupon_member(member_number: str | None) -> Member | None:
    """The member a partner names for a coupon (by card number, as for earning), or None."""
    return _earning_member(member_number, None) if member_number else None


def coupon_check(
    *, partner: Partner | None, code: str, member_number: str | None = None, basket_total: Decimal | None = None
) -> CouponCheck:
    """May the coupon be used at ``partner`` by the member on this basket, and what does it give
    (``coupon_validate``; reads only)."""
    return coupon_validate(code=code, partner=partner, member=_coupon_member(member_number), basket_total=basket_total)


def coupon_use_record(
    *,
    partner: Partner | None,
    code: str,
    idempotency_key: str | None = None,
    member_number: str | None = None,
    basket_total: Decimal | None = None,
    purchase_external_id: str = "",
) -> tuple[CouponUse, bool]:
    """Use a coupon at ``partner`` (``coupon_redeem``). Returns (use, created): the same
    ``idempotency_key`` from the same partner returns the first use."""
    member = _coupon_member(member_number)
    key = _scoped(partner, idempotency_key) if idempotency_key else None
    coupon = coupon_get(code=code, partner=partner)
    with transaction.atomic(durable=True):
        # "new or repeat" under the coupon's row lock (coupon_redeem takes it too): exact
        _coupon_lock(coupon)
        before = CouponUse.objects.filter(idempotency_key=key).exists() if key else False
        use = coupon_redeem(
            code=code,
            idempotency_key=key,
            partner=partner,
            member=member,
            basket_total=basket_total,
            purchase_external_id=purchase_external_id,
        )
    return use, not before


def coupon_use_cancel_record(
    *, partner: Partner, code: str, use_id: int | None = None, purchase_external_id: str = ""
) -> tuple[CouponUse, bool]:
    """A partner gives back its use of a coupon (the purchase was voided): the use named by
    ``use_id`` or ``purchase_external_id``, else its latest. Returns (use, cancelled now)."""
    coupon = coupon_get(code=code, partner=partner)
    use = coupon_use_for_cancel(
        coupon=coupon, partner=partner, use_id=use_id, purchase_external_id=purchase_external_id
    )
    with transaction.atomic(durable=True):
        _coupon_lock(coupon)
        was_open = CouponUse.objects.filter(pk=use.pk, status=RedemptionState.COMPLETED).exists()
        use = coupon_use_cancel(coupon_use=use, partner=partner)
    return use, was_open


def _coupon_lock(coupon: Coupon) -> None:
    """Lock the coupon's row for the transaction (its uses are decided one at a time)."""
    Coupon.objects.select_for_update().filter(pk=coupon.pk).values_list("pk", flat=True).get()
