"""Admin: marketing writes contents (audited, service contents refused an offer on the form),
previews a content for a chosen member; deliveries are read-only for every role."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from loyalty.core.models import AuditEvent
from loyalty.messaging.models import Content
from tests.messaging.conftest import make_content, make_member

pytestmark = pytest.mark.django_db


def client_for(role: str) -> Client:
    user = get_user_model().objects.create_user(f"staff-{role}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


CONTENT_FORM = {
    "name": "Spring",
    "purpose": "marketing",
    "is_active": "on",
    "subject": "Spring, {{ first_name }}",
    "body": "Double points",
    "link_text": "",
    "link_url": "",
    "trigger": "",
    "channels": "[]",
}


def test_marketing_adds_a_content_and_the_change_is_audited(noon):
    response = client_for("Marketing").post("/admin/messaging/content/add/", CONTENT_FORM)

    assert response.status_code == 302, response.content[:2000]
    content = Content.objects.get(name="Spring")
    assert AuditEvent.objects.filter(action="messaging.content.created", target_id=str(content.pk)).exists()


def test_a_transactional_content_must_be_a_service_message_form_error_not_500(noon):
    response = client_for("Marketing").post("/admin/messaging/content/add/", CONTENT_FORM | {"trigger": "welcome"})

    assert response.status_code == 200
    assert b"Transactional messages are service messages." in response.content
    assert not Content.objects.filter(name="Spring").exists()


@pytest.mark.parametrize("role", ["Marketing", "Support", "Analyst"])
def test_every_role_may_preview_a_content_for_a_chosen_member(role, noon):
    content = make_content(subject="Hi {{ first_name }}", body="{{ first_name }} has {{ balance }} points")
    member = make_member(first_name="Grace")

    response = client_for(role).get(
        f"/admin/messaging/content/{content.pk}/preview/", {"member_number": member.member_number}
    )

    assert response.status_code == 200
    assert b"Hi Grace" in response.content
    assert response.content.count(b"Grace has") >= 4  # email, SMS, push, inbox


def test_preview_with_an_unknown_member_number_is_a_form_error(noon):
    content = make_content()
    response = client_for("Marketing").get(
        f"/admin/messaging/content/{content.pk}/preview/", {"member_number": "123456789012"}
    )

    assert response.status_code == 200
    assert b"errorlist" in response.content


@pytest.mark.parametrize("role", ["Support", "Analyst"])
def test_support_and_analyst_cannot_change_contents(role, noon):
    content = make_content()
    response = client_for(role).post(f"/admin/messaging/content/{content.pk}/change/", CONTENT_FORM)

    assert response.status_code == 403


def test_every_messaging_screen_renders(noon):
    from loyalty.messaging import services
    from tests.factories import StaffFactory

    member = make_member(marketing=("email",))
    content = make_content()
    services.messages_queue(
        content=content, member_ids=[member.pk], channels=["email"], source="staff", key="k", dispatch=False
    )
    services.preference_set(member=member, time_zone="Europe/Paris")
    client = Client()
    client.force_login(StaffFactory())

    for url in (
        "/admin/messaging/content/",
        f"/admin/messaging/content/{content.pk}/change/",
        "/admin/messaging/message/?status__exact=queued",
        "/admin/messaging/contactpreference/",
        f"/admin/messaging/contactpreference/{member.contact_preference.pk}/change/",
        "/admin/messaging/messagingpolicy/add/",
    ):
        assert client.get(url).status_code == 200, url
