"""Open pixel, tracked clicks and the one-click unsubscribe: signed tokens, no open redirect,
consent withdrawn through the members' consent service, RFC 8058 headers on marketing email."""

import pytest
from django.core import mail
from django.test import Client

from loyalty.messaging import services, tracking
from loyalty.messaging.models import Message, MessageStatus, Purpose, Reason
from members.models import ConsentEvent
from members.selectors import consent_granted
from tests.messaging.conftest import make_content, make_member

pytestmark = pytest.mark.django_db


def sent_message(channel="email", purpose=Purpose.MARKETING, key="k", member=None):
    member = member or make_member(marketing=("email", ""))
    content = make_content(purpose=purpose, link_url="https://shop.example/deal?x=1", link_text="See the deal")
    ids = services.messages_queue(
        content=content, member_ids=[member.pk], channels=[channel], source="staff", key=key, dispatch=False
    )
    services.messages_send(message_ids=ids)
    message = Message.objects.get(pk=ids[0])
    assert message.status == MessageStatus.SENT
    return message


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_marketing_email_carries_rfc8058_one_click_headers(noon):
    message = sent_message()
    headers = mail.outbox[0].extra_headers

    assert headers["List-Unsubscribe"] == f"<{tracking.unsubscribe_url(message.pk)}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert tracking.unsubscribe_url(message.pk) in mail.outbox[0].body


def test_open_pixel_counts_opens_and_answers_a_gif(noon):
    message = sent_message()
    url = path_of(tracking.open_url(message.pk))
    assert url in mail.outbox[0].alternatives[0][0]

    first, second = Client().get(url), Client().get(url)
    assert second.status_code == 200

    assert first.status_code == 200 and first["Content-Type"] == "image/gif"
    message.refresh_from_db()
    assert message.open_count == 2 and message.opened_at == noon


def test_tampered_tokens_are_refused_and_count_nothing(noon):
    message = sent_message()
    token = tracking.token_make("open", message.pk)
    # another message's id under this message's signature
    forged = tracking.token_make("open", message.pk + 1).split(":")[0] + ":" + token.split(":")[1]

    assert Client().get(f"/m/o/{token[:-2]}xx.gif").status_code == 404
    assert Client().get(f"/m/o/{forged}.gif").status_code == 404
    assert Client().get(f"/m/o/{token}.gif").status_code == 200
    message.refresh_from_db()
    assert message.open_count == 1


def test_a_token_of_one_kind_is_not_valid_for_another(noon):
    message = sent_message()
    open_token = tracking.token_make("open", message.pk)

    assert Client().post(f"/m/u/{open_token}/").status_code == 404
    assert consent_granted(member=message.member, purpose="marketing", channel="email")


def test_click_redirects_to_the_link_the_message_was_rendered_with(noon):
    message = sent_message()
    url = path_of(tracking.click_url(message.pk, 0))
    assert url in mail.outbox[0].alternatives[0][0]

    response = Client().get(url)

    assert response.status_code == 302 and response["Location"] == "https://shop.example/deal?x=1"
    message.refresh_from_db()
    assert (message.click_count, message.clicked_at, message.opened_at) == (1, noon, noon)


def test_click_is_no_open_redirect(noon):
    message = sent_message()
    beyond = tracking.token_make("click", message.pk, 1)  # signed, but the message has one link

    assert Client().get(f"/m/c/{beyond}/").status_code == 404
    assert Client().get(f"/m/c/{beyond}/?next=https://evil.example/").status_code == 404
    assert Client().get("/m/c/https:%2F%2Fevil.example/").status_code == 404


def test_unsubscribe_get_asks_and_changes_nothing(noon):
    message = sent_message()
    response = Client().get(path_of(tracking.unsubscribe_url(message.pk)))

    assert response.status_code == 200 and b"<form" in response.content
    assert consent_granted(member=message.member, purpose="marketing", channel="email")


def test_one_click_unsubscribe_withdraws_that_channels_consent_once(noon):
    message = sent_message()
    url = path_of(tracking.unsubscribe_url(message.pk))
    client = Client(enforce_csrf_checks=True)  # the mail client's POST has no CSRF token

    response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    member = message.member
    assert not consent_granted(member=member, purpose="marketing", channel="email")
    assert ConsentEvent.objects.filter(member=member, granted=False, source="unsubscribe_link").count() == 1
    message.refresh_from_db()
    assert message.unsubscribed_at == noon


def test_after_unsubscribing_marketing_email_is_suppressed_but_other_channels_and_service_go(noon):
    message = sent_message()
    member = message.member
    Client().post(path_of(tracking.unsubscribe_url(message.pk)))

    again = sent_message(key="again", member=member, channel="inbox")  # all-channels consent still on
    ids = services.messages_queue(
        content=make_content(), member_ids=[member.pk], channels=["email"], source="staff", key="x", dispatch=False
    )
    services.messages_send(message_ids=ids)
    receipt = sent_message(key="receipt", member=member, purpose=Purpose.SERVICE)

    assert Message.objects.get(pk=ids[0]).reason == Reason.NO_CONSENT
    assert again.status == receipt.status == MessageStatus.SENT


def test_service_messages_have_no_unsubscribe(noon):
    message = sent_message(purpose=Purpose.SERVICE)
    token = tracking.token_make("unsubscribe", message.pk)

    assert Client().post(f"/m/u/{token}/").status_code == 404
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


def test_inbox_read_only_by_its_member(noon):
    message = sent_message(channel="inbox")
    other = make_member()

    with pytest.raises(Exception) as refused:
        services.inbox_mark_read(member=other, message_id=message.pk)
    services.inbox_mark_read(member=message.member, message_id=message.pk)

    assert refused.value.code == "message_not_found"
    message.refresh_from_db()
    assert message.read_at == noon


def test_outcomes_per_campaign_variant_count_sent_opened_clicked_and_unsubscribed(noon):
    from loyalty.messaging import selectors

    content = make_content(link_url="https://shop.example/a")
    members = [make_member(marketing=("email",)) for _ in range(3)]
    no_consent = make_member()
    ids = services.messages_queue(
        content=content,
        member_ids=[m.pk for m in [*members, no_consent]],
        channels=["email"],
        source="campaign",
        key="campaign:9:A",
        campaign_id=9,
        variant="A",
        dispatch=False,
    )
    services.messages_send(message_ids=ids)
    first, second = ids[0], ids[1]
    Client().get(path_of(tracking.open_url(first)))
    Client().get(path_of(tracking.click_url(second, 0)))
    Client().post(path_of(tracking.unsubscribe_url(second)))

    [row] = selectors.message_outcomes(campaign_id=9)

    assert row == {
        "variant": "A",
        "channel": "email",
        "messages": 4,
        "sent": 3,
        "delivered": 3,
        "suppressed": 1,
        "failed": 0,
        "bounced": 0,
        "opened": 2,
        "clicked": 1,
        "unsubscribed": 1,
    }
