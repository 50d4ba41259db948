"""Surveys and invites in a real browser (Debian's Chromium at phone width): a member opens Surveys
from the tabs, answers a survey and gets the points; the invite page shows the link and its share
button works without inline script (copy where the Web Share API is missing). Every page passes
axe-core, fits 360 px and keeps the Content-Security-Policy."""

from __future__ import annotations

import pytest

from loyalty.activity.models import EventRule, EventType
from loyalty.core import clock
from loyalty.engagement.models import QuestionKind, ReferralSettings, Survey, SurveyQuestion
from loyalty.imports.management.commands.load_demo import demo_program_configure
from loyalty.ledger.models import Account
from tests.e2e.conftest import check_page, log_in
from tests.portal.conftest import PASSWORD, make_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def program(transactional_db):
    return demo_program_configure()


def _survey(program):
    now = clock.now()
    EventRule.objects.create(program=program, event_type=EventType.objects.get(code="survey_completed"), points=40)
    survey = Survey.objects.create(
        program=program, title="Your last visit", intro="Two minutes.", is_active=True, created_at=now, updated_at=now
    )
    SurveyQuestion.objects.create(survey=survey, position=1, kind=QuestionKind.RATING, text="How was the store?")
    SurveyQuestion.objects.create(survey=survey, position=2, kind=QuestionKind.NPS, text="Would you recommend us?")
    SurveyQuestion.objects.create(
        survey=survey, position=3, kind=QuestionKind.TEXT, text="Anything to tell us?", required=False
    )
    return survey


def test_a_member_answers_a_survey_and_gets_the_points(phone, program):
    _survey(program)
    member = make_member()
    page = phone
    log_in(page, member.email, PASSWORD)

    page.get_by_role("link", name="Surveys").click()
    check_page(page, "surveys")
    page.get_by_role("link", name="Your last visit").click()
    check_page(page, "survey-form")
    page.get_by_role("group", name="How was the store?").get_by_label("4", exact=True).check()
    page.get_by_role("group", name="Would you recommend us?").get_by_label("9", exact=True).check()
    page.get_by_label("Anything to tell us?").fill("Quick checkout")
    page.get_by_role("button", name="Send my answers").click()

    page.wait_for_url("**/surveys/")
    assert page.get_by_text("Thank you! 40 points are yours.").is_visible()
    check_page(page, "surveys-answered")
    assert Account.objects.get(member=member).available == 40


def test_the_invite_page_shares_or_copies_the_link(phone, program):
    ReferralSettings.objects.create(program=program, updated_at=clock.now())
    member = make_member()
    page = phone
    log_in(page, member.email, PASSWORD)

    page.get_by_role("link", name="Invite").click()
    check_page(page, "invite")
    assert member.referral_code in page.locator("#referral-link").input_value()
    page.get_by_role("button", name="my link").click()
    page.wait_for_function("document.getElementById('share-status').textContent.length > 0")
    assert page.csp.violations == []
