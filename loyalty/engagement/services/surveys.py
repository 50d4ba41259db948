"""Writes of surveys: staff save surveys (audited); a member's answers are checked here and stored by
``survey_response_create`` inside the survey workflow's transaction (loyalty.activity.services.surveys),
which also gives the reward."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.services import audit_record, model_save_audited
from loyalty.engagement.models import QuestionKind, Survey, SurveyAnswer, SurveyQuestion, SurveyResponse
from loyalty.engagement.models.surveys import SCORE_RANGES
from loyalty.ledger.services import LockedAccount

SURVEY_FIELDS = ("program", "title", "intro", "is_active", "valid_from", "valid_until", "reward_points")
MAX_TEXT = 2000


@dataclass(frozen=True)
class CleanAnswer:
    question_id: int
    score: int | None = None
    choices: tuple[str, ...] = field(default_factory=tuple)
    text: str = ""


def survey_save(*, survey: Survey, actor: Any, created: bool) -> Survey:
    """Staff save a survey (the admin); audited as ``survey.created|changed``."""
    now = clock.now()
    if created:
        survey.created_at = now
    survey.updated_at = now
    if survey.valid_from and survey.valid_until and survey.valid_until <= survey.valid_from:
        raise ValidationFailed(
            "The survey must end after it starts", code="invalid_window", fields={"valid_until": ["After the start."]}
        )
    return model_save_audited(instance=survey, actor=actor, created=created, fields=SURVEY_FIELDS, action="survey")


def question_check(*, kind: str, choices: list[str]) -> None:
    """A choice question needs at least two distinct options; other kinds take none."""
    if kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
        cleaned = [c.strip() for c in choices if str(c).strip()]
        if len(cleaned) < 2 or len(set(cleaned)) != len(cleaned):
            raise ValidationFailed(
                "A choice question needs at least two different options",
                code="invalid_choices",
                fields={"choices": ["At least two different options."]},
            )
    elif choices:
        raise ValidationFailed(
            "Only choice questions have options", code="invalid_choices", fields={"choices": ["Leave empty."]}
        )


def _values(data: Mapping[str, Any], key: str) -> list[str]:
    getlist = getattr(data, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist(key)]
    value = data.get(key)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def survey_answers_clean(*, questions: list[SurveyQuestion], data: Mapping[str, Any]) -> list[CleanAnswer]:
    """The member's answers checked against the questions (keys ``q<question id>``; a QueryDict or a
    dict). Every problem is reported at once, per field, and nothing is stored: ``survey_answers_invalid``."""
    errors: dict[str, list[str]] = {}
    answers: list[CleanAnswer] = []
    for question in questions:
        key = f"q{question.pk}"
        values = [v.strip() for v in _values(data, key) if v.strip()]
        if not values:
            if question.required:
                errors[key] = ["Please answer this question."]
            continue
        if question.kind in SCORE_RANGES:
            low, high = SCORE_RANGES[question.kind]
            try:
                score = int(values[0])
            except ValueError:
                score = None
            if score is None or not low <= score <= high or len(values) > 1:
                errors[key] = [f"Choose a number from {low} to {high}."]
                continue
            answers.append(CleanAnswer(question_id=question.pk, score=score))
        elif question.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            unknown = [v for v in values if v not in question.choices]
            if unknown or (question.kind == QuestionKind.SINGLE and len(values) > 1) or len(set(values)) != len(values):
                errors[key] = [
                    "Choose one of the options."
                    if question.kind == QuestionKind.SINGLE
                    else "Choose among the options."
                ]
                continue
            ordered = tuple(c for c in question.choices if c in values)
            answers.append(CleanAnswer(question_id=question.pk, choices=ordered))
        else:
            text = values[0]
            if len(values) > 1 or len(text) > MAX_TEXT:
                errors[key] = [f"At most {MAX_TEXT} characters."]
                continue
            answers.append(CleanAnswer(question_id=question.pk, text=text))
    if errors:
        raise ValidationFailed("Some answers need another look", code="survey_answers_invalid", fields=errors)
    return answers


def survey_response_create(
    *, locked: LockedAccount, survey: Survey, answers: list[CleanAnswer], now: dt.datetime
) -> SurveyResponse:
    """Store the locked account's member's answers to ``survey``, in the caller's transaction. A second
    response of the same member is ``survey_already_answered`` (checked under the account lock, and by
    the unique constraint), and nothing is stored."""
    member = locked.member
    if SurveyResponse.objects.filter(survey=survey, member_id=member.pk).exists():
        raise Conflict("You have already answered this survey", code="survey_already_answered")
    try:
        with transaction.atomic():
            response = SurveyResponse.objects.create(survey=survey, member_id=member.pk, submitted_at=now)
    except IntegrityError:
        raise Conflict("You have already answered this survey", code="survey_already_answered") from None
    SurveyAnswer.objects.bulk_create(
        [
            SurveyAnswer(
                response=response, question_id=a.question_id, score=a.score, choices=list(a.choices), text=a.text
            )
            for a in answers
        ]
    )
    return response


def survey_response_rewarded(*, response: SurveyResponse, points: int, note: str) -> SurveyResponse:
    """What the reward gave the response (in the survey workflow's transaction)."""
    response.points = points
    response.note = note[:200]
    response.save(update_fields=["points", "note"])
    return response


def survey_completed_payload(
    *, response: SurveyResponse, member_number: str, answers: list[CleanAnswer]
) -> dict[str, Any]:
    """The ``survey.completed`` outbox payload: ids and scores, never free text (nor the options'
    wording: the question ids say which)."""
    return {
        "member_number": member_number,
        "survey_id": response.survey_id,
        "response_id": response.pk,
        "points": response.points,
        "scores": [{"question_id": a.question_id, "score": a.score} for a in answers if a.score is not None],
    }


def survey_delete(*, survey: Survey, actor: Any) -> None:
    """Staff delete a survey nobody answered (answers keep it: ``survey_has_responses``); audited."""
    with transaction.atomic():
        if SurveyResponse.objects.filter(survey=survey).exists():
            raise Conflict("Members answered this survey: close it instead", code="survey_has_responses")
        audit_record(actor=actor, action="survey.deleted", target=survey, before={"title": survey.title})
        survey.delete()
