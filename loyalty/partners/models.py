from decimal import Decimal

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class PartnerKind(models.TextChoices):
    OWN_STORE = "own_store", "Own store"
    COALITION = "coalition", "Coalition partner"


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Partner(models.Model):
    """A business where members earn and burn points (own store, franchisee, coalition brand)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=12, choices=PartnerKind.choices, default=PartnerKind.OWN_STORE)
    status = models.CharField(max_length=10, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE)
    earn_multiplier = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1"))
    cost_per_point = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0"), help_text="What the partner pays per point issued at it"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(earn_multiplier__gte=0), name="partner_multiplier_non_negative")
        ]

    def __str__(self) -> str:
        return self.name


class OutboxEvent(models.Model):
    """An event for the outside world (webhooks, messages), written in the transaction of the
    change it reports. A later job delivers the rows after commit and sets ``published_at``."""

    event_type = models.CharField(max_length=100, db_index=True)
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(published_at__isnull=True), name="outbox_unpublished"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"


class PartnerAPIKey(AbstractAPIKey):
    """A partner's API key (stored hashed, shown once; prefix lookup; expiry; revocation)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    scopes = models.JSONField(default=list, help_text='Any of "read", "write"')
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "Partner API key"
        verbose_name_plural = "Partner API keys"


class LinkVia(models.TextChoices):
    ENROLLED = "enrolled", "Enrolled through the partner"
    CARD = "card", "Card presented at the partner"


class PartnerMember(models.Model):
    """A partner sees a member only when linked: enrolled there, or the card was presented."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="member_links")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="partner_links")
    via = models.CharField(max_length=10, choices=LinkVia.choices)
    linked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "member"], name="partner_member_once")]

    def __str__(self) -> str:
        return f"{self.partner_id}:{self.member_id}"


WEBHOOK_EVENT_TYPES = (
    "member.enrolled",
    "points.earned",
    "points.redeemed",
    "points.reversed",
    "points.expiring",
    "points.expired",
    "tier.upgraded",
    "tier.downgraded",
    # offers app: rewards and coupons (payloads carry ids and numbers, never a coupon code)
    "reward.redeemed",
    "reward.cancelled",
    "coupon.issued",
    "coupon.redeemed",
    "coupon.redemption_cancelled",
    # engagement: referrals and surveys (ids and scores, never a survey's free text)
    "referral.qualified",
    "referral.reversed",
    "survey.completed",
)


class WebhookEndpoint(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list)
    secret_encrypted = models.CharField(
        max_length=400,
        help_text="Standard Webhooks signing secret (whsec_...), encrypted with WEBHOOK_SECRETS_KEY (Fernet)",
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one endpoint; retried with exponential backoff."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_endpoint")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event.event_type} -> {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-attempted_at"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error}"
