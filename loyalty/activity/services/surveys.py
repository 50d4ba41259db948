"""Workflow: a member answers a survey. The answers and their reward (the program's ``survey_completed``
event rule, through ``event_award_locked``) are one transaction under the member's account lock, so of
any number of concurrent submissions exactly one stores a response, one reward and one event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from loyalty.activity.models import EventType
from loyalty.activity.services.events import event_award_locked
from loyalty.activity.services.purchases import _earning_member
from loyalty.core import clock
from loyalty.engagement.models import Survey, SurveyResponse
from loyalty.engagement.selectors.surveys import survey_open_check, survey_questions
from loyalty.engagement.services.surveys import (
    survey_answers_clean,
    survey_completed_payload,
    survey_response_create,
    survey_response_rewarded,
)
from loyalty.ledger import services as ledger
from loyalty.partners.services import outbox_record
from members.models import Member

SURVEY_COMPLETED = "survey_completed"


def survey_submit(*, member: Member, survey: Survey, data: Mapping[str, Any]) -> SurveyResponse:
    """Store the member's answers to ``survey`` and give its reward, once. Refusals change nothing:
    ``survey_answers_invalid`` (422, per field), ``survey_not_found`` (404: closed, not for this member),
    ``survey_already_answered`` (409), ``member_inactive`` (409)."""
    _earning_member(None, member)
    answers = survey_answers_clean(questions=survey_questions(survey=survey), data=data)
    kind, _ = EventType.objects.get_or_create(code=SURVEY_COMPLETED, defaults={"name": "Survey completed"})
    now = clock.now()
    with (
        transaction.atomic(durable=True),
        ledger.member_account_locked(program=survey.program, member=member) as locked,
    ):
        survey_open_check(member=member, survey=survey, now=now)
        response = survey_response_create(locked=locked, survey=survey, answers=answers, now=now)
        event = event_award_locked(
            locked=locked, kind=kind, partner=None, occurred_at=now, now=now, points=survey.reward_points
        )
        note = event.note or ("" if event.points else "no points for this survey")
        survey_response_rewarded(response=response, points=event.points, note=note)
        outbox_record(
            event_type="survey.completed",
            member=member,
            payload=survey_completed_payload(response=response, member_number=member.member_number, answers=answers),
        )
    return response
