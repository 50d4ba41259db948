"""The portal's inbox: sent inbox messages of the member, newest first; the banner is the newest
unread one whose content is a banner; reading it removes the banner."""

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.messaging import selectors, services
from loyalty.messaging.models import Purpose
from tests.messaging.conftest import make_content, make_member

pytestmark = pytest.mark.django_db


def deliver(content, member, key):
    ids = services.messages_queue(
        content=content, member_ids=[member.pk], channels=["inbox"], source="staff", key=key, dispatch=False
    )
    services.messages_send(message_ids=ids)
    return ids[0]


def test_inbox_lists_sent_messages_newest_first_and_the_banner_until_read(noon):
    member = make_member(marketing=("",))
    other = make_member(marketing=("",))
    plain = deliver(make_content(purpose=Purpose.SERVICE, subject="Receipt"), member, "a")
    clock.set_now(noon + dt.timedelta(minutes=1))
    banner = deliver(make_content(subject="Spring sale", banner=True), member, "b")
    deliver(make_content(subject="Not yours", banner=True), other, "c")

    assert [m.subject for m in selectors.inbox_messages(member=member)] == ["Spring sale", "Receipt"]
    assert selectors.inbox_unread_count(member=member) == 2
    assert selectors.inbox_banner(member=member).pk == banner

    services.inbox_mark_read(member=member, message_id=banner)

    assert selectors.inbox_banner(member=member) is None
    assert selectors.inbox_unread_count(member=member) == 1
    assert plain in [m.pk for m in selectors.inbox_messages(member=member)]
