"""Community events (staff publish, members register, attendance checked in) and the
birthday / enrollment-anniversary rewards."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

__all__ = [
    "CelebrationAward",
    "CelebrationKind",
    "CelebrationPolicy",
    "CelebrationReward",
    "CommunityEvent",
    "CommunityEventKind",
    "EventRegistration",
    "RegistrationStatus",
]


class CommunityEventKind(models.TextChoices):
    STORE_OPENING = "store_opening", "Store opening"
    TASTING = "tasting", "Tasting"
    CHARITY_DAY = "charity_day", "Charity day"
    WORKSHOP = "workshop", "Workshop"
    OTHER = "other", "Other"


class CommunityEvent(models.Model):
    """An event members register for. ``partner`` empty: a coalition event (every partner of the
    program may check members in); else only that partner may. ``registered`` counts the places
    taken, moved by a conditional UPDATE so it never passes ``capacity``."""

    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=CommunityEventKind.choices, default=CommunityEventKind.OTHER)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    place = models.CharField(max_length=200)
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: a coalition event",
    )
    capacity = models.PositiveIntegerField()
    registered = models.PositiveIntegerField(default=0, editable=False)
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(capacity__gt=0), name="communityevent_capacity_positive"),
            models.CheckConstraint(
                condition=Q(registered__lte=models.F("capacity")), name="communityevent_within_capacity"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="communityevent_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def places_left(self) -> int:
        return max(self.capacity - self.registered, 0)


class RegistrationStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    CANCELLED = "cancelled", "Cancelled"


class EventRegistration(models.Model):
    """A member's place at an event (one row per member and event; cancelling keeps the row).
    ``attendance``: the member event that recorded the check-in (once)."""

    event = models.ForeignKey(CommunityEvent, on_delete=models.PROTECT, related_name="registrations")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=RegistrationStatus.choices, default=RegistrationStatus.REGISTERED)
    registered_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    attended_at = models.DateTimeField(null=True, blank=True)
    attendance = models.OneToOneField(
        "activity.MemberEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "member"], name="eventregistration_one_per_member"),
            models.CheckConstraint(
                condition=Q(status__in=RegistrationStatus.values), name="eventregistration_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["member", "event"], name="eventregistration_member")]

    def __str__(self) -> str:
        return f"{self.member_id} at {self.event_id}"


class CelebrationKind(models.TextChoices):
    BIRTHDAY = "birthday", "Birthday"
    ANNIVERSARY = "anniversary", "Enrollment anniversary"


class CelebrationPolicy(models.Model):
    """Per program: the time zone whose calendar says "today" for birthdays and anniversaries
    (keep it equal to the program's messaging time zone), and whether they are rewarded."""

    program = models.OneToOneField("ledger.Program", on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. America/Chicago")
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "birthday and anniversary policy"
        verbose_name_plural = "birthday and anniversary policies"

    def __str__(self) -> str:
        return f"celebrations of program {self.program_id}"


class CelebrationReward(models.Model):
    """What a birthday or an enrollment anniversary gives: points and/or an offer activated for the
    member. ``tier`` empty: members whose tier has no row of its own."""

    policy = models.ForeignKey(CelebrationPolicy, on_delete=models.CASCADE, related_name="rewards")
    kind = models.CharField(max_length=12, choices=CelebrationKind.choices)
    tier = models.ForeignKey("tiers.Tier", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    points = models.PositiveIntegerField(default=0)
    offer = models.ForeignKey(
        "offers.Offer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Activated for the member (clip-to-card offers)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "kind", "tier"],
                condition=Q(tier__isnull=False),
                name="celebrationreward_one_per_tier",
            ),
            models.UniqueConstraint(
                fields=["policy", "kind"], condition=Q(tier__isnull=True), name="celebrationreward_one_default"
            ),
            models.CheckConstraint(
                condition=Q(points__gt=0) | Q(offer__isnull=False), name="celebrationreward_gives_something"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.points} points"


class CelebrationAward(models.Model):
    """A birthday or anniversary rewarded: once per member, kind and year (the unique key)."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    program = models.ForeignKey("ledger.Program", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    kind = models.CharField(max_length=12, choices=CelebrationKind.choices)
    year = models.PositiveSmallIntegerField()
    day = models.DateField(help_text="The local day it was given for")
    points = models.PositiveIntegerField(default=0)
    offer = models.ForeignKey(
        "offers.Offer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    awarded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "program", "kind", "year"], name="celebrationaward_once_a_year")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.year}"
