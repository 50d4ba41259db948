"""Surveys with rewarded feedback: staff build a survey (ordered questions), target it to segments or
tiers for a validity window, and members answer it once on the portal. The reward is the program's
``survey_completed`` event rule (loyalty.activity), given in the answer's transaction."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

__all__ = ["QuestionKind", "Survey", "SurveyAnswer", "SurveyQuestion", "SurveyResponse"]


class QuestionKind(models.TextChoices):
    RATING = "rating", "Rating 1–5"
    NPS = "nps", "Recommend 0–10 (NPS)"
    SINGLE = "single", "One choice"
    MULTIPLE = "multiple", "Several choices"
    TEXT = "text", "Free text"


# the scores a scored question accepts
SCORE_RANGES = {QuestionKind.RATING: (1, 5), QuestionKind.NPS: (0, 10)}


class Survey(models.Model):
    program = models.ForeignKey("ledger.Program", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=120)
    intro = models.TextField(blank=True, help_text="Shown above the questions")
    is_active = models.BooleanField(default=False, help_text="Off: members do not see it (a draft, or closed)")
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    segments = models.ManyToManyField(
        "segments.Segment", blank=True, related_name="+", help_text="Only members in one of these (none: everyone)"
    )
    tiers = models.ManyToManyField(
        "tiers.Tier", blank=True, related_name="+", help_text="Only members in one of these tiers (none: every tier)"
    )
    reward_points = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Points for answering. Empty: the points of the program's 'survey_completed' event rule; "
        "0: no points. The event rule's limits apply either way.",
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_from__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="survey_valid_window",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class SurveyQuestion(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the form (lowest first)")
    kind = models.CharField(max_length=10, choices=QuestionKind.choices)
    text = models.CharField(max_length=300)
    choices = models.JSONField(default=list, blank=True, help_text="One and several choices: the options, in order")
    required = models.BooleanField(default=True)

    class Meta:
        ordering = ["survey", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=QuestionKind.values), name="survey_question_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.text


class SurveyResponse(models.Model):
    """One member's answers to one survey: at most one (a unique constraint), with the points it gave."""

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="responses")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    submitted_at = models.DateTimeField()
    points = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=200, blank=True, help_text="Why no points, when none")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "member"], name="survey_response_once_per_member")]
        indexes = [models.Index(fields=["member", "survey"])]

    def __str__(self) -> str:
        return f"{self.survey_id}:{self.member_id}"


class SurveyAnswer(models.Model):
    response = models.ForeignKey(SurveyResponse, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(SurveyQuestion, on_delete=models.PROTECT, related_name="answers")
    score = models.SmallIntegerField(null=True, blank=True, help_text="Rating 1–5 or NPS 0–10")
    choices = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "question"], name="survey_answer_once_per_question"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | (Q(score__gte=0) & Q(score__lte=10)), name="survey_answer_score_range"
            ),
        ]
        indexes = [models.Index(fields=["question"])]

    def __str__(self) -> str:
        return f"{self.response_id}:{self.question_id}"
