"""Survey pages: the member's list and form on the portal (another member's or a closed survey: 404;
answering twice: refused), and the staff results page and CSV export in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from loyalty.engagement.models import SurveyResponse
from loyalty.ledger.models import Account
from segments.models import Segment, SegmentMembership
from tests.engagement.conftest import answers_for
from tests.portal.conftest import logged_in, make_member

pytestmark = pytest.mark.django_db


def test_the_surveys_page_lists_open_surveys_and_the_form_gives_the_points(survey, survey_rule):
    member = make_member()
    client = logged_in(member)

    listing = client.get("/surveys/")
    assert listing.status_code == 200 and survey.title in listing.content.decode()

    form = client.get(f"/surveys/{survey.pk}/")
    assert form.status_code == 200 and "Rate the store" in form.content.decode()

    done = client.post(f"/surveys/{survey.pk}/", answers_for(survey), follow=True)
    assert done.status_code == 200 and "50 points are yours" in done.content.decode()
    assert Account.objects.get(member=member).available == 50


def test_a_second_post_is_refused_and_gives_nothing(survey, survey_rule):
    member = make_member()
    client = logged_in(member)
    client.post(f"/surveys/{survey.pk}/", answers_for(survey))

    again = client.post(f"/surveys/{survey.pk}/", answers_for(survey))

    assert again.status_code == 409 and "You answered this survey" in again.content.decode()
    assert SurveyResponse.objects.filter(member=member).count() == 1
    assert Account.objects.get(member=member).available == 50


def test_a_bad_answer_shows_on_its_question_and_changes_nothing(survey, survey_rule):
    member = make_member()
    data = answers_for(survey)
    data[f"q{survey.questions.get(position=1).pk}"] = "9"

    page = logged_in(member).post(f"/surveys/{survey.pk}/", data)

    assert page.status_code == 422 and "has-error" in page.content.decode()
    assert not SurveyResponse.objects.exists()


def test_a_survey_not_for_the_member_is_404(survey, survey_rule, now):
    segment = Segment.objects.create(name="Panel", kind="static", created_at=now, updated_at=now)
    survey.segments.add(segment)
    insider, outsider = make_member(), make_member()
    SegmentMembership.objects.create(segment=segment, member=insider, entered_at=now)

    assert logged_in(insider).get(f"/surveys/{survey.pk}/").status_code == 200
    assert logged_in(outsider).get(f"/surveys/{survey.pk}/").status_code == 404
    assert logged_in(outsider).post(f"/surveys/{survey.pk}/", answers_for(survey)).status_code == 404
    assert logged_in(outsider).get("/surveys/999999/").status_code == 404


def test_a_logged_out_visitor_is_sent_to_login(survey):
    assert Client().get(f"/surveys/{survey.pk}/").status_code == 302


def _staff(role):
    user = get_user_model().objects.create_user(f"staff-{role}", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["Marketing", "Support", "Analyst"])
def test_staff_with_view_see_the_results_and_download_the_csv(role, survey, survey_rule):
    member = make_member()
    logged_in(member).post(f"/surveys/{survey.pk}/", answers_for(survey, text="Friendly, fast"))
    client = _staff(role)

    page = client.get(f"/admin/engagement/survey/{survey.pk}/results/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "NPS" in body and "Friendly, fast" in body and "response rate" in body

    csv = client.get(f"/admin/engagement/survey/{survey.pk}/results.csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert member.member_number in b"".join(csv.streaming_content).decode()


def test_staff_without_a_role_may_not_see_results(survey):
    client = _staff("")

    assert client.get(f"/admin/engagement/survey/{survey.pk}/results/").status_code == 403
    assert client.get(f"/admin/engagement/survey/{survey.pk}/results.csv").status_code == 403


def test_marketing_builds_a_survey_in_the_admin_and_it_is_audited(now):
    from loyalty.core.models import AuditEvent
    from loyalty.ledger.selectors import program_default

    client = _staff("Marketing")
    data = {
        "program": program_default().pk,
        "title": "Checkout survey",
        "intro": "",
        "is_active": "on",
        "reward_points": "10",
        "questions-TOTAL_FORMS": "2",
        "questions-INITIAL_FORMS": "0",
        "questions-MIN_NUM_FORMS": "0",
        "questions-MAX_NUM_FORMS": "1000",
        "questions-0-position": "1",
        "questions-0-kind": "nps",
        "questions-0-text": "Recommend us?",
        "questions-0-required": "on",
        "questions-1-position": "2",
        "questions-1-kind": "single",
        "questions-1-text": "Which?",
        "questions-1-choices": "Only one",
    }

    refused = client.post("/admin/engagement/survey/add/", data)
    assert refused.status_code == 200 and "two different options" in refused.content.decode()

    data["questions-1-choices"] = "North\nSouth"
    saved = client.post("/admin/engagement/survey/add/", data)
    assert saved.status_code == 302
    assert AuditEvent.objects.filter(action="survey.created").count() == 1


def test_the_surveys_and_survey_pages_take_a_fixed_number_of_queries(
    survey, survey_rule, django_assert_max_num_queries
):
    member = make_member()
    client = logged_in(member)
    client.get("/surveys/")  # warm: sessions, configuration

    with django_assert_max_num_queries(8):
        client.get("/surveys/")
    with django_assert_max_num_queries(10):
        client.get(f"/surveys/{survey.pk}/")
