"""A member's export includes their messages and preferences; erasure blanks the wording the
messages were rendered with and drops the preferences, keeping what results count."""

import pytest

from loyalty.messaging import services
from loyalty.messaging.models import ContactPreference, Message, Purpose
from members.services import member_erase, member_export
from tests.factories import StaffFactory
from tests.messaging.conftest import make_content, make_member

pytestmark = pytest.mark.django_db


def test_export_and_erase_cover_messages_and_preferences(noon):
    member = make_member(first_name="Mira")
    services.preference_set(member=member, time_zone="Europe/Paris")
    ids = services.messages_queue(
        content=make_content(purpose=Purpose.SERVICE),
        member_ids=[member.pk],
        channels=["email"],
        source="staff",
        key="k",
        dispatch=False,
    )
    services.messages_send(message_ids=ids)

    exported = member_export(member=member)["messaging"]
    member_erase(member=member, actor=StaffFactory(), reason="asked to be forgotten")

    assert exported["preferences"]["time_zone"] == "Europe/Paris"
    assert exported["messages"][0]["subject"] == "Hello Mira"
    message = Message.objects.get(pk=ids[0])
    assert (message.subject, message.body, message.status) == ("", "", "sent")
    assert not ContactPreference.objects.filter(member=member).exists()
