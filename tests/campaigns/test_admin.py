"""Campaigns in the admin, per role: Marketing designs and launches, Support and Analyst read the
campaign, its results page and CSV; nobody else; a launched campaign is read-only."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from loyalty.campaigns.models import Campaign, CampaignStatus
from loyalty.campaigns.services import campaigns as services
from loyalty.core.models import AuditEvent
from tests.campaigns.conftest import make_campaign, make_content, make_program_member, make_segment, staff

pytestmark = pytest.mark.django_db
ROLES = ["Marketing", "Support", "Analyst"]


@pytest.fixture(autouse=True)
def _noon(noon):
    return noon


@pytest.fixture
def launched():
    members = [make_program_member() for _ in range(20)]
    campaign = make_campaign(include=[make_segment("all", members)], holdout_percent=50)
    return services.campaign_launch(campaign=campaign, actor="test")


def client_for(role):
    client = Client()
    client.force_login(staff(role))
    return client


@pytest.mark.parametrize("role", ROLES)
def test_results_page_shows_each_arm_and_the_uplift_to_staff_who_may_view(role, launched):
    page = client_for(role).get(reverse("admin:campaigns_campaign_results", args=[launched.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Holdout (received nothing)" in text
    assert "Each variant against the holdout (95% intervals)" in text
    assert "<svg" in text


def test_results_page_reads_a_fixed_number_of_queries(launched, django_assert_max_num_queries):
    client = client_for("Analyst")

    with django_assert_max_num_queries(25):
        client.get(reverse("admin:campaigns_campaign_results", args=[launched.pk]))


@pytest.mark.parametrize("role", ROLES)
def test_results_csv_per_role(role, launched):
    answer = client_for(role).get(reverse("admin:campaigns_campaign_results_csv", args=[launched.pk]))

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert [row[0] for row in rows[1:]] == ["holdout", "A"]
    assert sum(int(row[2]) for row in rows[1:]) == 20  # reach of the arms = the audience


@pytest.mark.parametrize("name", ["campaigns_campaign_results", "campaigns_campaign_results_csv"])
def test_staff_without_a_role_may_not_see_results(name, launched):
    assert client_for("no role").get(reverse(f"admin:{name}", args=[launched.pk])).status_code == 403


def test_results_of_an_unknown_campaign_are_404():
    assert client_for("Analyst").get(reverse("admin:campaigns_campaign_results", args=[999])).status_code == 404


@pytest.mark.parametrize("role", ["Support", "Analyst"])
def test_readers_cannot_launch_from_the_list(role):
    member = make_program_member()
    campaign = make_campaign(include=[make_segment("one", [member])])

    client_for(role).post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "launch_campaigns", "_selected_action": [campaign.pk]},
    )

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_marketing_launches_from_the_list_and_it_is_audited():
    member = make_program_member()
    campaign = make_campaign(include=[make_segment("one", [member])])

    client_for("Marketing").post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "launch_campaigns", "_selected_action": [campaign.pk]},
    )

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert AuditEvent.objects.get(action="campaign.launched").actor.username == "staff-Marketing"


def test_a_launched_campaign_cannot_be_changed_in_the_admin(launched):
    answer = client_for("Marketing").post(
        reverse("admin:campaigns_campaign_change", args=[launched.pk]), {"name": "renamed"}
    )

    assert answer.status_code == 403
    launched.refresh_from_db()
    assert launched.name == "Spring"


def test_marketing_creates_a_campaign_with_a_variant_and_it_is_audited():
    content = make_content()
    segment = make_segment("seg", [make_program_member()])
    data = {
        "program": launched_program_id(),
        "name": "Autumn",
        "goal": "More baskets",
        "segments_include": [segment.pk],
        "content": content.pk,
        "channels": ["email", "inbox"],
        "recurrence": "none",
        "frequency_cap_days": 30,
        "attribution_days": 14,
        "holdout_percent": "10",
        "variants-TOTAL_FORMS": 1,
        "variants-INITIAL_FORMS": 0,
        "variants-0-name": "Short",
        "variants-0-weight": 2,
        "runs-TOTAL_FORMS": 0,
        "runs-INITIAL_FORMS": 0,
    }

    answer = client_for("Marketing").post(reverse("admin:campaigns_campaign_add"), data)

    assert answer.status_code == 302, answer.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Autumn")
    assert campaign.channels == ["email", "inbox"]
    assert list(campaign.variants.values_list("name", "weight")) == [("Short", 2)]
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"campaign.created", "campaign.variants_changed"}


def test_bad_campaign_input_is_a_form_error_not_a_500():
    answer = client_for("Marketing").post(
        reverse("admin:campaigns_campaign_add"),
        {
            "program": launched_program_id(),
            "name": "Bad",
            "content": make_content().pk,
            "channels": ["email"],
            "recurrence": "none",
            "frequency_cap_days": 30,
            "attribution_days": 14,
            "holdout_percent": "100",
            "variants-TOTAL_FORMS": 0,
            "variants-INITIAL_FORMS": 0,
            "runs-TOTAL_FORMS": 0,
            "runs-INITIAL_FORMS": 0,
        },
    )

    assert answer.status_code == 200
    assert not Campaign.objects.filter(name="Bad").exists()


@pytest.mark.parametrize("role", ROLES)
def test_sample_size_helper_answers_members_per_arm(role):
    answer = client_for(role).get(
        reverse("admin:campaigns_campaign_sample_size"),
        {"baseline_rate": "0.05", "min_uplift": "0.01", "power": "0.8", "alpha": "0.05"},
    )

    assert answer.status_code == 200
    assert answer.context["needed"] > 1000


def test_sample_size_helper_refuses_bad_input_in_words():
    answer = client_for("Marketing").get(
        reverse("admin:campaigns_campaign_sample_size"),
        {"baseline_rate": "2", "min_uplift": "x", "power": "0.8", "alpha": "0.05"},
    )

    assert answer.status_code == 200
    assert answer.context["needed"] is None
    assert answer.context["form"].errors


def launched_program_id():
    from loyalty.ledger.selectors import program_default

    return program_default().pk


@pytest.mark.parametrize("role", ROLES)
def test_change_pages_of_a_draft_and_a_launched_campaign_open(role, launched):
    draft = make_campaign(name="Draft")
    client = client_for(role)

    for campaign in (draft, launched):
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        assert page.status_code == 200
    assert "How many members the holdout needs" in page.content.decode()
    assert "Results" in page.content.decode()


def test_results_page_of_a_draft_says_it_has_no_results_yet():
    draft = make_campaign(name="Draft")

    page = client_for("Analyst").get(reverse("admin:campaigns_campaign_results", args=[draft.pk]))

    assert page.status_code == 200
    assert "Not launched yet: no results." in page.content.decode()


def test_staff_without_a_role_may_not_open_the_sample_size_helper():
    assert client_for("no role").get(reverse("admin:campaigns_campaign_sample_size")).status_code == 403


def test_results_csv_holds_every_arm_of_the_page(launched):
    """The chart's table: the CSV rows name the same arms the page shows."""
    client = client_for("Marketing")
    page = client.get(reverse("admin:campaigns_campaign_results", args=[launched.pk]))
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(reverse("admin:campaigns_campaign_results_csv", args=[launched.pk])).content.decode()
            )
        )
    )

    assert [arm.name for arm in page.context["results"].arms] == [row[0] for row in rows[1:]]


def test_bulk_delete_keeps_a_launched_campaign_and_deletes_a_draft(launched):
    draft = make_campaign(name="Draft")
    client = client_for("Marketing")
    url = reverse("admin:campaigns_campaign_changelist")

    refused = client.post(url, {"action": "delete_selected", "_selected_action": [launched.pk], "post": "yes"})
    client.post(url, {"action": "delete_selected", "_selected_action": [draft.pk], "post": "yes"})

    assert refused.status_code in (200, 403)
    assert Campaign.objects.filter(pk=launched.pk).exists()
    assert not Campaign.objects.filter(pk=draft.pk).exists()
    assert AuditEvent.objects.filter(action="campaign.deleted").count() == 1


def test_a_service_content_is_a_form_error_on_the_content():
    from loyalty.messaging.models import Purpose

    answer = client_for("Marketing").post(
        reverse("admin:campaigns_campaign_add"),
        {
            "program": launched_program_id(),
            "name": "Service",
            "content": make_content(purpose=Purpose.SERVICE).pk,
            "channels": ["email"],
            "recurrence": "none",
            "frequency_cap_days": 30,
            "attribution_days": 14,
            "holdout_percent": "10",
            "variants-TOTAL_FORMS": 0,
            "variants-INITIAL_FORMS": 0,
            "runs-TOTAL_FORMS": 0,
            "runs-INITIAL_FORMS": 0,
        },
    )

    assert answer.status_code == 200
    assert "content" in answer.context["adminform"].form.errors
    assert not Campaign.objects.filter(name="Service").exists()
