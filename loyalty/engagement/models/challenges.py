"""Challenges and badges: a goal over a window, a member's progress towards it, its award once."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

__all__ = [
    "BADGE_ICONS",
    "Badge",
    "Challenge",
    "ChallengeCompletion",
    "ChallengeKind",
    "ChallengeProgress",
    "MemberBadge",
]

# Static SVG badges shipped in static/engagement/badges/<name>.svg (offline: no CDN).
BADGE_ICONS = [
    ("star", "Star"),
    ("trophy", "Trophy"),
    ("leaf", "Leaf"),
    ("heart", "Heart"),
    ("bolt", "Lightning bolt"),
]


class Badge(models.Model):
    """A badge a member earns by completing a challenge. Its picture: an uploaded image, else one
    of the static SVG icons."""

    name = models.CharField(max_length=80, unique=True)
    description = models.CharField(max_length=300, blank=True)
    image = models.ImageField(upload_to="badges/", blank=True, help_text="Optional; else the icon below")
    icon = models.CharField(max_length=20, choices=BADGE_ICONS, default="star")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class ChallengeKind(models.TextChoices):
    PURCHASE_COUNT = "purchase_count", "Number of purchases (optionally in a category)"
    SPEND = "spend", "Amount spent"
    PARTNERS_VISITED = "partners_visited", "Different partners visited"
    STORES_VISITED = "stores_visited", "Different stores visited"
    EVENT_COUNT = "event_count", "Number of events of a type (e.g. surveys answered)"


class Challenge(models.Model):
    """A goal over a window (``starts_at`` to ``ends_at``) for the members of its segments and
    tiers (none named: everyone in the program), with a reward: points, a reward of the catalogue
    issued free (a coupon), and/or a badge. ``requires_opt_in``: only what a member does after
    joining the challenge counts."""

    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=ChallengeKind.choices)
    category = models.CharField(
        max_length=100, blank=True, help_text="Purchases and spend: only lines of this category count"
    )
    event_type = models.ForeignKey(
        "activity.EventType",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Event count: the event type that counts",
    )
    target = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="Purchases, amount, partners, stores or events needed"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    segments = models.ManyToManyField("segments.Segment", blank=True, related_name="+")
    tiers = models.ManyToManyField("tiers.Tier", blank=True, related_name="+")
    requires_opt_in = models.BooleanField(default=False, help_text="Members join it in the portal first")
    reward_points = models.PositiveIntegerField(default=0)
    reward = models.ForeignKey(
        "offers.Reward",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Issued free as a coupon on completion",
    )
    badge = models.ForeignKey(Badge, null=True, blank=True, on_delete=models.PROTECT, related_name="challenges")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    recomputed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(target__gt=0), name="challenge_target_positive"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="challenge_window_ordered"),
            models.CheckConstraint(
                condition=~Q(kind="event_count") | Q(event_type__isnull=False), name="challenge_event_type_needed"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def counts_money(self) -> bool:
        return self.kind == ChallengeKind.SPEND


class ChallengeProgress(models.Model):
    """How far a member is: ``value`` (purchases, amount, partners, stores or events counted in the
    window). Written by the purchase and event workflows and by the nightly recomputation."""

    # Derived data, written set-based by the nightly recomputation (a row per member taking part: up
    # to the whole base at once) from member ids it has just read: no per-row foreign-key checks in
    # the database (as segment memberships and tier statuses); deletes cascade through Django.
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="progress", db_constraint=False)
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    opted_in_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "challenge progress"
        constraints = [
            models.UniqueConstraint(fields=["challenge", "member"], name="challengeprogress_one_per_member"),
            models.CheckConstraint(condition=Q(value__gte=0), name="challengeprogress_value_non_negative"),
        ]
        indexes = [models.Index(fields=["member", "challenge"], name="challengeprogress_member")]

    def __str__(self) -> str:
        return f"{self.member_id} on {self.challenge_id}: {self.value}"


class ChallengeCompletion(models.Model):
    """A challenge completed and awarded: one per member and challenge (the unique key makes the
    award exactly once, whoever gets there first: a purchase, an event or the nightly run)."""

    challenge = models.ForeignKey(Challenge, on_delete=models.PROTECT, related_name="completions")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    completed_at = models.DateTimeField()
    points = models.PositiveIntegerField(default=0)
    ledger_transaction = models.ForeignKey(
        "ledger.LedgerTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    coupon = models.ForeignKey("offers.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=200, blank=True, help_text="What could not be given, in words")
    purchase = models.ForeignKey(
        "ledger.Purchase",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The purchase that completed it (none: an event or the nightly run did)",
    )
    reversed_at = models.DateTimeField(
        null=True, blank=True, help_text="Its points were taken back: the purchase that completed it was returned"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge", "member"], name="challengecompletion_once"),
        ]
        indexes = [models.Index(fields=["member", "completed_at"], name="challengecompletion_member")]

    def __str__(self) -> str:
        return f"{self.member_id} completed {self.challenge_id}"


class MemberBadge(models.Model):
    """A badge a member holds (once per badge)."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    badge = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="holders")
    challenge = models.ForeignKey(Challenge, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    earned_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "badge"], name="memberbadge_once")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.badge_id}"
