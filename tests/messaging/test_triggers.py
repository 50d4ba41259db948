"""Transactional messages from the outbox: each event type sends its trigger's content once, with
the event's variables; the sweep can run any number of times."""

import datetime as dt

import pytest
from django.core import mail

from loyalty.activity.services.enrollment import enrollment_record
from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Lot
from loyalty.messaging import services
from loyalty.messaging.models import Content, EventHandled, Message, MessageStatus, Purpose, Trigger
from loyalty.messaging.tasks import outbox_sweep
from loyalty.partners.models import OutboxEvent
from loyalty.partners.services import outbox_record
from members.models import EnrollmentSource
from tests.messaging.conftest import make_content

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(noon):
    member = enrollment_record(source=EnrollmentSource.STAFF, email="ada@example.com", first_name="Ada")
    # the enrollment's own event counts as handled, so each test sees only the events it writes
    EventHandled.objects.bulk_create(
        [EventHandled(event_id=pk, handled_at=noon) for pk in OutboxEvent.objects.values_list("pk", flat=True)]
    )
    return member


def trigger_content(trigger, subject, body="", channels=("email",)):
    Content.objects.filter(trigger=trigger).update(is_active=False)  # the seeded default
    return make_content(
        purpose=Purpose.SERVICE, trigger=trigger, subject=subject, body=body or subject, channels=list(channels)
    )


def consume(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.outbox_consume()


def test_seeded_contents_exist_for_every_trigger():
    assert set(Content.objects.filter(is_active=True).values_list("trigger", flat=True)) >= set(Trigger.values)


def test_welcome_on_enrollment_with_the_seeded_content(member, django_capture_on_commit_callbacks):
    EventHandled.objects.all().delete()

    handled = consume(django_capture_on_commit_callbacks)

    assert handled == 1
    assert mail.outbox[0].subject == "Welcome, Ada!"
    assert member.member_number in mail.outbox[0].body
    inbox = Message.objects.get(channel="inbox")
    assert (inbox.status, inbox.source, inbox.subject) == (MessageStatus.SENT, "trigger:welcome", "Welcome, Ada!")


@pytest.mark.parametrize(
    ("event_type", "payload", "trigger", "subject", "expected"),
    [
        (
            "points.earned",
            {"points": 120},
            Trigger.POINTS_EARNED,
            "You earned {{ points }} points",
            "You earned 120 points",
        ),
        (
            "tier.upgraded",
            {"to_tier": "Gold", "to_rank": 2},
            Trigger.TIER_UP,
            "Welcome to {{ tier }}",
            "Welcome to Gold",
        ),
        ("tier.downgraded", {"to_tier": "Silver"}, Trigger.TIER_DOWN, "Now {{ tier }}", "Now Silver"),
    ],
)
def test_each_trigger_sends_its_content_with_the_events_variables(
    member, django_capture_on_commit_callbacks, event_type, payload, trigger, subject, expected
):
    trigger_content(trigger, subject)
    outbox_record(event_type=event_type, member=member, payload=payload)

    consume(django_capture_on_commit_callbacks)

    assert [m.subject for m in mail.outbox] == [expected]
    message = Message.objects.get()
    assert (message.source, message.purpose) == (f"trigger:{trigger}", "service")


def reward_and_coupon(member, noon):
    from offers.models import Coupon, CouponSource, Reward, RewardKind

    program = ledger_selectors.program_default()
    reward = Reward.objects.create(
        program=program,
        name="Free coffee",
        kind=RewardKind.values[0],
        points_cost=300,
        created_at=noon,
        updated_at=noon,
    )
    coupon = Coupon.objects.create(
        code="CF-1234",
        program=program,
        reward=reward,
        member=member,
        source=CouponSource.REWARD,
        issued_at=noon,
        expires_at=noon + dt.timedelta(days=30),
    )
    return reward, coupon


def test_reward_redeemed_names_the_reward_and_gives_the_members_coupon_code(
    member, noon, django_capture_on_commit_callbacks
):
    reward, coupon = reward_and_coupon(member, noon)
    trigger_content(Trigger.REWARD_REDEEMED, "{{ reward }} for {{ points }} points: {{ coupon_code }}")
    trigger_content(Trigger.COUPON_ISSUED, "Coupon {{ coupon_code }}")
    # what offers.services.rewards writes: ids and numbers, never the code
    outbox_record(
        event_type="reward.redeemed",
        member=member,
        payload={"member_number": member.member_number, "reward_id": reward.pk, "points": 300, "coupon_id": coupon.pk},
    )
    outbox_record(
        event_type="coupon.issued",
        member=member,
        payload={"coupon_id": coupon.pk, "reward_id": reward.pk, "source": "reward", "expires_at": coupon.expires_at},
    )

    consume(django_capture_on_commit_callbacks)

    # one message per redemption: the reward's, with the code (the coupon event of a reward adds none)
    assert [m.subject for m in mail.outbox] == ["Free coffee for 300 points: CF-1234"]


def test_coupon_issued_by_an_offer_gives_its_code_and_expiry(member, noon, django_capture_on_commit_callbacks):
    _, coupon = reward_and_coupon(member, noon)
    trigger_content(Trigger.COUPON_ISSUED, "Coupon {{ coupon_code }} for {{ reward }} until {{ expires_on }}")
    outbox_record(
        event_type="coupon.issued",
        member=member,
        payload={"coupon_id": coupon.pk, "source": "offer", "expires_at": coupon.expires_at},
    )

    consume(django_capture_on_commit_callbacks)

    assert [m.subject for m in mail.outbox] == ["Coupon CF-1234 for Free coffee until 2030-04-11"]


def test_a_coupon_of_another_member_is_never_shown(member, noon, django_capture_on_commit_callbacks):
    other = enrollment_record(source=EnrollmentSource.STAFF, email="other@example.com", first_name="Bo")
    EventHandled.objects.bulk_create(
        [EventHandled(event_id=pk, handled_at=noon) for pk in OutboxEvent.objects.values_list("pk", flat=True)],
        ignore_conflicts=True,
    )
    _, coupon = reward_and_coupon(other, noon)
    trigger_content(Trigger.COUPON_ISSUED, "Coupon [{{ coupon_code }}]")
    outbox_record(event_type="coupon.issued", member=member, payload={"coupon_id": coupon.pk, "source": "offer"})

    consume(django_capture_on_commit_callbacks)

    assert [m.subject for m in mail.outbox] == ["Coupon []"]


def test_an_event_is_consumed_once_however_often_the_sweep_runs(member, django_capture_on_commit_callbacks):
    trigger_content(Trigger.POINTS_EARNED, "Earned {{ points }}")
    event = outbox_record(event_type="points.earned", member=member, payload={"points": 5})

    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep.apply().get()
        outbox_sweep.apply().get()
    EventHandled.objects.filter(event=event).delete()  # as if the handled mark were lost: the send key still holds
    consume(django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    assert Message.objects.count() == 1


def test_events_of_other_types_or_without_content_send_nothing(member, django_capture_on_commit_callbacks):
    Content.objects.filter(trigger=Trigger.TIER_UP).update(is_active=False)
    outbox_record(event_type="tier.upgraded", member=member, payload={"to_tier": "Gold"})
    outbox_record(event_type="points.redeemed", member=member, payload={"points": 5})

    assert consume(django_capture_on_commit_callbacks) == 1  # the tier event, handled with nothing to send
    assert Message.objects.count() == 0


def test_events_older_than_the_lookback_are_not_messaged(member, django_capture_on_commit_callbacks):
    trigger_content(Trigger.POINTS_EARNED, "Earned")
    outbox_record(event_type="points.earned", member=member, payload={"points": 5})
    clock.set_now(clock.now() + dt.timedelta(days=3))

    assert consume(django_capture_on_commit_callbacks) == 0


def test_points_expiring_in_n_days_per_program_once_a_day(member, django_capture_on_commit_callbacks, noon):
    from tests.messaging.conftest import set_policy

    set_policy(expiring_days=10)
    trigger_content(Trigger.POINTS_EXPIRING, "{{ points }} points expire on {{ expires_on }}")
    account = ledger_selectors.member_account(member=member, program=ledger_selectors.program_default())
    ledger.points_credit(account=account, points=80, reason="test")
    ledger.points_credit(account=account, points=40, reason="test")
    lots = Lot.objects.filter(account=account).order_by("pk")
    Lot.objects.filter(pk=lots[0].pk).update(expires_at=noon + dt.timedelta(days=10, hours=3))
    Lot.objects.filter(pk=lots[1].pk).update(expires_at=noon + dt.timedelta(days=11))  # another day

    with django_capture_on_commit_callbacks(execute=True):
        first = services.expiring_reminders_queue()
        again = services.expiring_reminders_queue()

    assert (first, again) == (1, 0)
    assert [m.subject for m in mail.outbox] == ["80 points expire on 2030-03-22"]


def test_a_points_receipt_shows_the_balance_after_the_purchase(member, django_capture_on_commit_callbacks):
    trigger_content(Trigger.POINTS_EARNED, "Earned {{ points }}", body="Balance: {{ balance }}")
    account = ledger_selectors.member_account(member=member, program=ledger_selectors.program_default())
    ledger.points_credit(account=account, points=70, reason="test")
    outbox_record(event_type="points.earned", member=member, payload={"points": 70})

    consume(django_capture_on_commit_callbacks)

    assert mail.outbox[0].subject == "Earned 70"
    assert "Balance: 70" in mail.outbox[0].body
