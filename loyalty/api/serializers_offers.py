"""Request and response shapes of the rewards and coupons endpoints (validation only)."""

from __future__ import annotations

from rest_framework import serializers

from loyalty.api.serializers import MONEY
from offers.models import RewardKind

CODE_MAX = 48


class RewardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    points_cost = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    sku = serializers.CharField()
    stock = serializers.IntegerField(allow_null=True, help_text="Items left; null: unlimited")
    per_member_limit = serializers.IntegerField(allow_null=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    partner_only = serializers.BooleanField(help_text="Only this partner honours it (else any partner of the program)")
    image = serializers.CharField(allow_null=True, help_text="URL of the image (under MEDIA_URL), or null")


class RewardRedeemInSerializer(serializers.Serializer):
    redemption_code = serializers.CharField(
        max_length=40,
        required=False,
        help_text="One-time code the member shows; needed where the member did not enroll with this partner "
        "nor consent to sharing with partners",
    )


class IssuedCouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    max_uses = serializers.IntegerField()


class RewardRedemptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reward_id = serializers.IntegerField()
    member_number = serializers.CharField()
    points = serializers.IntegerField()
    status = serializers.CharField()
    channel = serializers.CharField()
    created_at = serializers.DateTimeField()
    coupon = IssuedCouponSerializer(allow_null=True)


class CouponInSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=CODE_MAX)
    member_number = serializers.CharField(
        max_length=20,
        required=False,
        help_text="The member using it: required for a coupon bound to a member or part of an offer",
    )
    basket_total = serializers.DecimalField(
        **MONEY, required=False, help_text="Basket total the discount is computed on"
    )


class CouponRedeemInSerializer(CouponInSerializer):
    purchase_external_id = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="The partner's id of the purchase"
    )


class CouponBenefitSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["amount", "percent", "free_item", "voucher", "experience", "donation", "none"],
        help_text="amount / percent: a discount; free_item: the SKU given; voucher: a partner voucher worth value",
    )
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    sku = serializers.CharField()
    discount = serializers.DecimalField(
        max_digits=12, decimal_places=2, allow_null=True, help_text="Money off basket_total (when given)"
    )


class CouponCheckSerializer(serializers.Serializer):
    code = serializers.CharField()
    valid = serializers.BooleanField()
    uses_left = serializers.IntegerField()
    expires_at = serializers.DateTimeField(allow_null=True)
    benefit = CouponBenefitSerializer()


class CouponUseSerializer(serializers.Serializer):
    use_id = serializers.IntegerField()
    code = serializers.CharField()
    status = serializers.CharField(help_text="completed, or cancelled once given back")
    member_number = serializers.CharField(allow_null=True)
    purchase_external_id = serializers.CharField()
    basket_total = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    discount = serializers.DecimalField(max_digits=12, decimal_places=2)
    uses_left = serializers.IntegerField()
    used_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)


class CouponCancelInSerializer(serializers.Serializer):
    use_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    purchase_external_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
