"""Rewards catalog, offers (a condition plus a benefit), coupons and what members did with them.

Counters that limits are checked against (``Reward.stock``, ``Offer.redemptions_count``,
``Offer.points_issued``, ``Coupon.uses_count``) are changed only by conditional UPDATEs in the
services (``... WHERE counter + n <= limit``), so concurrent callers can never pass a limit; the
check constraints below are the database's last word on it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper


class RewardKind(models.TextChoices):
    AMOUNT_COUPON = "amount_coupon", "Amount discount coupon"
    PERCENT_COUPON = "percent_coupon", "Percent discount coupon"
    FREE_PRODUCT = "free_product", "Free product"
    PARTNER_VOUCHER = "partner_voucher", "Partner voucher"
    EXPERIENCE = "experience", "Experience"
    DONATION = "donation", "Donation"


class Reward(models.Model):
    """Something members buy with points. Redeeming debits the points (FEFO), takes one from
    ``stock`` (None: unlimited) and issues a coupon the member shows to ``partner`` (None: any
    partner of the program)."""

    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="rewards")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    image = models.ImageField(upload_to="rewards/", blank=True)
    kind = models.CharField(max_length=20, choices=RewardKind.choices)
    points_cost = models.PositiveIntegerField()
    value = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Amount or percent of a discount coupon; face value of a voucher",
    )
    sku = models.CharField(max_length=64, blank=True, help_text="Free product: the SKU given")
    cost_to_business = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), help_text="What one redemption costs (profitability)"
    )
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Items left; empty means unlimited")
    per_member_limit = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    early_access_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="From here until valid_from only members with early access (tier perk or offer) may redeem",
    )
    exclusive = models.BooleanField(default=False, help_text="Only tiers with the 'exclusive rewards' perk")
    tiers = models.ManyToManyField("tiers.Tier", blank=True, related_name="+", help_text="Empty: every tier")
    segments_include = models.ManyToManyField("segments.Segment", blank=True, related_name="+")
    segments_exclude = models.ManyToManyField("segments.Segment", blank=True, related_name="+")
    partner = models.ForeignKey(
        "partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="rewards"
    )
    coupon_valid_days = models.PositiveIntegerField(default=30, help_text="Life of the coupon a redemption issues")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["points_cost", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_points_cost_positive"),
            models.CheckConstraint(condition=Q(kind__in=RewardKind.values), name="reward_kind_valid"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_from__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="reward_valid_window",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent_coupon") | Q(value__gt=0, value__lte=100), name="reward_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.points_cost} pts)"


class RedemptionState(models.TextChoices):
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled (points and stock returned)"


class RewardRedemption(models.Model):
    """A member bought a reward: the ledger redemption (the points), the coupon issued, and where."""

    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="reward_redemptions")
    redemption = models.OneToOneField("ledger.Redemption", on_delete=models.PROTECT, related_name="reward_redemption")
    coupon = models.OneToOneField(
        "offers.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="reward_redemption"
    )
    partner = models.ForeignKey("partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=20, help_text="portal, api, admin, ...")
    points = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=RedemptionState.choices, default=RedemptionState.COMPLETED)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "reward", "status"])]

    def __str__(self) -> str:
        return f"{self.reward_id} for {self.member_id} ({self.status})"


class OfferStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"


class ConditionKind(models.TextChoices):
    """What a purchase or member must meet; each value is a strategy class in ``offers.conditions``."""

    ALWAYS = "always", "Any purchase"
    MIN_SPEND = "min_spend", "Minimum spend"
    CATEGORY_BOUGHT = "category_bought", "A category bought"
    SKU_BOUGHT = "sku_bought", "A SKU bought"
    PURCHASE_COUNT = "purchase_count", "Number of purchases in a window"
    FIRST_PURCHASE = "first_purchase", "First purchase"
    BIRTHDAY_MONTH = "birthday_month", "Birthday month"
    DAY_OF_WEEK = "day_of_week", "Day of week"
    CHANNEL = "channel", "Channel"


class BenefitKind(models.TextChoices):
    """What the member gets; each value is a strategy class in ``offers.benefits``."""

    BONUS_MULTIPLIER = "bonus_multiplier", "Bonus points: multiplier"
    BONUS_FIXED = "bonus_fixed", "Bonus points: fixed"
    PERCENT_COUPON = "percent_coupon", "Percent discount coupon"
    AMOUNT_COUPON = "amount_coupon", "Amount discount coupon"
    FREE_ITEM = "free_item", "Free item"
    EXCLUSIVE_ACCESS = "exclusive_access", "Exclusive access (early access to a reward)"


class Offer(models.Model):
    """A condition plus a benefit, with who is eligible, when, and the limits it must stay within
    (django-oscar's ConditionalOffer: Condition + Benefit, each a strategy chosen by kind)."""

    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="offers")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    image = models.ImageField(upload_to="offers/", blank=True)
    status = models.CharField(max_length=10, choices=OfferStatus.choices, default=OfferStatus.DRAFT)
    priority = models.IntegerField(default=0, help_text="Higher first when offers compete")

    # condition
    condition_kind = models.CharField(max_length=20, choices=ConditionKind.choices, default=ConditionKind.ALWAYS)
    condition_min_spend = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    condition_categories = models.JSONField(default=list, blank=True)
    condition_skus = models.JSONField(default=list, blank=True)
    condition_count = models.PositiveIntegerField(null=True, blank=True, help_text="Purchases needed")
    condition_window_days = models.PositiveIntegerField(null=True, blank=True)
    condition_days_of_week = models.JSONField(default=list, blank=True, help_text="ISO weekdays, 1 = Monday")
    condition_channels = models.JSONField(default=list, blank=True)

    # benefit
    benefit_kind = models.CharField(max_length=20, choices=BenefitKind.choices)
    benefit_multiplier = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    benefit_points = models.PositiveIntegerField(null=True, blank=True)
    benefit_value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Coupon percent or amount"
    )
    benefit_sku = models.CharField(max_length=64, blank=True, help_text="Free item")
    benefit_reward = models.ForeignKey(
        Reward, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Exclusive access"
    )
    scope_categories = models.JSONField(default=list, blank=True, help_text="Bonus points: on these categories only")
    scope_skus = models.JSONField(default=list, blank=True, help_text="Bonus points: on these SKUs only")
    scope_partners = models.ManyToManyField("partners.Partner", blank=True, related_name="+")
    coupon_valid_days = models.PositiveIntegerField(default=30)

    # eligibility
    segments_include = models.ManyToManyField("segments.Segment", blank=True, related_name="+")
    segments_exclude = models.ManyToManyField("segments.Segment", blank=True, related_name="+")
    tiers = models.ManyToManyField("tiers.Tier", blank=True, related_name="+")
    partners = models.ManyToManyField(
        "partners.Partner", blank=True, related_name="offers", help_text="Where it applies; empty: every partner"
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    requires_activation = models.BooleanField(default=False, help_text="The member activates it (clip to card)")

    # limits and their counters
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    max_per_member = models.PositiveIntegerField(null=True, blank=True)
    points_budget = models.PositiveBigIntegerField(null=True, blank=True)
    redemptions_count = models.PositiveIntegerField(default=0)
    points_issued = models.PositiveBigIntegerField(default=0)

    source = models.CharField(max_length=40, blank=True, help_text="Imported from (e.g. complete_journey)")
    external_id = models.CharField(max_length=100, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-priority", "name"]
        indexes = [models.Index(fields=["program", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OfferStatus.values), name="offer_status_valid"),
            models.CheckConstraint(condition=Q(condition_kind__in=ConditionKind.values), name="offer_condition_valid"),
            models.CheckConstraint(condition=Q(benefit_kind__in=BenefitKind.values), name="offer_benefit_valid"),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(redemptions_count__lte=F("max_redemptions")),
                name="offer_redemptions_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(points_budget__isnull=True) | Q(points_issued__lte=F("points_budget")),
                name="offer_points_within_budget",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_from__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="offer_valid_window",
            ),
            models.UniqueConstraint(
                fields=["source", "external_id"], condition=Q(external_id__isnull=False), name="offer_external_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (offer #{self.pk})"


class OfferActivation(models.Model):
    """The member clipped the offer to their card (offers with ``requires_activation``)."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="activations")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="offer_activations")
    channel = models.CharField(max_length=20, blank=True)
    activated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer", "member"], name="offer_activation_once")]
        indexes = [models.Index(fields=["member", "offer"])]

    def __str__(self) -> str:
        return f"{self.offer_id} activated by {self.member_id}"


class OfferRedemption(models.Model):
    """One use of an offer by a member: bonus points on a purchase, or the coupon it issued."""

    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="redemptions")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="offer_redemptions")
    purchase = models.ForeignKey(
        "ledger.Purchase", null=True, blank=True, on_delete=models.PROTECT, related_name="offer_redemptions"
    )
    coupon = models.ForeignKey("offers.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    points = models.PositiveBigIntegerField(default=0)
    channel = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=RedemptionState.choices, default=RedemptionState.COMPLETED)
    created_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "offer"]), models.Index(fields=["offer", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["offer", "purchase"], condition=Q(purchase__isnull=False), name="offer_once_per_purchase"
            )
        ]

    def __str__(self) -> str:
        return f"offer {self.offer_id} for {self.member_id}: +{self.points}"


class OfferImpression(models.Model):
    """The last time a member was shown an offer or reward in a channel (novelty in the ranking)."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+", db_index=False)
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=20)
    times = models.PositiveIntegerField(default=1)
    last_shown_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["member", "last_shown_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(offer__isnull=False, reward__isnull=True) | Q(offer__isnull=True, reward__isnull=False),
                name="impression_offer_or_reward",
            ),
            models.UniqueConstraint(
                fields=["member", "offer", "channel"], condition=Q(offer__isnull=False), name="impression_offer_once"
            ),
            models.UniqueConstraint(
                fields=["member", "reward", "channel"], condition=Q(reward__isnull=False), name="impression_reward_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} saw {self.offer_id or self.reward_id}"


class CouponBatch(models.Model):
    """Codes generated together (prefix, length, uses, expiry), or imported, or the coupons of a reward."""

    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="coupon_batches")
    name = models.CharField(max_length=120)
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="coupon_batches")
    prefix = models.CharField(max_length=12, blank=True)
    code_length = models.PositiveSmallIntegerField(default=10, help_text="Random characters after the prefix")
    count = models.PositiveIntegerField(default=0)
    max_uses = models.PositiveIntegerField(default=1, help_text="1: single use")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "coupon batches"
        constraints = [
            models.CheckConstraint(condition=Q(code_length__gte=6, code_length__lte=32), name="batch_code_length"),
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="batch_max_uses_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class CouponStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CANCELLED = "cancelled", "Cancelled"


class CouponSource(models.TextChoices):
    BATCH = "batch", "Generated batch"
    IMPORT = "import", "Imported"
    REWARD = "reward", "Reward redemption"
    OFFER = "offer", "Offer benefit"


class Coupon(models.Model):
    """A code a member (or anyone, when not bound) uses at a till. What it gives comes from its
    offer (a discount or free-item benefit) or its reward; ``max_uses`` 1 is single-use."""

    code = models.CharField(max_length=48)
    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="coupons")
    batch = models.ForeignKey(CouponBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons")
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="coupons"
    )
    source = models.CharField(max_length=10, choices=CouponSource.choices)
    max_uses = models.PositiveIntegerField(default=1)
    uses_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=CouponStatus.choices, default=CouponStatus.ACTIVE)
    valid_from = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["member", "status"])]
        constraints = [
            models.UniqueConstraint(Upper("code"), name="coupon_code_unique_ci"),
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="coupon_max_uses_positive"),
            models.CheckConstraint(condition=Q(uses_count__lte=F("max_uses")), name="coupon_uses_within_max"),
            models.CheckConstraint(condition=Q(status__in=CouponStatus.values), name="coupon_status_valid"),
        ]

    def __str__(self) -> str:
        return self.code


class CouponUse(models.Model):
    """One use of a coupon at a partner (idempotent by ``idempotency_key``); cancelling a use gives it back."""

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="uses")
    member = models.ForeignKey("members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey("partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    purchase_external_id = models.CharField(max_length=100, blank=True)
    basket_total = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    status = models.CharField(max_length=10, choices=RedemptionState.choices, default=RedemptionState.COMPLETED)
    used_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-used_at", "-id"]
        indexes = [models.Index(fields=["coupon", "status"])]

    def __str__(self) -> str:
        return f"{self.coupon_id} used {self.used_at:%Y-%m-%d}"


class MemberOfferRank(models.Model):
    """One row of the batch ranking (``offers.services.ranking.member_offer_ranks_compute``): a
    member's top N offers and rewards, scored as ``offers_for_member`` scores them, when the job
    ran. For campaign messages and set-based reads; every run replaces the program's rows. Written
    with COPY: no database foreign-key checks (the ORM still cascades)."""

    program = models.ForeignKey(
        "ledger.Program", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    rank = models.PositiveSmallIntegerField(help_text="1 is shown first")
    kind = models.CharField(max_length=10)
    offer = models.ForeignKey(
        Offer, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    reward = models.ForeignKey(
        Reward, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    score = models.FloatField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["member", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["member", "program", "rank"], name="member_offer_rank_unique"),
            models.CheckConstraint(
                condition=Q(kind="offer", offer__isnull=False, reward__isnull=True)
                | Q(kind="reward", offer__isnull=True, reward__isnull=False),
                name="member_offer_rank_offer_or_reward",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} #{self.rank}: {self.kind} {self.offer_id or self.reward_id}"
