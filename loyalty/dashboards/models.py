"""Summary tables of the staff dashboards, refreshed nightly set-based (``services.refresh``).

They are derived data: every row can be rebuilt from the ledger and activity tables
(``manage.py refresh_dashboards --full``). Programs and partners are plain ids (no foreign
keys): the refresh writes hundreds of thousands of rows at a time and deletes what it rewrites.
``partner_key`` is 0 for "every partner" in tables of distinct counts, which cannot be added up
across partners; additive tables keep ``partner_id`` (empty: no partner, e.g. staff or jobs).
"""

from django.db import models


class Dashboard(models.Model):
    """No table: carries the permission to see each dashboard (roles in ``loyalty.core.roles``)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("dashboards_health", "Can see the program health dashboard"),
            ("dashboards_tiers", "Can see the tiers dashboard"),
            ("dashboards_segments", "Can see the segments dashboard"),
            ("dashboards_offers", "Can see the offers and campaigns dashboard"),
            ("dashboards_profitability", "Can see the profitability audit and partner settlements"),
        ]

    def __str__(self) -> str:
        return "dashboards"


class DailyFact(models.Model):
    """Per day (program time zone: UTC dates), program and partner: money and points that add up.

    Each row holds one ``part``: ``activity`` (purchases, returns and events, dated when they
    happened: they may arrive late, so the nightly run rewrites ``DASHBOARDS_REFRESH_DAYS``) or
    ``ledger`` (new accounts, points and reward redemptions, dated when they were written: the
    nightly run rewrites ``DASHBOARDS_LEDGER_REFRESH_DAYS``). Readers add rows up, so a day's
    figures are the sum of its two rows."""

    ACTIVITY = "activity"
    LEDGER = "ledger"

    day = models.DateField()
    part = models.CharField(max_length=8, default="", help_text="activity or ledger (empty: written before parts)")
    program_id = models.BigIntegerField()
    partner_id = models.BigIntegerField(null=True, blank=True)
    purchases = models.BigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0, help_text="Eligible spend of purchases")
    returns_amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    events = models.BigIntegerField(default=0)
    new_members = models.BigIntegerField(default=0)
    points_earned = models.BigIntegerField(default=0)
    points_redeemed = models.BigIntegerField(default=0)
    points_refunded = models.BigIntegerField(default=0)
    points_expired = models.BigIntegerField(default=0)
    points_reversed = models.BigIntegerField(default=0)
    points_adjusted = models.BigIntegerField(default=0)
    points_net = models.BigIntegerField(default=0, help_text="Sum of member-account entries (balance change)")
    points_funded = models.BigIntegerField(default=0, help_text="Points issued from this partner's issued account")
    reward_redemptions = models.BigIntegerField(default=0)
    reward_cost = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        indexes = [models.Index(fields=["program_id", "day"], name="dash_dailyfact_program_day")]

    def __str__(self) -> str:
        return f"{self.day} program {self.program_id} partner {self.partner_id}"


class DailyMessages(models.Model):
    """Messages sent per day, program and channel (their cost: ``loyalty.messaging.costs``)."""

    day = models.DateField()
    program_id = models.BigIntegerField(null=True, blank=True)
    channel = models.CharField(max_length=10)
    sent = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="dash_dailymessages_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}: {self.sent}"


class MonthlyActivity(models.Model):
    """Per month, program, partner (0: every partner) and enrollment cohort month: distinct members."""

    month = models.DateField()
    program_id = models.BigIntegerField()
    partner_key = models.BigIntegerField(default=0)
    cohort = models.DateField(help_text="First day of the month the members joined")
    active_members = models.BigIntegerField(default=0, help_text="With a purchase or an event in the month")
    purchasers = models.BigIntegerField(default=0)
    repeat_purchasers = models.BigIntegerField(default=0, help_text="With two purchases or more in the month")

    class Meta:
        indexes = [models.Index(fields=["program_id", "partner_key", "month"], name="dash_monthlyact_key")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} cohort {self.cohort:%Y-%m}: {self.active_members}"


class ActiveSnapshot(models.Model):
    """On a day: members enrolled (not closed or erased) and active in the 90 days before it."""

    day = models.DateField()
    program_id = models.BigIntegerField()
    partner_key = models.BigIntegerField(default=0)
    enrolled = models.BigIntegerField(default=0)
    active_90d = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["program_id", "partner_key", "day"], name="dash_activesnap_key")]

    def __str__(self) -> str:
        return f"{self.day}: {self.active_90d} of {self.enrolled}"


class TierFlowDaily(models.Model):
    """Tier changes per day and program: from which tier to which, why, how many members."""

    day = models.DateField()
    program_id = models.BigIntegerField()
    from_tier_id = models.BigIntegerField(null=True, blank=True)
    to_tier_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=16)
    members = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["program_id", "day"], name="dash_tierflow_program_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.from_tier_id} -> {self.to_tier_id}: {self.members}"


class TierSpendDaily(models.Model):
    """Per day, program, partner and tier: purchases and their spend (eligible less returned) by the
    members in each tier when the day was last summarised (empty tier: no tier status yet, shown at
    the base tier). Days leave the nightly window after ``DASHBOARDS_REFRESH_DAYS``: from then on
    they keep the tiers members held then."""

    day = models.DateField()
    program_id = models.BigIntegerField()
    partner_id = models.BigIntegerField(null=True, blank=True)
    tier_id = models.BigIntegerField(null=True, blank=True)
    purchases = models.BigIntegerField(default=0)
    spend = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        indexes = [models.Index(fields=["program_id", "day"], name="dash_tierspend_program_day")]

    def __str__(self) -> str:
        return f"{self.day} tier {self.tier_id}: {self.spend}"


class SegmentSpendDaily(models.Model):
    """Per day, program, partner and segment: purchases and spend (eligible less returned) of the
    members in the segment when the day was last summarised. Everybody's spend (a segment's revenue
    share's denominator) is ``TierSpendDaily``'s, every tier added up."""

    day = models.DateField()
    program_id = models.BigIntegerField()
    partner_id = models.BigIntegerField(null=True, blank=True)
    segment_id = models.BigIntegerField()
    purchases = models.BigIntegerField(default=0)
    spend = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        indexes = [models.Index(fields=["segment_id", "day"], name="dash_segspend_segment_day")]

    def __str__(self) -> str:
        return f"{self.day} segment {self.segment_id}: {self.spend}"


class SegmentMix(models.Model):
    """Who is in each segment, as of the last refresh (only the latest is kept): members per program,
    tier (empty: no tier status, or no account in any program) and RFM group (empty: not scored),
    with their predicted CLV."""

    day = models.DateField()
    segment_id = models.BigIntegerField()
    program_id = models.BigIntegerField(null=True, blank=True)
    tier_id = models.BigIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=20, blank=True)
    members = models.BigIntegerField(default=0)
    clv_members = models.BigIntegerField(default=0, help_text="Members with a predicted CLV")
    clv_total = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        indexes = [models.Index(fields=["segment_id"], name="dash_segmix_segment")]

    def __str__(self) -> str:
        return f"segment {self.segment_id} tier {self.tier_id} {self.rfm_segment}: {self.members}"


class RefreshRun(models.Model):
    """One refresh of the summary tables: which days it rewrote and how long each table took."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateField(help_text="First day rewritten")
    until = models.DateField(help_text="Last day rewritten")
    full = models.BooleanField(default=False)
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"refresh {self.since} - {self.until}"
