"""Messages to members: one content source rendered into each channel, per-member delivery rows
with their status and suppression reason, members' contact preferences and each program's
messaging policy (time zone, quiet hours, weekly caps, expiry reminders).

A ``Message`` row is the unit of delivery: its ``send_key`` is unique, so a retried task or a
repeated trigger finds the row already there and never sends twice. ``campaign_id`` / ``variant``
(and ``source``) let campaigns attribute opens, clicks and unsubscribes to an arm."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    INBOX = "inbox", "Portal inbox"


class Purpose(models.TextChoices):
    MARKETING = "marketing", "Marketing (needs marketing consent)"
    SERVICE = "service", "Service (about the member's account; no marketing content)"


class Trigger(models.TextChoices):
    """Transactional messages: which event sends the content (outbox event types in ``triggers``)."""

    WELCOME = "welcome", "Welcome (member enrolled)"
    POINTS_EARNED = "points_earned", "Points earned receipt"
    POINTS_EXPIRING = "points_expiring", "Points expiring soon"
    TIER_UP = "tier_up", "Tier upgraded"
    TIER_DOWN = "tier_down", "Tier downgraded"
    REWARD_REDEEMED = "reward_redeemed", "Reward redeemed"
    COUPON_ISSUED = "coupon_issued", "Coupon issued"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending (claimed, provider called)"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    BOUNCED = "bounced", "Bounced"


class Reason(models.TextChoices):
    """Stable codes: why a message was suppressed or failed."""

    NO_CONSENT = "no_consent", "No marketing consent for this channel"
    CHANNEL_OFF = "channel_off", "Member turned this channel off"
    NO_ADDRESS = "no_address", "No address for this channel"
    QUIET_HOURS = "quiet_hours", "Quiet hours in the member's time zone"
    FREQUENCY_CAP = "frequency_cap", "Weekly cap for this channel reached"
    MEMBER_INACTIVE = "member_inactive", "Member suspended, closed or erased"
    CONTENT_INACTIVE = "content_inactive", "Content switched off before sending"
    PROVIDER_ERROR = "provider_error", "Provider refused or failed"
    INTERRUPTED = "interrupted", "Sending interrupted (worker lost after the claim)"
    BOUNCED = "bounced", "Provider reported a bounce"


SUPPRESSION_REASONS = (
    Reason.NO_CONSENT,
    Reason.CHANNEL_OFF,
    Reason.NO_ADDRESS,
    Reason.QUIET_HOURS,
    Reason.FREQUENCY_CAP,
    Reason.MEMBER_INACTIVE,
    Reason.CONTENT_INACTIVE,
)


class Content(models.Model):
    """One content source: the wording (subject, body with variables such as ``{{ first_name }}``)
    and what it promotes, rendered into every channel's template (templates/messaging/)."""

    name = models.CharField(max_length=120)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.MARKETING)
    trigger = models.CharField(
        max_length=20, choices=Trigger.choices, blank=True, help_text="Transactional: sent on this event"
    )
    channels = models.JSONField(
        default=list, blank=True, help_text='Transactional: channels it goes to, e.g. ["email", "inbox"]'
    )
    subject = models.CharField(max_length=200, help_text="Email subject, push title, inbox heading")
    body = models.TextField(
        help_text="Plain text with variables: {{ first_name }}, {{ points }}, {{ balance }}, {{ tier }}, "
        "{{ offer }}, {{ reward }}, {{ coupon_code }}, {{ expires_on }}, {{ member_number }}"
    )
    link_url = models.URLField(max_length=500, blank=True, help_text="Call to action (tracked)")
    link_text = models.CharField(max_length=80, blank=True)
    offer = models.ForeignKey("offers.Offer", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reward = models.ForeignKey("offers.Reward", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    banner = models.BooleanField(default=False, help_text="Inbox: also shown as the portal banner until read")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "message content"
        constraints = [
            # service messages carry no marketing content
            models.CheckConstraint(
                condition=Q(purpose="marketing") | Q(offer__isnull=True, reward__isnull=True),
                name="content_service_promotes_nothing",
            ),
            models.CheckConstraint(condition=Q(trigger="") | Q(purpose="service"), name="content_trigger_is_service"),
            models.UniqueConstraint(
                fields=["trigger"], condition=~Q(trigger="") & Q(is_active=True), name="content_one_active_per_trigger"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MessagingPolicy(models.Model):
    """Per program: the time zone members without one are in, default quiet hours, weekly caps
    per channel (marketing messages) and how many days ahead expiring points are announced."""

    program = models.OneToOneField("ledger.Program", on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. America/Chicago")
    quiet_start = models.TimeField(default=dt.time(21, 0), help_text="No marketing from this local time")
    quiet_end = models.TimeField(default=dt.time(8, 0), help_text="... until this local time (equal: none)")
    email_weekly_cap = models.PositiveIntegerField(null=True, blank=True, default=3, help_text="Empty: no cap")
    sms_weekly_cap = models.PositiveIntegerField(null=True, blank=True, default=2)
    push_weekly_cap = models.PositiveIntegerField(null=True, blank=True, default=3)
    inbox_weekly_cap = models.PositiveIntegerField(null=True, blank=True, default=None)
    expiring_days = models.PositiveIntegerField(
        default=7, help_text="Remind members of points expiring this many days ahead (0: no reminder)"
    )
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "messaging policy"
        verbose_name_plural = "messaging policies"

    def __str__(self) -> str:
        return f"messaging policy of program {self.program_id}"


class ContactPreference(models.Model):
    """A member's own settings for messages: time zone, quiet hours and channels. A member without a
    row (or with blank fields) gets the program policy's values. The row is also what a send locks
    so that weekly caps hold under concurrent sends."""

    member = models.OneToOneField("members.Member", on_delete=models.CASCADE, related_name="contact_preference")
    time_zone = models.CharField(max_length=64, blank=True, help_text="Blank: the program's time zone")
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    email_enabled = models.BooleanField(default=True)
    sms_enabled = models.BooleanField(default=True)
    push_enabled = models.BooleanField(default=True)
    inbox_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"contact preferences of member {self.member_id}"

    def channel_enabled(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_enabled"))


class Message(models.Model):
    """One message to one member on one channel."""

    # no single-column indexes on member and content: the (member, channel, claimed_at) index serves
    # lookups by member; fewer indexes make each status change of a sent message cheaper
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="messages", db_index=False)
    content = models.ForeignKey(Content, on_delete=models.PROTECT, related_name="messages", db_index=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    send_key = models.CharField(max_length=200, unique=True, help_text="Idempotent send key")
    program = models.ForeignKey(
        "ledger.Program", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # where it came from, for attribution: "trigger:<trigger>", "campaign", "staff"
    source = models.CharField(max_length=40)
    campaign_id = models.BigIntegerField(null=True, blank=True)
    variant = models.CharField(max_length=40, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True, help_text="Outbox event that triggered it")
    context = models.JSONField(default=dict, blank=True, help_text="Variables from the trigger")
    # what was sent (filled when claimed)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True, help_text="The only URLs click tracking redirects to")
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=500, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True, help_text="Inbox: read in the portal")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # weekly caps: marketing messages claimed per member and channel
            models.Index(fields=["member", "channel", "claimed_at"], name="message_member_channel_claimed"),
            models.Index(fields=["status", "created_at"], name="message_status_created"),
            models.Index(
                fields=["campaign_id", "variant"], condition=Q(campaign_id__isnull=False), name="message_campaign"
            ),
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="message_provider_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in MessageStatus]), name="message_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="suppressed") | ~Q(reason=""), name="message_suppressed_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.member_id}: {self.status}"


class EventHandled(models.Model):
    """Outbox events the transactional messages have consumed (one row per event, so a sweep and
    a task that race, or a sweep run twice, queue each event's messages once)."""

    event = models.OneToOneField("partners.OutboxEvent", on_delete=models.CASCADE, primary_key=True, related_name="+")
    handled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"event {self.event_id} handled"
