from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

MEMBER_NUMBER_LENGTH = 12  # 11 random digits + 1 Luhn check digit


class MemberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"
    ERASED = "erased", "Erased"


class EnrollmentSource(models.TextChoices):
    PORTAL = "portal", "Member portal"
    PARTNER = "partner", "Partner API"
    STAFF = "staff", "Staff"
    IMPORT = "import", "Import"


class Member(models.Model):
    member_number = models.CharField(max_length=MEMBER_NUMBER_LENGTH, unique=True, editable=False)
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    email = models.EmailField(null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    preferred_language = models.CharField(max_length=10, default="en")

    # Optional demographics (as retailers' card programs collect them).
    age_band = models.CharField(max_length=20, blank=True)
    income_band = models.CharField(max_length=20, blank=True)
    household_size = models.PositiveSmallIntegerField(null=True, blank=True)
    household_composition = models.CharField(max_length=40, blank=True)
    kids_count = models.PositiveSmallIntegerField(null=True, blank=True)
    home_ownership = models.CharField(max_length=40, blank=True)
    marital_status = models.CharField(max_length=20, blank=True)

    status = models.CharField(max_length=10, choices=MemberStatus.choices, default=MemberStatus.ACTIVE)
    enrolled_at = models.DateTimeField(db_index=True)
    enrollment_source = models.CharField(max_length=10, choices=EnrollmentSource.choices)
    referral_code = models.CharField(max_length=12, unique=True, editable=False)
    referred_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="member"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="member_email_unique_ci"),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in MemberStatus]), name="member_status_valid"
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{self.member_number} {name}".strip()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    PERSONALIZATION = "personalization", "Personalization"
    PROFILING = "profiling", "Analytics and profiling"
    PARTNER_SHARING = "partner_sharing", "Sharing with partners"


class ConsentChannel(models.TextChoices):
    ANY = "", "All channels"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"


class ConsentEvent(models.Model):
    """Append-only history: one row per grant or withdrawal."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consent_events")
    purpose = models.CharField(max_length=20, choices=ConsentPurpose.choices)
    channel = models.CharField(max_length=10, choices=ConsentChannel.choices, blank=True)
    granted = models.BooleanField()
    source = models.CharField(max_length=20)
    wording_version = models.CharField(max_length=40, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["member", "purpose", "channel", "-occurred_at"])]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrew"
        return f"{verb} {self.purpose}/{self.channel or 'all'} ({self.source})"


class Consent(models.Model):
    """Current consent state per (member, purpose, channel); written only by ``consent_set``
    together with its ``ConsentEvent``, so bulk queries (segments, campaigns) stay one join."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=20, choices=ConsentPurpose.choices)
    channel = models.CharField(max_length=10, choices=ConsentChannel.choices, blank=True)
    granted = models.BooleanField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "purpose", "channel"], name="consent_one_state"),
        ]
        indexes = [models.Index(fields=["purpose", "channel", "granted"])]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.channel or 'all'}: {'on' if self.granted else 'off'}"


class RedemptionCode(models.Model):
    """A one-time code the member shows at a partner it is not linked to, so that partner may burn
    its points once. Only a keyed hash is stored; short-lived and single-use: ``used_at`` is set
    in the transaction of the redemption it allowed."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="redemption_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(expires_at__gt=models.F("created_at")), name="code_expires_later")
        ]

    def __str__(self) -> str:
        state = "used" if self.used_at else f"until {self.expires_at:%Y-%m-%d %H:%M}"
        return f"code of {self.member_id} ({state})"
