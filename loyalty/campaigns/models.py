"""Campaigns: a goal, an audience (segments in, segments out) snapshot at launch, the offers and
rewards it promotes, the message content each arm sends, variants with weights and a holdout that
receives nothing, a schedule with seasonal re-runs, a frequency cap and an attribution window.

The audience snapshot (``CampaignMember``) holds one row per member with the arm the keyed hash
gave it (``loyalty.campaigns.assignment``); re-runs send to the same rows, so arms never change.
Each send round is a ``CampaignRun`` (unique per campaign and number): its messages carry the send
key ``campaign:<id>:<run>:<arm>``, so a retried run queues nothing twice."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


class Recurrence(models.TextChoices):
    NONE = "none", "Once"
    MONTHLY = "monthly", "Every month"
    YEARLY = "yearly", "Every year (seasonal)"


HOLDOUT = "holdout"


def new_secret_key() -> str:
    return secrets.token_hex(16)


class Campaign(models.Model):
    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    goal = models.TextField(blank=True, help_text="What the campaign should achieve, in words")
    segments_include = models.ManyToManyField(
        "segments.Segment", blank=True, related_name="+", help_text="Members in any of these (none: every member)"
    )
    segments_exclude = models.ManyToManyField(
        "segments.Segment", blank=True, related_name="+", help_text="... except members in any of these"
    )
    offers = models.ManyToManyField("offers.Offer", blank=True, related_name="+", help_text="Offers it promotes")
    rewards = models.ManyToManyField("offers.Reward", blank=True, related_name="+", help_text="Rewards it promotes")
    content = models.ForeignKey(
        "messaging.Content",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The message it sends (a variant may send its own)",
    )
    channels = models.JSONField(default=list, help_text='Channels, e.g. ["email", "inbox"]')
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Scheduled launch (empty: launched by hand)")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="No runs after this; then finished")
    send_time = models.TimeField(null=True, blank=True, help_text="Re-runs go out at this time of day (UTC)")
    recurrence = models.CharField(max_length=10, choices=Recurrence.choices, default=Recurrence.NONE)
    frequency_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many messages of this campaign per member and channel ..."
    )
    frequency_cap_days = models.PositiveIntegerField(default=30, help_text="... in this many days")
    attribution_days = models.PositiveIntegerField(
        default=14, help_text="Purchases this many days after launch count for the member's arm"
    )
    holdout_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=10, help_text="Share of the audience kept out (receives nothing)"
    )
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    secret_key = models.CharField(max_length=64, default=new_secret_key, editable=False)
    launched_at = models.DateTimeField(null=True, blank=True)
    audience_size = models.PositiveIntegerField(default=0)
    runs_done = models.PositiveIntegerField(default=0)
    next_run_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("launch_campaign", "Can launch, schedule and stop campaigns")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lt=100), name="campaign_holdout_range"
            ),
            models.CheckConstraint(condition=Q(attribution_days__gte=1), name="campaign_attribution_positive"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(starts_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="campaign_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_run_at"], name="campaign_status_next_run")]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One treatment arm: its share of the treated audience (``weight``) and, optionally, its own content."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=40)
    weight = models.PositiveIntegerField(default=1)
    content = models.ForeignKey(
        "messaging.Content",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: the campaign's content",
    )

    class Meta:
        ordering = ["campaign", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_name_unique"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="variant_weight_positive"),
            models.CheckConstraint(condition=~Q(name=HOLDOUT) & ~Q(name=""), name="variant_name_not_holdout"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignMember(models.Model):
    """The audience snapshot: one row per member at launch, with the arm assigned (a variant's
    name, or ``holdout``). Written set-based (one INSERT ... SELECT), never changed."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="audience", db_index=False, db_constraint=False
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    arm = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "member"], name="campaignmember_once")]
        indexes = [models.Index(fields=["campaign", "arm", "member"], name="campaignmember_arm")]

    def __str__(self) -> str:
        return f"{self.member_id} in {self.campaign_id}: {self.arm}"


class CampaignRun(models.Model):
    """One send round (the launch is run 1, each re-run the next number)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    ran_at = models.DateTimeField()
    queued = models.PositiveIntegerField(default=0, help_text="Messages queued")
    capped = models.PositiveIntegerField(default=0, help_text="Messages left out by the campaign's frequency cap")

    class Meta:
        ordering = ["campaign", "number"]
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="campaignrun_once")]

    def __str__(self) -> str:
        return f"run {self.number} of {self.campaign_id}"
