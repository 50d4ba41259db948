"""Referrals: a member's code brings a friend in; the friend's first qualifying purchase rewards both,
once; a full return of that purchase within the return window reverses both rewards."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

__all__ = ["CardFingerprint", "Referral", "ReferralChannel", "ReferralSettings", "ReferralStatus"]


class ReferralSettings(models.Model):
    """What a referral needs and gives, per program (edited by Marketing, audited)."""

    program = models.OneToOneField("ledger.Program", on_delete=models.CASCADE, related_name="+")
    is_active = models.BooleanField(default=True, help_text="Off: codes still record who referred whom; no rewards")
    min_spend = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), help_text="The friend's first purchase must reach this"
    )
    within_days = models.PositiveIntegerField(default=30, help_text="…within this many days of joining")
    referrer_points = models.PositiveIntegerField(default=500, help_text="Points for the member who invited")
    referee_points = models.PositiveIntegerField(default=250, help_text="Points for the friend who joined")
    monthly_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most rewarded referrals per referrer per calendar month (empty: no cap)"
    )
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "referral settings"
        verbose_name_plural = "referral settings"
        constraints = [models.CheckConstraint(condition=Q(min_spend__gte=0), name="referral_min_spend_non_negative")]

    def __str__(self) -> str:
        return f"Referral settings of program {self.program_id}"


class ReferralStatus(models.TextChoices):
    JOINED = "joined", "Joined"
    QUALIFIED = "qualified", "Qualified, not rewarded"
    REWARDED = "rewarded", "Rewarded"
    REVERSED = "reversed", "Reversed"


class ReferralChannel(models.TextChoices):
    LINK = "link", "Referral link"
    FORM = "form", "Code typed in the join form"
    API = "api", "Partner API"


class Referral(models.Model):
    """One friend brought in by one member (a member is referred at most once)."""

    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="+")
    referrer = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    referee = models.OneToOneField("members.Member", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=ReferralChannel.choices)
    status = models.CharField(max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.JOINED)
    note = models.CharField(max_length=200, blank=True, help_text="Why it was not rewarded, or reversed")
    joined_at = models.DateTimeField()
    purchase = models.ForeignKey(
        "ledger.Purchase", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    qualified_at = models.DateTimeField(null=True, blank=True)
    referrer_points = models.PositiveIntegerField(default=0)
    referee_points = models.PositiveIntegerField(default=0)
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-joined_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReferralStatus.values), name="referral_status_valid"),
            models.CheckConstraint(condition=~Q(referrer=models.F("referee")), name="referral_not_self"),
        ]
        indexes = [
            models.Index(fields=["referrer", "status", "qualified_at"]),
            models.Index(fields=["purchase"], condition=Q(purchase__isnull=False), name="referral_purchase_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id}"


class CardFingerprint(models.Model):
    """A payment card a member paid with, as a keyed hash of the fingerprint a partner sent (never the
    fingerprint itself): the self-referral guard compares a referee's card with the referrer's."""

    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+", db_index=False)
    digest = models.CharField(max_length=64)
    first_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "digest"], name="card_fingerprint_once_per_member")]
        indexes = [models.Index(fields=["digest"])]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.digest[:8]}"
