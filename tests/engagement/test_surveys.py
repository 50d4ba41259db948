"""Surveys: members answer once, the answer and its reward (the survey_completed event rule) are one
transaction, refusals change nothing, results for staff (response rate, distributions, NPS with its
interval, free text with segment and tier), and the outbox never carries free text."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.activity.models import MemberEvent
from loyalty.activity.services import survey_submit
from loyalty.core.errors import Conflict, NotFound, ValidationFailed
from loyalty.engagement.models import SurveyAnswer, SurveyResponse
from loyalty.engagement.selectors.surveys import (
    nps_of,
    survey_results,
    survey_results_rows,
    surveys_open_for,
)
from loyalty.ledger.models import Account
from loyalty.partners.models import OutboxEvent
from loyalty.tiers.models import Tier
from segments.models import Segment, SegmentMembership
from tests.engagement.conftest import T, answers_for

pytestmark = pytest.mark.django_db


def _balance(member):
    return Account.objects.get(member=member).available


def test_answering_stores_the_answers_and_gives_the_event_rules_points_once(enroll, survey, survey_rule):
    member = enroll()

    response = survey_submit(member=member, survey=survey, data=answers_for(survey))

    assert response.points == 50 and _balance(member) == 50
    assert SurveyAnswer.objects.filter(response=response).count() == 5
    assert MemberEvent.objects.filter(member=member, event_type__code="survey_completed", points=50).count() == 1


def test_answering_twice_is_refused_without_a_second_reward(enroll, survey, survey_rule):
    member = enroll()
    survey_submit(member=member, survey=survey, data=answers_for(survey))

    with pytest.raises(Conflict) as refused:
        survey_submit(member=member, survey=survey, data=answers_for(survey, rating=1))

    assert refused.value.code == "survey_already_answered"
    assert SurveyResponse.objects.filter(member=member).count() == 1 and _balance(member) == 50
    assert MemberEvent.objects.filter(member=member).count() == 1


def test_a_surveys_own_reward_points_replace_the_rules_points(enroll, survey, survey_rule):
    survey.reward_points = 120
    survey.save()
    member = enroll()

    assert survey_submit(member=member, survey=survey, data=answers_for(survey)).points == 120
    assert _balance(member) == 120


def test_the_event_rules_lifetime_limit_still_applies_to_surveys(enroll, survey, survey_rule):
    survey_rule.limit_lifetime = 0
    survey_rule.save()
    member = enroll()

    response = survey_submit(member=member, survey=survey, data=answers_for(survey))

    assert response.points == 0 and "lifetime limit" in response.note and _balance(member) == 0


def test_bad_answers_get_an_error_per_question_and_change_nothing(enroll, survey, survey_rule):
    member = enroll()
    q = {question.position: question.pk for question in survey.questions.all()}
    data = {f"q{q[1]}": "6", f"q{q[2]}": "ten", f"q{q[3]}": "East", f"q{q[4]}": ["Milk", "Beer"]}

    with pytest.raises(ValidationFailed) as refused:
        survey_submit(member=member, survey=survey, data=data)

    assert refused.value.code == "survey_answers_invalid"
    assert set(refused.value.fields) == {f"q{q[1]}", f"q{q[2]}", f"q{q[3]}", f"q{q[4]}"}
    assert not SurveyResponse.objects.exists() and _balance(member) == 0


def test_a_required_question_left_empty_is_refused(enroll, survey, survey_rule):
    data = answers_for(survey)
    rating = survey.questions.get(position=1)
    data.pop(f"q{rating.pk}")

    with pytest.raises(ValidationFailed) as refused:
        survey_submit(member=enroll(), survey=survey, data=data)

    assert refused.value.fields == {f"q{rating.pk}": ["Please answer this question."]}


def test_a_closed_or_expired_survey_is_not_found(enroll, survey, survey_rule):
    member = enroll()
    survey.valid_until = T - dt.timedelta(days=1)
    survey.valid_from = T - dt.timedelta(days=10)
    survey.save()

    with pytest.raises(NotFound):
        survey_submit(member=member, survey=survey, data=answers_for(survey))
    assert surveys_open_for(member=member) == []


def test_a_survey_targeted_at_a_segment_or_tier_is_only_for_its_members(enroll, survey, survey_rule, now):
    inside, outside = enroll(), enroll()
    segment = Segment.objects.create(name="Survey panel", kind="static", created_at=now, updated_at=now)
    SegmentMembership.objects.create(segment=segment, member=inside, entered_at=now)
    survey.segments.add(segment)

    assert surveys_open_for(member=inside) == [survey]
    assert surveys_open_for(member=outside) == []
    with pytest.raises(NotFound):
        survey_submit(member=outside, survey=survey, data=answers_for(survey))

    survey.segments.clear()
    gold = Tier.objects.create(program=survey.program, name="Gold survey tier", rank=9)
    survey.tiers.add(gold)
    assert surveys_open_for(member=inside) == []


def test_an_answered_survey_leaves_the_members_list(enroll, survey, survey_rule):
    member = enroll()
    assert surveys_open_for(member=member) == [survey]

    survey_submit(member=member, survey=survey, data=answers_for(survey))

    assert surveys_open_for(member=member) == []


def test_the_outbox_event_carries_ids_and_scores_never_free_text(enroll, survey, survey_rule):
    member = enroll()
    secret = "my neighbour Bob is awful"

    response = survey_submit(member=member, survey=survey, data=answers_for(survey, text=secret))

    event = OutboxEvent.objects.get(event_type="survey.completed")
    assert event.payload["response_id"] == response.pk and event.payload["survey_id"] == survey.pk
    assert sorted(s["score"] for s in event.payload["scores"]) == [4, 9]
    assert secret not in str(event.payload) and "North" not in str(event.payload)


# --- results ---------------------------------------------------------------------------------------


def test_nps_is_promoters_less_detractors_with_the_multinomial_interval():
    # 5 promoters, 3 passives, 2 detractors of 10: NPS 30; p=.5, d=.2: var = (.7 - .09)/10 = .061
    result = nps_of([10, 9, 9, 10, 9, 8, 7, 7, 3, 6])

    assert (result.promoters, result.passives, result.detractors, result.score) == (5, 3, 2, 30.0)
    assert result.margin == 48.4  # 100 x 1.96 x sqrt(.061) = 48.41
    assert (result.low, result.high) == (-18.4, 78.4)


def test_nps_of_no_answers_is_empty_and_its_interval_stays_within_100():
    assert nps_of([]).score is None
    assert nps_of([10, 10]).high == 100.0 and nps_of([10, 10]).margin == 0.0


def test_results_give_the_response_rate_distributions_and_free_text_with_segment_and_tier(
    enroll, survey, survey_rule, now
):
    first, second, third, fourth = enroll(), enroll(), enroll(), enroll()
    segment = Segment.objects.create(name="Weekend shoppers", kind="static", created_at=now, updated_at=now)
    SegmentMembership.objects.create(segment=segment, member=first, entered_at=now)
    survey_submit(member=first, survey=survey, data=answers_for(survey, rating=5, nps=10, text="Great bread"))
    survey_submit(member=second, survey=survey, data=answers_for(survey, rating=3, nps=5, store="South", text=""))

    results = survey_results(survey=survey)

    assert (results.targeted, results.responses, results.response_rate, results.points) == (4, 2, 50.0, 100)
    rating, nps, store, bought, text = results.questions
    assert rating.distribution == [("1", 0, 0.0), ("2", 0, 0.0), ("3", 1, 50.0), ("4", 0, 0.0), ("5", 1, 50.0)]
    assert rating.mean == 4.0
    assert (nps.nps.promoters, nps.nps.detractors, nps.nps.score) == (1, 1, 0.0)
    assert store.distribution == [("North", 1, 50.0), ("South", 1, 50.0)]
    assert bought.distribution == [("Bread", 0, 0.0), ("Milk", 2, 100.0), ("Fruit", 0, 0.0)]
    assert [(t["text"], t["segments"]) for t in text.texts] == [("Great bread", "Weekend shoppers")]
    assert third and fourth  # targeted, not answered


def test_the_csv_rows_are_one_per_response_with_a_column_per_question(enroll, survey, survey_rule):
    member = enroll()
    survey_submit(member=member, survey=survey, data=answers_for(survey, bought=("Bread", "Milk")))

    header, rows = survey_results_rows(survey=survey)
    rows = list(rows)

    assert header[:4] == ["response_id", "member_number", "submitted_at", "points"] and len(header) == 9
    assert rows[0][1] == member.member_number and rows[0][4:] == ["4", "9", "North", "Bread | Milk", "Lovely staff"]


def test_a_members_export_lists_their_answers_and_erasure_blanks_their_free_text(enroll, survey, survey_rule):
    from members.services import member_erase, member_export

    member = enroll()
    survey_submit(member=member, survey=survey, data=answers_for(survey, text="Call me on 555-0100"))

    exported = member_export(member=member)["surveys_referrals"]["surveys"]
    assert (
        exported[0]["survey"] == survey.title
        and {"question": "Anything else?", "answer": "Call me on 555-0100"} in (exported[0]["answers"])
    )

    member_erase(member=member, actor=None, reason="member asked")

    assert not SurveyAnswer.objects.exclude(text="").exists()
    assert SurveyAnswer.objects.filter(score__isnull=False).count() == 2  # scores stay, anonymous
