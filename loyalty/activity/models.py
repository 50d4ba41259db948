from decimal import Decimal

from django.db import models
from django.db.models import Q


class RuleKind(models.TextChoices):
    CATEGORY_MULTIPLIER = "category_multiplier", "Multiplier on categories"
    SKU_MULTIPLIER = "sku_multiplier", "Multiplier on SKUs"
    CATEGORY_BONUS = "category_bonus", "Fixed bonus when a category is bought"
    SKU_BONUS = "sku_bonus", "Fixed bonus when a SKU is bought"
    MIN_SPEND_BONUS = "min_spend_bonus", "Fixed bonus above a minimum spend"
    EXCLUDE_CATEGORIES = "exclude_categories", "Categories that earn nothing"


class EarningRule(models.Model):
    """A staff-managed rule on top of the program's base rate (see activity.rules for evaluation)."""

    program = models.ForeignKey("ledger.Program", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    categories = models.JSONField(default=list, blank=True)
    skus = models.JSONField(default=list, blank=True)
    multiplier = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1"))
    bonus_points = models.PositiveIntegerField(default=0)
    min_spend = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only at this partner",
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher first")
    stackable = models.BooleanField(default=True, help_text="Off: when this rule applies, no other rule does")
    cap_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most points this rule gives a member per day"
    )
    cap_per_month = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most points this rule gives a member per month"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(multiplier__gte=0), name="rule_multiplier_non_negative"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")),
                name="rule_valid_window",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RuleAward(models.Model):
    """Points one rule gave one member for one purchase (for caps and reporting)."""

    rule = models.ForeignKey(EarningRule, on_delete=models.CASCADE, related_name="awards")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    purchase = models.ForeignKey("ledger.Purchase", on_delete=models.CASCADE, related_name="+")
    points = models.BigIntegerField()
    awarded_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["rule", "member", "awarded_at"])]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.points}"


class EventType(models.Model):
    BUILTIN = ("app_login", "review_written", "survey_completed", "referral_completed", "social_share")

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.code


class EventRule(models.Model):
    program = models.ForeignKey("ledger.Program", on_delete=models.CASCADE, related_name="+")
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="rules")
    points = models.PositiveIntegerField()
    limit_per_day = models.PositiveIntegerField(null=True, blank=True)
    limit_per_week = models.PositiveIntegerField(null=True, blank=True)
    limit_lifetime = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.event_type}: {self.points}"


class MemberEvent(models.Model):
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey("partners.Partner", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT)
    external_id = models.CharField(max_length=100, null=True, blank=True)
    occurred_at = models.DateTimeField()
    points = models.BigIntegerField(default=0)
    rule = models.ForeignKey(EventRule, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "external_id"], name="event_external_id_per_partner")]
        indexes = [models.Index(fields=["member", "event_type", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.event_type_id} {self.member_id} +{self.points}"


class StaffJob(models.Model):
    """Not a table: the admin's "Jobs" page (run the scheduled jobs now). A model only so the page
    has its own permissions: ``runpoints`` (mature and expire points: Support), ``runprogram``
    (evaluate tiers, refresh segments, compute scores: Marketing) and ``importbalances`` (opening
    balances: Support and Marketing); see loyalty.core.roles."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [
            ("runpoints_staffjob", "Can run the points jobs (mature pending points, expire due points)"),
            ("runprogram_staffjob", "Can run the program jobs (evaluate tiers, refresh segments, compute scores)"),
            ("importbalances_staffjob", "Can import opening balances from another program"),
        ]
        verbose_name = "job"
        verbose_name_plural = "jobs: run now"

    def __str__(self) -> str:
        return "job"
