from __future__ import annotations

from django.db import transaction

from loyalty.activity.services.linking import partner_member_link
from loyalty.activity.services.purchases import _earning_member
from loyalty.core.errors import Conflict, NotFound
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Redemption, RedemptionStatus
from loyalty.partners.models import Partner
from loyalty.partners.selectors import partner_member_access
from loyalty.partners.services import outbox_record
from members.services import redemption_code_consume
from offers.models import RewardRedemption


def redemption_record(
    *,
    partner: Partner | None,
    member_number: str,
    points: int,
    external_id: str | None,
    description: str = "",
    program_name: str | None = None,
    redemption_code: str | None = None,
) -> tuple[Redemption, bool]:
    """Burn points at a partner. Returns (redemption, created); the same external_id with the
    same member and points returns the first one, other content is ``duplicate_external_id``.

    "New or repeat" is decided under the account lock: concurrent copies of one redemption wait
    for the first to commit, then find it, so there is one burn, one event and one ``created``.

    A partner the member enrolled with (or consented to share with) may burn; any other only with
    a one-time ``redemption_code`` the member holds, used up in this transaction; without either
    the member is not found."""
    member = _earning_member(member_number, None)
    may_burn = partner_member_access(partner=partner, member=member).burn
    if not may_burn and not redemption_code:
        raise NotFound("No member with this number", code="member_not_found")
    program = (
        ledger_selectors.partner_program(partner=partner, name=program_name)
        if partner
        else ledger_selectors.program_default()
    )
    with transaction.atomic(durable=True), ledger.member_account_locked(member=member, program=program) as locked:
        account = locked.account
        before = (
            Redemption.objects.filter(partner=partner, external_id=external_id).values_list("pk", flat=True).first()
            if external_id
            else None
        )
        if not may_burn and before is None:
            redemption_code_consume(member=member, code=redemption_code)
        redemption = ledger.points_redeem(
            account=account, points=points, description=description, partner=partner, external_id=external_id
        )
        created = before is None
        if created:
            partner_member_link(partner=partner, member=member)
            outbox_record(
                event_type="points.redeemed",
                member=member,
                payload={
                    "member_number": member.member_number,
                    "points": points,
                    "redemption_id": redemption.pk,
                    "external_id": external_id,
                    "partner_id": getattr(partner, "pk", None),
                },
            )
    return redemption, created


def redemption_cancel(*, partner: Partner | None, redemption_id: int) -> tuple[Redemption, bool]:
    """Cancel a partner's redemption: the points go back to the exact lots they came from.
    Returns (redemption, cancelled now): whether this call cancelled it is read under the
    account lock, so of concurrent cancels exactly one refunds and records the event."""
    redemption = Redemption.objects.filter(pk=redemption_id, partner=partner).select_related("account__member").first()
    if redemption is None:
        raise NotFound("No such redemption", code="redemption_not_found")
    if RewardRedemption.objects.filter(redemption=redemption).exists():
        # its points bought a reward: refunding them here would leave the reward redeemed, its coupon
        # usable and its stock taken (written with it, so no later reward redemption can appear)
        raise Conflict(
            "These points paid for a reward: cancel the reward redemption instead",
            code="redemption_of_reward",
        )
    with transaction.atomic(durable=True), ledger.account_locked(account=redemption.account):
        # read under the lock: of concurrent cancels exactly one sees the redemption still open
        was_open = (
            Redemption.objects.filter(pk=redemption.pk).values_list("status", flat=True).get()
            == RedemptionStatus.COMPLETED
        )
        ledger.points_refund(redemption=redemption)
        if was_open:
            outbox_record(
                event_type="points.reversed",
                member=redemption.account.member,
                payload={
                    "member_number": redemption.account.member.member_number,
                    "redemption_id": redemption.pk,
                    "points_refunded": redemption.points,
                    "partner_id": getattr(partner, "pk", None),
                },
            )
    redemption.refresh_from_db()
    return redemption, was_open
