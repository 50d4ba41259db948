"""Request and response shapes of the partner API (validation only; no business rules)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.partners.models import WEBHOOK_EVENT_TYPES
from members.models import ConsentChannel, ConsentPurpose
from offers.conditions import PURCHASE_CHANNELS

# Money fits its columns (DecimalField(max_digits=14, decimal_places=2)) with room for the sum
# of 1,000 lines: at most 9,999,999,999.99 each.
MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0")}
MAX_LINES = 1000
MAX_CONSENTS = 50


class OccurredAtField(serializers.DateTimeField):
    """When something happened: an ISO 8601 time with its zone (``Z`` or ``+02:00``; a naive
    time is 422 ``occurred_at_without_time_zone``), not older than ``PURCHASE_MAX_AGE_DAYS``
    (``occurred_at_too_old``) nor later than now plus ``PURCHASE_MAX_CLOCK_SKEW_SECONDS``
    (``occurred_at_in_future``)."""

    def _refuse(self, code: str, message: str) -> ValidationFailed:
        return ValidationFailed(message, code=code, fields={self.field_name: [message]})

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # DRF reports the bad format below
            if parsed is not None and parsed.tzinfo is None:
                raise self._refuse("occurred_at_without_time_zone", "Give the time zone (e.g. Z or +02:00)")
        when = super().to_internal_value(value)
        now = clock.now()
        if when < now - dt.timedelta(days=settings.PURCHASE_MAX_AGE_DAYS):
            raise self._refuse("occurred_at_too_old", f"Must be within the last {settings.PURCHASE_MAX_AGE_DAYS} days")
        if when > now + dt.timedelta(seconds=settings.PURCHASE_MAX_CLOCK_SKEW_SECONDS):
            raise self._refuse("occurred_at_in_future", "Must not be in the future")
        return when


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable error code")
    errors = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="Per field: a list of messages, or for a nested field its own fields' (a list's by position)",
    )


class ConsentInSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    channel = serializers.ChoiceField(choices=ConsentChannel.choices, required=False, default="", allow_blank=True)
    granted = serializers.BooleanField()


class EnrollSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_null=True, allow_blank=True, max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")
    birth_date = serializers.DateField(required=False, allow_null=True)
    postal_code = serializers.CharField(required=False, allow_blank=True, max_length=20, default="")
    consents = ConsentInSerializer(many=True, required=False, default=list, max_length=MAX_CONSENTS)
    consent_wording_version = serializers.CharField(required=False, allow_blank=True, max_length=40, default="")
    referral_code = serializers.CharField(
        required=False, allow_blank=True, max_length=40, default="", help_text="A member's referral code (a friend)"
    )


class MemberSerializer(serializers.Serializer):
    member_number = serializers.CharField()
    email = serializers.EmailField(allow_null=True)
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    phone = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    postal_code = serializers.CharField()
    status = serializers.CharField()
    enrolled_at = serializers.DateTimeField()


class ExpiringSerializer(serializers.Serializer):
    date = serializers.DateField()
    points = serializers.IntegerField()


class BalanceSerializer(serializers.Serializer):
    member_number = serializers.CharField()
    program = serializers.CharField()
    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    debt = serializers.IntegerField()
    expiring = ExpiringSerializer(many=True)
    tier = serializers.CharField(allow_null=True)
    tier_progress = serializers.DictField()


class EntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    reason = serializers.CharField(source="transaction.reason")
    created_at = serializers.DateTimeField()


class LineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"), default=1)
    unit_price = serializers.DecimalField(**MONEY, required=False, default=0)
    amount = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(**MONEY, required=False, default=0)


class PurchaseInSerializer(serializers.Serializer):
    member_number = serializers.CharField(max_length=20)
    external_id = serializers.CharField(max_length=100)
    occurred_at = OccurredAtField()
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)
    total = serializers.DecimalField(**MONEY)
    tax = serializers.DecimalField(**MONEY, required=False, default=0)
    discount = serializers.DecimalField(**MONEY, required=False, default=0)
    store = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    lines = LineSerializer(many=True, allow_empty=False, min_length=1, max_length=MAX_LINES)
    program = serializers.CharField(max_length=100, required=False)
    channel = serializers.ChoiceField(
        choices=list(PURCHASE_CHANNELS.items()),
        required=False,
        default="store",
        help_text="How the purchase was made (offers with a channel condition read it)",
    )
    card_fingerprint = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="The payment card's fingerprint from the payment provider (stored only as a keyed hash)",
    )

    def validate(self, attrs):
        """The figures agree: ``total`` is the lines' amounts less their discounts, less the
        purchase's ``discount`` (422 ``total_mismatch``); ``tax`` is part of it (422
        ``tax_exceeds_total``)."""
        lines_net = sum((line["amount"] - line["discount"] for line in attrs["lines"]), Decimal("0"))
        expected = lines_net - attrs["discount"]
        if attrs["total"] != expected:
            raise ValidationFailed(
                f"total {attrs['total']} is not the lines' amounts less discounts ({expected})",
                code="total_mismatch",
                fields={"total": [f"Expected {expected}."]},
            )
        if attrs["tax"] > attrs["total"]:
            raise ValidationFailed(
                "tax is more than the total", code="tax_exceeds_total", fields={"tax": ["At most the total."]}
            )
        return attrs


class ExplanationSerializer(serializers.Serializer):
    rule = serializers.CharField()
    detail = serializers.CharField(required=False)
    points = serializers.CharField(required=False)


class PurchaseOutSerializer(serializers.Serializer):
    purchase_id = serializers.IntegerField()
    external_id = serializers.CharField()
    member_number = serializers.CharField()
    points_earned = serializers.IntegerField()
    points_pending_until = serializers.DateTimeField(allow_null=True)
    explanation = ExplanationSerializer(many=True)


class ReturnLineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"))


class ReturnInSerializer(serializers.Serializer):
    purchase_external_id = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=100)
    lines = ReturnLineSerializer(many=True, required=False, allow_empty=False, min_length=1, max_length=MAX_LINES)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), required=False)
    occurred_at = OccurredAtField(required=False)

    def validate(self, attrs):
        if ("lines" in attrs) == ("amount" in attrs):
            raise serializers.ValidationError("Give either lines or amount")
        return attrs


class ReturnOutSerializer(serializers.Serializer):
    return_id = serializers.IntegerField()
    external_id = serializers.CharField()
    purchase_external_id = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    points_reversed = serializers.IntegerField()
    points_written_off = serializers.IntegerField()


class RedemptionInSerializer(serializers.Serializer):
    member_number = serializers.CharField(max_length=20)
    points = serializers.IntegerField(min_value=1, max_value=10**12)
    external_id = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    program = serializers.CharField(max_length=100, required=False)
    redemption_code = serializers.CharField(
        max_length=40,
        required=False,
        help_text="One-time code the member shows; needed where the member did not enroll with this partner "
        "nor consent to sharing with partners",
    )


class RedemptionOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    member_number = serializers.CharField()
    points = serializers.IntegerField()
    status = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class EventInSerializer(serializers.Serializer):
    member_number = serializers.CharField(max_length=20)
    event_type = serializers.SlugField(max_length=50)
    external_id = serializers.CharField(max_length=100, required=False)
    occurred_at = OccurredAtField(required=False)
    community_event_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="event_attended: the community event"
    )


class EventOutSerializer(serializers.Serializer):
    event_id = serializers.IntegerField()
    event_type = serializers.CharField()
    member_number = serializers.CharField()
    points = serializers.IntegerField()
    note = serializers.CharField()


@extend_schema_field({"type": "string", "format": "uri", "maxLength": 500})
class WebhookURLField(serializers.CharField):
    """Any text: whether it is a usable webhook URL (https, a host resolving only to public
    addresses) is decided by ``webhook_url_check``, which answers 422 ``invalid_webhook_url``."""


class WebhookInSerializer(serializers.Serializer):
    url = WebhookURLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES),
        allow_empty=False,
        min_length=1,
        max_length=len(WEBHOOK_EVENT_TYPES),
    )


class WebhookOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookOutSerializer):
    secret = serializers.CharField(help_text="Signing secret, shown only once")
