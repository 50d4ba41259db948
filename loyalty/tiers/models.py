"""Tier rules: tier definitions per program (thresholds, benefits), the program's tier policy,
each member's tier status and the history of its changes.

A member with no status row is at the program's base tier (the highest tier that asks for
nothing); the row is created the first time a service looks at the member's tier.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class QualificationWindow(models.TextChoices):
    CALENDAR_YEAR = "calendar_year", "Calendar year"
    ROLLING_12_MONTHS = "rolling_12_months", "Rolling 12 months"
    MEMBERSHIP_YEAR = "membership_year", "Membership year (from the enrollment anniversary)"
    LIFETIME = "lifetime", "Lifetime"


class DowngradePolicy(models.TextChoices):
    REQUALIFY = "requalify", "Requalify: highest tier the closed period qualifies for"
    ONE_STEP = "one_step", "At most one tier down per period"
    NEVER = "never", "Never downgrade"


class Combine(models.TextChoices):
    ANY = "any", "Any threshold is enough"
    ALL = "all", "All thresholds are needed"


class Metric(models.TextChoices):
    SPEND = "spend", "Qualifying spend"
    POINTS = "points", "Qualifying points"
    PURCHASES = "purchases", "Number of purchases"


class TierPolicy(models.Model):
    """How a program qualifies members for tiers. A program without a row uses the defaults."""

    program = models.OneToOneField("ledger.Program", on_delete=models.CASCADE, related_name="tier_policy")
    window = models.CharField(
        max_length=20, choices=QualificationWindow.choices, default=QualificationWindow.CALENDAR_YEAR
    )
    downgrade_policy = models.CharField(
        max_length=12, choices=DowngradePolicy.choices, default=DowngradePolicy.REQUALIFY
    )
    grace_days = models.PositiveIntegerField(
        default=0, help_text="Days after a period closes before a downgrade applies"
    )
    adjustments_count = models.BooleanField(
        default=False, help_text="Positive staff adjustments count as qualifying points"
    )

    class Meta:
        verbose_name_plural = "tier policies"
        constraints = [
            models.CheckConstraint(condition=Q(window__in=QualificationWindow.values), name="tierpolicy_window_valid"),
            models.CheckConstraint(
                condition=Q(downgrade_policy__in=DowngradePolicy.values), name="tierpolicy_downgrade_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"tier policy of {self.program}"


class Tier(models.Model):
    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="tiers")
    name = models.CharField(max_length=60)
    rank = models.PositiveSmallIntegerField(help_text="Higher rank = higher tier; the base tier has the lowest rank")
    combine = models.CharField(max_length=3, choices=Combine.choices, default=Combine.ANY)
    # Benefits
    earn_multiplier = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1"))
    exclusive_rewards = models.BooleanField(default=False, help_text="May redeem rewards reserved for this tier")
    early_access = models.BooleanField(default=False, help_text="Sees offers and sales before others")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["program", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["program", "rank"], name="tier_rank_unique_per_program"),
            models.UniqueConstraint(fields=["program", "name"], name="tier_name_unique_per_program"),
            models.CheckConstraint(condition=Q(earn_multiplier__gte=0), name="tier_multiplier_non_negative"),
            models.CheckConstraint(condition=Q(combine__in=Combine.values), name="tier_combine_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class TierThreshold(models.Model):
    """Entry threshold of a tier on one qualifying metric (spend in money; points and purchases whole)."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="thresholds")
    metric = models.CharField(max_length=10, choices=Metric.choices)
    minimum = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["tier", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "metric"], name="threshold_one_per_metric"),
            models.CheckConstraint(condition=Q(minimum__gte=0), name="threshold_minimum_non_negative"),
            models.CheckConstraint(condition=Q(metric__in=Metric.values), name="threshold_metric_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} >= {self.minimum}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.metric != Metric.SPEND and self.minimum is not None and self.minimum != self.minimum.to_integral():
            raise ValidationError({"minimum": "Points and purchases are whole numbers."})


class TierPerk(models.Model):
    """A benefit shown to members on their tier page."""

    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="perks")
    title = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["tier", "position", "id"]

    def __str__(self) -> str:
        return self.title


class MemberTier(models.Model):
    """A member's tier in a program.

    ``tier`` is what the member has now; ``earned_tier`` is what the rules give (the same,
    unless a manual tier is active until ``manual_until``). ``period_start``/``period_end`` is
    the qualification period that the next evaluation closes (empty for lifetime windows);
    ``downgrade_to``/``downgrade_at`` is a downgrade waiting out its grace period.
    """

    # Few indexes and foreign-key checks: the nightly job rewrites many rows at once. The unique
    # (member, program) serves lookups by member and the job's walk in member order; tiers are
    # protected from deletion by the ORM (PROTECT) instead of a per-row database check.
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="tier_statuses", db_index=False)
    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="+", db_index=False)
    tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    earned_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    tier_since = models.DateTimeField()
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    downgrade_to = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    downgrade_at = models.DateTimeField(null=True, blank=True)
    manual_until = models.DateTimeField(null=True, blank=True)
    manual_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "member tier status"
        verbose_name_plural = "member tier statuses"
        permissions = [("manual_tier", "Can set a tier by hand (status match)")]
        constraints = [
            models.UniqueConstraint(fields=["member", "program"], name="membertier_one_per_member_program"),
            models.CheckConstraint(
                condition=Q(period_end__isnull=True) | Q(period_start__lt=models.F("period_end")),
                name="membertier_period_ordered",
            ),
        ]
        indexes = [
            models.Index(
                fields=["program", "downgrade_at"],
                condition=Q(downgrade_at__isnull=False),
                name="membertier_downgrade_due",
            ),
            models.Index(
                fields=["program", "manual_until"],
                condition=Q(manual_until__isnull=False),
                name="membertier_manual_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.program_id}: {self.tier or 'no tier'}"


class ChangeReason(models.TextChoices):
    INITIAL = "initial", "Initial"
    UPGRADE = "upgrade", "Upgrade"
    DOWNGRADE = "downgrade", "Downgrade"
    MANUAL = "manual", "Set by hand"
    MANUAL_EXPIRED = "manual_expired", "Manual tier ended"


class TierChange(models.Model):
    """One row per change of a member's tier. Written by services and the nightly job only."""

    status = models.ForeignKey(MemberTier, on_delete=models.CASCADE, related_name="changes", db_constraint=False)
    # Written in bulk by the nightly job: (member, changed_at) and (program, changed_at) serve the
    # reads; no index or database check per foreign key (members and tiers are never deleted).
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    program = models.ForeignKey(
        "ledger.Program", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    from_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    to_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    reason = models.CharField(max_length=16, choices=ChangeReason.choices)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["member", "changed_at"], name="tierchange_member"),
            models.Index(fields=["program", "changed_at"], name="tierchange_program"),
        ]

    def __str__(self) -> str:
        return f"{self.from_tier or '-'} -> {self.to_tier or '-'} ({self.reason})"
