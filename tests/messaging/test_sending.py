"""Queue and send: consent, preferences, quiet hours and caps decided at send time, every message
not sent recorded as suppressed with its reason; the send key makes a retried task send once."""

import datetime as dt

import pytest
from django.core import mail
from django.db import IntegrityError

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.messaging import services
from loyalty.messaging.models import Message, MessageStatus, Purpose, Reason
from loyalty.messaging.tasks import messages_send_batch
from tests.messaging.conftest import make_content, make_member, set_policy

pytestmark = pytest.mark.django_db


def queue(content, members, channels=("email",), key="k", **kwargs):
    return services.messages_queue(
        content=content,
        member_ids=[m.pk for m in members],
        channels=list(channels),
        source="staff",
        key=key,
        dispatch=False,
        **kwargs,
    )


def send(content, members, channels=("email",), key="k", **kwargs):
    ids = queue(content, members, channels, key, **kwargs)
    services.messages_send(message_ids=ids)
    return list(Message.objects.filter(pk__in=ids).order_by("pk"))


def test_marketing_email_with_consent_is_sent_with_the_members_variables(noon):
    member = make_member(first_name="Ada", marketing=("email",))
    [message] = send(make_content(), [member])

    assert (message.status, message.reason) == (MessageStatus.SENT, "")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Hello Ada"
    assert mail.outbox[0].to == [member.email]
    assert "Ada, you have" in mail.outbox[0].body


def test_marketing_without_consent_is_suppressed_and_nothing_is_sent(noon):
    member = make_member()
    [message] = send(make_content(), [member])

    assert (message.status, message.reason) == (MessageStatus.SUPPRESSED, Reason.NO_CONSENT)
    assert mail.outbox == []


def test_consent_on_another_channel_does_not_allow_email(noon):
    member = make_member(marketing=("sms",))
    email, sms = send(make_content(), [member], channels=("email", "sms"))

    assert (email.status, email.reason) == (MessageStatus.SUPPRESSED, Reason.NO_CONSENT)
    assert sms.status == MessageStatus.SENT


def test_service_message_needs_no_marketing_consent(noon):
    member = make_member()
    [message] = send(make_content(purpose=Purpose.SERVICE), [member])

    assert message.status == MessageStatus.SENT
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers  # nothing to unsubscribe from


def test_quiet_hours_in_the_members_time_zone_suppress_marketing(noon):
    set_policy(quiet_start=dt.time(21, 0), quiet_end=dt.time(8, 0))
    in_tokyo = make_member(marketing=("email",))
    services.preference_set(member=in_tokyo, time_zone="Asia/Tokyo")  # 21:00 there
    in_utc = make_member(marketing=("email",))  # program default: UTC, 12:00

    tokyo, utc = send(make_content(), [in_tokyo, in_utc])

    assert (tokyo.status, tokyo.reason) == (MessageStatus.SUPPRESSED, Reason.QUIET_HOURS)
    assert utc.status == MessageStatus.SENT


def test_the_programs_time_zone_applies_to_members_without_one(noon):
    set_policy(time_zone="Asia/Tokyo", quiet_start=dt.time(21, 0), quiet_end=dt.time(8, 0))
    [message] = send(make_content(), [make_member(marketing=("email",))])

    assert message.reason == Reason.QUIET_HOURS


def test_a_channel_the_member_turned_off_is_suppressed_even_for_service_messages(noon):
    member = make_member()
    services.preference_set(member=member, sms_enabled=False)
    [message] = send(make_content(purpose=Purpose.SERVICE), [member], channels=("sms",))

    assert (message.status, message.reason) == (MessageStatus.SUPPRESSED, Reason.CHANNEL_OFF)


def test_no_phone_number_means_no_sms(noon):
    [message] = send(make_content(purpose=Purpose.SERVICE), [make_member(phone="")], channels=("sms",))

    assert message.reason == Reason.NO_ADDRESS


def test_the_weekly_cap_counts_marketing_messages_of_the_last_seven_days(noon):
    set_policy(email_weekly_cap=2)
    member = make_member(marketing=("email",))
    content = make_content()
    first = send(content, [member], key="a")[0]
    clock.set_now(noon + dt.timedelta(days=1))
    second = send(content, [member], key="b")[0]
    third = send(content, [member], key="c")[0]
    send(make_content(purpose=Purpose.SERVICE), [member], key="receipt")  # not counted, not capped
    clock.set_now(noon + dt.timedelta(days=7, seconds=1))  # the first leaves the window
    fourth = send(content, [member], key="d")[0]

    assert [m.status for m in (first, second, third, fourth)] == ["sent", "sent", "suppressed", "sent"]
    assert third.reason == Reason.FREQUENCY_CAP


def test_a_batch_with_several_messages_to_one_member_counts_each_against_the_cap(noon):
    set_policy(sms_weekly_cap=1)
    member = make_member(marketing=("",))
    content = make_content()
    ids = queue(content, [member], ("sms",), key="x") + queue(content, [member], ("sms",), key="y")
    services.messages_send(message_ids=ids)

    assert sorted(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == ["sent", "suppressed"]


def test_the_same_task_run_twice_sends_once(noon):
    member = make_member(marketing=("email",))
    ids = queue(make_content(), [member])

    first = messages_send_batch.apply(args=[ids]).get()
    second = messages_send_batch.apply(args=[ids]).get()  # a redelivered task (acks_late)

    assert (first["sent"], second["sent"], second["skipped"]) == (1, 0, 1)
    assert len(mail.outbox) == 1


def test_queuing_the_same_key_twice_queues_once(noon):
    member = make_member(marketing=("email",))
    content = make_content()
    first = queue(content, [member], key="campaign-7")
    again = queue(content, [member], key="campaign-7")

    assert len(first) == 1 and again == []
    assert Message.objects.count() == 1


def test_queue_dispatches_after_commit_through_celery(noon, django_capture_on_commit_callbacks):
    member = make_member(marketing=("",))  # the inbox follows consent for all channels
    with django_capture_on_commit_callbacks(execute=True):
        services.messages_queue(
            content=make_content(), member_ids=[member.pk], channels=["email", "inbox"], source="staff", key="k"
        )

    assert sorted(Message.objects.values_list("channel", "status")) == [("email", "sent"), ("inbox", "sent")]
    assert len(mail.outbox) == 1


def test_campaign_keys_are_kept_for_attribution(noon):
    member = make_member(marketing=("email",))
    [message] = send(make_content(), [member], campaign_id=42, variant="B", key="campaign:42")

    assert (message.campaign_id, message.variant, message.source) == (42, "B", "staff")


def test_a_provider_failure_is_recorded_as_failed(noon, settings):
    settings.EMAIL_BACKEND = "tests.messaging.failing_backend.FailingBackend"
    [message] = send(make_content(purpose=Purpose.SERVICE), [make_member()])

    assert (message.status, message.reason) == (MessageStatus.FAILED, Reason.PROVIDER_ERROR)
    assert "refused" in message.error


def test_a_claim_without_outcome_is_closed_as_interrupted_not_sent_again(noon):
    member = make_member(marketing=("email",))
    ids = queue(make_content(), [member])
    Message.objects.filter(pk__in=ids).update(status=MessageStatus.SENDING, claimed_at=noon)
    clock.set_now(noon + dt.timedelta(minutes=16))

    assert services.messages_claims_expire() == 1
    services.messages_send(message_ids=ids)
    assert Message.objects.get(pk=ids[0]).reason == Reason.INTERRUPTED
    assert mail.outbox == []


def test_a_redelivered_batch_sends_its_claims_again_only_where_the_provider_drops_repeats(noon, settings):
    """A task redelivered after its worker died (between the claim and the outcome) sends its
    inbox/SMS-gateway claims again with the same send key; an email claim is never sent twice."""
    set_policy(sms_weekly_cap=1, email_weekly_cap=1)
    member = make_member(marketing=("",))
    ids = queue(make_content(), [member], channels=("email", "inbox"))
    Message.objects.filter(pk__in=ids).update(status=MessageStatus.SENDING, claimed_at=noon)

    result = services.messages_send(message_ids=ids, resume=True)

    statuses = dict(Message.objects.filter(pk__in=ids).values_list("channel", "status"))
    assert statuses == {"email": MessageStatus.SENDING, "inbox": MessageStatus.SENT}
    assert (result.sent, result.suppressed, result.skipped) == (1, 0, 1)  # its own claim counts once: not capped
    assert mail.outbox == []
    assert services.messages_send(message_ids=ids).sent == 0  # not redelivered: claims are left alone


def test_a_service_content_cannot_promote_an_offer_or_reward():
    with pytest.raises(ValidationFailed) as refused:
        services.content_validate(values={"purpose": "service", "offer_id": 1, "subject": "s", "body": "b"})
    assert refused.value.code == "service_message_promotes"


def test_marketing_in_the_inbox_needs_consent_for_all_channels(noon):
    email_only = make_member(marketing=("email",))
    [message] = send(make_content(), [email_only], channels=("inbox",))

    assert message.reason == Reason.NO_CONSENT


def test_the_database_refuses_a_service_content_with_a_reward(noon):
    from loyalty.ledger import selectors as ledger_selectors
    from offers.models import Reward, RewardKind

    reward = Reward.objects.create(
        program=ledger_selectors.program_default(),
        name="Mug",
        kind=RewardKind.values[0],
        points_cost=100,
        created_at=noon,
        updated_at=noon,
    )
    with pytest.raises(IntegrityError):
        make_content(purpose=Purpose.SERVICE, reward=reward)


def test_a_content_with_a_template_error_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        services.content_validate(values={"purpose": "marketing", "subject": "{% if %}", "body": "b"})
    assert refused.value.fields == {"subject": [refused.value.fields["subject"][0]]}


def test_one_content_gives_the_same_wording_on_every_channel(noon):
    member = make_member(first_name="Lin", marketing=("",))
    content = make_content(body="Double points on coffee, {{ first_name }}", link_url="https://shop.example/coffee")
    messages = send(content, [member], channels=("email", "sms", "push", "inbox"))

    assert all(m.status == MessageStatus.SENT for m in messages)
    assert all("Double points on coffee, Lin" in m.body for m in messages)
    assert all(m.links == ["https://shop.example/coffee"] for m in messages)
    assert "Double points on coffee, Lin" in mail.outbox[0].alternatives[0][0]


def test_the_send_sweep_sends_queued_messages_no_task_took(noon):
    from loyalty.messaging.tasks import send_sweep

    member = make_member(marketing=("email",))
    ids = queue(make_content(), [member])  # queued, never dispatched (a lost task)
    assert send_sweep.apply().get() == 0  # too fresh: its own task may still come
    clock.set_now(noon + dt.timedelta(minutes=2))

    send_sweep.apply().get()

    assert Message.objects.get(pk=ids[0]).status == MessageStatus.SENT
    assert len(mail.outbox) == 1
