"""Segments of members and the scores they can be built on.

A ``Segment`` is dynamic (a rule tree, see ``segments.rules``), static (a list of members
uploaded as CSV) or a snapshot (a dynamic segment frozen at a moment, for a campaign).
Membership is materialized in ``SegmentMembership``: one row per stay of a member in a
segment (``left_at`` empty while the member is in). Each refresh writes a ``SegmentRefresh``
row (size over time) and one ``SegmentEvent`` per member who entered or left (for triggers).

``MemberScore`` holds each member's RFM scores and predicted value from the latest
``ScoreRun``.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (rules)"
    STATIC = "static", "Static (uploaded list)"
    SNAPSHOT = "snapshot", "Snapshot (frozen dynamic segment)"


class Segment(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    rules = models.JSONField(
        null=True, blank=True, help_text="Dynamic segments: the rule tree (validated by segments.rules)"
    )
    auto_refresh = models.BooleanField(default=True, help_text="Dynamic segments: refreshed by the scheduled job")
    source = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="snapshots",
        help_text="Snapshots: the dynamic segment they froze",
    )
    frozen_at = models.DateTimeField(null=True, blank=True)
    size = models.PositiveIntegerField(default=0)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=SegmentKind.values), name="segment_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind="dynamic") | Q(rules__isnull=False), name="segment_dynamic_has_rules"
            ),
            models.CheckConstraint(
                condition=~Q(kind="snapshot") | Q(frozen_at__isnull=False), name="segment_snapshot_frozen"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """One stay of a member in a segment: from ``entered_at`` until ``left_at`` (open while in)."""

    # Open rows are found by the unique (segment, member) index, a member's rows by (member, segment).
    # Derived data, written set-based by the refresh (hundreds of thousands of rows at a time) from
    # member ids it has just read, under a lock on the segment: no per-row foreign-key checks in
    # the database; deletes cascade through Django.
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False, db_constraint=False
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="segment_memberships",
        db_index=False,
        db_constraint=False,
    )
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "member"], condition=Q(left_at__isnull=True), name="segmentmembership_one_open"
            ),
            models.CheckConstraint(
                condition=Q(left_at__isnull=True) | Q(left_at__gte=models.F("entered_at")),
                name="segmentmembership_left_after_entered",
            ),
        ]
        indexes = [models.Index(fields=["member", "segment"], name="segmentmembership_member")]

    def __str__(self) -> str:
        return f"{self.member_id} in {self.segment_id}"


class RefreshTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "On demand"
    UPLOAD = "upload", "Static upload"
    SNAPSHOT = "snapshot", "Snapshot"


class SegmentRefresh(models.Model):
    """One materialization of a segment: its size then and how many entered and left."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="refreshes")
    trigger = models.CharField(max_length=10, choices=RefreshTrigger.choices)
    refreshed_at = models.DateTimeField()
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField()
    left = models.PositiveIntegerField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-refreshed_at", "-id"]
        indexes = [models.Index(fields=["segment", "refreshed_at"])]

    def __str__(self) -> str:
        return f"{self.segment_id} @ {self.refreshed_at:%Y-%m-%d %H:%M}: {self.size}"


class SegmentEventKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    LEFT = "left", "Left"


class SegmentEvent(models.Model):
    """A member entered or left a segment. Later triggers read these in id order."""

    # An append-only log written set-based by the refresh (hundreds of thousands of rows at a
    # time) from ids it has just read: no per-row foreign-key checks in the database; deletes
    # cascade through Django. segment and member are indexed by the composite indexes below.
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    kind = models.CharField(max_length=8, choices=SegmentEventKind.choices)
    refresh = models.ForeignKey(
        SegmentRefresh, on_delete=models.CASCADE, related_name="events", db_constraint=False, db_index=False
    )
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["segment", "id"]), models.Index(fields=["member", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.segment_id}"


class SegmentUpload(models.Model):
    """Report of one CSV upload into a static segment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255, blank=True)
    mode = models.CharField(max_length=8, choices=[("replace", "Replace the list"), ("add", "Add to the list")])
    rows = models.PositiveIntegerField()
    matched = models.PositiveIntegerField()
    unknown = models.PositiveIntegerField()
    unknown_ids = models.JSONField(default=list, blank=True, help_text="The first unknown ids (at most 1,000)")
    refresh = models.ForeignKey(SegmentRefresh, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename or 'upload'}: {self.matched}/{self.rows} matched"


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", "Champions"
    LOYAL = "loyal", "Loyal"
    POTENTIAL_LOYALIST = "potential_loyalist", "Potential loyalist"
    NEW = "new", "New"
    PROMISING = "promising", "Promising"
    NEED_ATTENTION = "need_attention", "Need attention"
    ABOUT_TO_SLEEP = "about_to_sleep", "About to sleep"
    AT_RISK = "at_risk", "At risk"
    CANT_LOSE = "cant_lose", "Can't lose them"
    HIBERNATING = "hibernating", "Hibernating"
    LOST = "lost", "Lost"


class ScoreRun(models.Model):
    """One nightly (or on-demand) scoring of the member base, with the fitted model parameters."""

    as_of = models.DateTimeField()
    window_days = models.PositiveIntegerField()
    horizon_days = models.PositiveIntegerField()
    margin = models.DecimalField(max_digits=5, decimal_places=4)
    members_scored = models.PositiveIntegerField(default=0)
    bgnbd = models.JSONField(null=True, blank=True, help_text="Fitted BG/NBD parameters r, alpha, a, b")
    gamma_gamma = models.JSONField(null=True, blank=True, help_text="Fitted Gamma-Gamma parameters p, q, gamma")
    timings = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    clv_basis = models.CharField(
        max_length=10,
        choices=[
            ("model", "BG/NBD × Gamma-Gamma"),
            ("historic", "Historic value per day (model fit degenerate)"),
            ("none", "Not computed"),
        ],
        default="none",
        help_text="Where the predicted values come from",
    )
    degenerate = models.BooleanField(
        default=False, help_text="A model parameter at its bound or a fit that did not converge"
    )
    fit_members = models.PositiveIntegerField(null=True, blank=True, help_text="Members the BG/NBD fit used")
    fit_log_likelihood = models.FloatField(null=True, blank=True, help_text="Log-likelihood of the BG/NBD fit")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"scores as of {self.as_of:%Y-%m-%d}"


class MemberScore(models.Model):
    """A member's RFM scores and predicted value, from the latest score run.

    Recency is days since the member's last purchase; frequency and monetary count the run's
    window. Predicted figures cover the run's horizon (12 months by default)."""

    # Each run rewrites every row from ids it has just read from purchases: no database
    # foreign-key checks (a million writes a night); deletes cascade through Django.
    member = models.OneToOneField(
        "members.Member", primary_key=True, on_delete=models.CASCADE, related_name="score", db_constraint=False
    )
    run = models.ForeignKey(
        ScoreRun, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    computed_on = models.DateField()
    recency_days = models.PositiveIntegerField()
    frequency = models.PositiveIntegerField()
    monetary = models.DecimalField(max_digits=14, decimal_places=2)
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    m_score = models.PositiveSmallIntegerField()
    rfm_segment = models.CharField(max_length=20, choices=RfmSegment.choices)
    purchases_total = models.PositiveIntegerField(help_text="All purchases up to the run")
    historic_clv = models.DecimalField(max_digits=14, decimal_places=2, help_text="Spend so far")
    predicted_purchases = models.FloatField(null=True, blank=True)
    probability_alive = models.FloatField(null=True, blank=True)
    expected_spend = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="Expected spend per purchase"
    )
    predicted_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(r_score__gte=1, r_score__lte=5)
                & Q(f_score__gte=1, f_score__lte=5)
                & Q(m_score__gte=1, m_score__lte=5),
                name="memberscore_scores_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(probability_alive__isnull=True) | Q(probability_alive__gte=0, probability_alive__lte=1),
                name="memberscore_probability_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.r_score}{self.f_score}{self.m_score} {self.rfm_segment}"
