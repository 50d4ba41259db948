"""Partner API v1: rewards and coupons. Thin views that parse, call one workflow or selector,
and render; errors are problem+json with the codes of ``offers.services`` (docs/domain.md)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.activity import services as activity
from loyalty.api import serializers_offers as so
from loyalty.api.views import COMMON_ERRORS, IDEMPOTENCY_HEADER, WriteView, errors, request_partner
from offers.models import Coupon, CouponUse, Reward, RewardRedemption
from offers.selectors.catalog import rewards_for_partner


def _time(value):
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _money(value):
    return str(value) if value is not None else None


def _reward_body(reward: Reward, partner_id: int) -> dict:
    return {
        "id": reward.pk,
        "name": reward.name,
        "description": reward.description,
        "kind": reward.kind,
        "points_cost": reward.points_cost,
        "value": _money(reward.value),
        "sku": reward.sku,
        "stock": reward.stock,
        "per_member_limit": reward.per_member_limit,
        "valid_from": _time(reward.valid_from),
        "valid_until": _time(reward.valid_until),
        "partner_only": reward.partner_id == partner_id,
        "image": reward.image.url if reward.image else None,
    }


class RewardsView(APIView):
    @extend_schema(
        operation_id="rewards_list",
        responses={200: so.RewardSerializer(many=True), **errors(*COMMON_ERRORS)},
        description="The active rewards this partner honours: those of its program bound to it or to no partner.",
    )
    def get(self, request):
        partner = request_partner(request)
        return Response([_reward_body(r, partner.pk) for r in rewards_for_partner(partner=partner)])


def _reward_redemption_body(found: RewardRedemption) -> dict:
    coupon = found.coupon
    return {
        "id": found.pk,
        "reward_id": found.reward_id,
        "member_number": found.member.member_number,
        "points": found.points,
        "status": found.status,
        "channel": found.channel,
        "created_at": _time(found.created_at),
        "coupon": {"code": coupon.code, "expires_at": _time(coupon.expires_at), "max_uses": coupon.max_uses}
        if coupon is not None
        else None,
    }


@extend_schema_view(
    post=extend_schema(
        operation_id="rewards_redeem",
        request=so.RewardRedeemInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: OpenApiResponse(so.RewardRedemptionSerializer, description="Redeemed: points debited, coupon issued"),
            200: OpenApiResponse(so.RewardRedemptionSerializer, description="The same Idempotency-Key again"),
            **errors(*COMMON_ERRORS, 404, 409, 422),
        },
        description=(
            "Redeem a reward for a member: the points are debited (expiring first), one item taken from stock, "
            "and a coupon issued to the member (its code is in the answer, and only there). Same access rules as "
            "point redemptions: a partner the member enrolled with or consented to share with, else the member's "
            "one-time `redemption_code`; else 404 `member_not_found`. A reward this partner does not honour is 404 "
            "`reward_not_found`. Refusals: 409 `out_of_stock`, `insufficient_points`, "
            "`reward_member_limit_reached`, `member_inactive`; 422 eligibility codes (`reward_not_started`, "
            "`reward_ended`, `reward_inactive`, `reward_tier_excluded`, `reward_segment_excluded`, "
            "`reward_exclusive_tier`, `reward_early_access_only`, `below_min_redeem`). Without an Idempotency-Key "
            "every call is a new redemption."
        ),
    )
)
class RewardRedeemView(WriteView):
    in_serializer = so.RewardRedeemInSerializer

    def handle(self, request, data, member_number: str, pk: int):
        found, created = activity.reward_redemption_record(
            partner=request_partner(request),
            member_number=member_number,
            reward_id=pk,
            idempotency_key=request.headers.get("Idempotency-Key"),
            redemption_code=data.get("redemption_code"),
        )
        found = RewardRedemption.objects.select_related("member", "coupon").get(pk=found.pk)
        return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), _reward_redemption_body(found)


COUPON_REFUSALS = (
    "404 `coupon_not_found` (unknown code, or a coupon this partner may not see: of another program, of a reward "
    "another partner honours, of an offer that does not apply here, bound to a member this partner may not read), "
    "`member_not_found`; 409 `coupon_cancelled`, `coupon_not_started`, `coupon_expired`, `coupon_exhausted`, "
    "`coupon_member_mismatch`, `coupon_offer_ended`, `coupon_min_spend_not_met`, `member_inactive`; 422 "
    "`coupon_member_required` (a coupon of an offer: say which member uses it)."
)


def _benefit_body(benefit) -> dict:
    return {
        "kind": benefit.kind,
        "value": _money(benefit.value),
        "sku": benefit.sku,
        "discount": _money(benefit.discount),
    }


@extend_schema_view(
    post=extend_schema(
        operation_id="coupons_validate",
        request=so.CouponInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={200: so.CouponCheckSerializer, **errors(*COMMON_ERRORS, 404, 409, 422)},
        description="Is the coupon usable now, here, by this member, on this basket, and what does it give? "
        "Changes nothing. Refusals: " + COUPON_REFUSALS,
    )
)
class CouponValidateView(WriteView):
    in_serializer = so.CouponInSerializer

    def handle(self, request, data):
        check = activity.coupon_check(
            partner=request_partner(request),
            code=data["code"],
            member_number=data.get("member_number"),
            basket_total=data.get("basket_total"),
        )
        coupon = check.coupon
        return status.HTTP_200_OK, {
            "code": coupon.code,
            "valid": True,
            "uses_left": check.uses_left,
            "expires_at": _time(coupon.expires_at),
            "benefit": _benefit_body(check.benefit),
        }


def _use_body(use: CouponUse) -> dict:
    coupon = Coupon.objects.filter(pk=use.coupon_id).only("code", "max_uses", "uses_count").get()
    member = use.member
    return {
        "use_id": use.pk,
        "code": coupon.code,
        "status": use.status,
        "member_number": member.member_number if member is not None else None,
        "purchase_external_id": use.purchase_external_id,
        "basket_total": _money(use.basket_total),
        "discount": _money(use.discount),
        "uses_left": coupon.max_uses - coupon.uses_count,
        "used_at": _time(use.used_at),
        "cancelled_at": _time(use.cancelled_at),
    }


@extend_schema_view(
    post=extend_schema(
        operation_id="coupons_redeem",
        request=so.CouponRedeemInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: OpenApiResponse(so.CouponUseSerializer, description="Used: one use counted"),
            200: OpenApiResponse(so.CouponUseSerializer, description="The same Idempotency-Key again"),
            **errors(*COMMON_ERRORS, 404, 409, 422),
        },
        description="Use the coupon once (the checks of validate, then one use counted; for a coupon of an offer, "
        "one redemption of the offer within its limit: 409 `offer_exhausted`). Concurrent uses never pass the "
        "coupon's uses: the others get 409 `coupon_exhausted`. Refusals: " + COUPON_REFUSALS,
    )
)
class CouponRedeemView(WriteView):
    in_serializer = so.CouponRedeemInSerializer

    def handle(self, request, data):
        use, created = activity.coupon_use_record(
            partner=request_partner(request),
            code=data["code"],
            idempotency_key=request.headers.get("Idempotency-Key"),
            member_number=data.get("member_number"),
            basket_total=data.get("basket_total"),
            purchase_external_id=data.get("purchase_external_id", ""),
        )
        return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), _use_body(use)


@extend_schema_view(
    post=extend_schema(
        operation_id="coupons_cancel",
        request=so.CouponCancelInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: OpenApiResponse(so.CouponUseSerializer, description="The use was given back by this request"),
            200: OpenApiResponse(so.CouponUseSerializer, description="Already given back (a repeat)"),
            **errors(*COMMON_ERRORS, 404),
        },
        description=(
            "Give back this partner's use of the coupon (the purchase it was used on was voided): the use is "
            "cancelled and the coupon can be used once more (for a coupon of an offer, the offer's redemption is "
            "cancelled too). Which use: `use_id`, else the one for `purchase_external_id`, else this partner's "
            "latest; a repeat answers 200 with the use already given back. A partner never cancels the coupon "
            "itself (staff do, in the admin) nor another partner's use: 404 `coupon_not_found`, "
            "`coupon_use_not_found`."
        ),
    )
)
class CouponCancelView(WriteView):
    in_serializer = so.CouponCancelInSerializer

    def handle(self, request, data, code: str):
        use, cancelled = activity.coupon_use_cancel_record(
            partner=request_partner(request),
            code=code,
            use_id=data.get("use_id"),
            purchase_external_id=data.get("purchase_external_id", ""),
        )
        return (status.HTTP_201_CREATED if cancelled else status.HTTP_200_OK), _use_body(use)
