"""Two clients at once on the portal (threads, each with its own PostgreSQL connection): one
join per email, one consent event per change, one redemption per confirmation, the last item of
stock to one member, one refund per cancel, one activation per offer."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from loyalty.imports.management.commands.load_demo import demo_program_configure
from loyalty.ledger import services as ledger
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import OutboxEvent
from loyalty.portal.forms import consent_field_name
from members.models import ConsentEvent, Member
from offers.models import OfferActivation, RedemptionState, Reward, RewardRedemption
from offers.services.rewards import reward_redeem
from tests.concurrency import run_together
from tests.offers.conftest import offer_make, reward_make
from tests.portal.conftest import PASSWORD, logged_in, make_member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_join_from_8_connections_enrolls_one_member_and_sends_one_email():
    demo_program_configure()
    data = {
        "first_name": "Ada",
        "email": "ada@example.com",
        "password": PASSWORD,
        "password_again": PASSWORD,
        consent_field_name("marketing", "email"): "on",
    }

    responses = run_together(8, lambda i: Client().post("/join/", data))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [302]
    assert Member.objects.filter(email="ada@example.com").count() == 1
    assert get_user_model().objects.filter(username="ada@example.com").count() == 1
    assert OutboxEvent.objects.filter(event_type="member.enrolled").count() == 1
    assert len(mail.outbox) == 1


def test_the_same_consent_change_from_8_connections_is_recorded_once():
    demo_program_configure()
    member = make_member()
    sms = consent_field_name("marketing", "sms")
    clients = [logged_in(member) for _ in range(8)]

    responses = run_together(8, lambda i: clients[i].post("/my-data/consents/", {sms: "on"}))

    assert [r.status_code for r in responses] == [302] * 8
    assert ConsentEvent.objects.filter(member=member, purpose="marketing", channel="sms").count() == 1


def _member_with_points(points: int):

    member = make_member()
    account = ledger.account_open(member=member, program=program_default())
    ledger.points_credit(account=account, points=points, reason="test")
    return member


def test_one_reward_confirmation_sent_from_8_connections_redeems_once():

    demo_program_configure()
    member = _member_with_points(1000)
    reward = reward_make(points_cost=300)
    clients = [logged_in(member) for _ in range(8)]
    token = "ab" * 16

    responses = run_together(8, lambda i: clients[i].post(f"/rewards/{reward.pk}/redeem/", {"token": token}))

    assert [r.status_code for r in responses] == [302] * 8
    assert RewardRedemption.objects.filter(member=member).count() == 1
    assert OutboxEvent.objects.filter(event_type="reward.redeemed").count() == 1
    assert member.accounts.get().available == 700


def test_the_last_reward_in_stock_goes_to_one_of_two_members():

    demo_program_configure()
    members = [_member_with_points(500), _member_with_points(500)]
    reward = reward_make(points_cost=300, stock=1)
    clients = [logged_in(m) for m in members]

    responses = run_together(2, lambda i: clients[i].post(f"/rewards/{reward.pk}/redeem/", {"token": f"{i:x}" * 32}))

    assert sorted(r.status_code for r in responses) == [302, 409]
    assert RewardRedemption.objects.count() == 1 and Reward.objects.get(pk=reward.pk).stock == 0
    assert sorted(m.accounts.get().available for m in members) == [200, 500]


def test_one_cancel_sent_from_8_connections_refunds_once():

    demo_program_configure()
    member = _member_with_points(1000)
    done = reward_redeem(member=member, reward=reward_make(points_cost=300), channel="portal", idempotency_key="c1")
    clients = [logged_in(member) for _ in range(8)]

    responses = run_together(8, lambda i: clients[i].post(f"/wallet/rewards/{done.pk}/cancel/"))

    assert [r.status_code for r in responses] == [302] * 8
    done.refresh_from_db()
    assert done.status == RedemptionState.CANCELLED and member.accounts.get().available == 1000
    assert OutboxEvent.objects.filter(event_type="reward.cancelled").count() == 1


def test_one_activate_tap_sent_from_8_connections_activates_once():
    demo_program_configure()
    member = make_member()
    offer = offer_make(requires_activation=True)
    clients = [logged_in(member) for _ in range(8)]

    responses = run_together(8, lambda i: clients[i].post(f"/offers/{offer.pk}/activate/"))

    assert [r.status_code for r in responses] == [302] * 8
    assert OfferActivation.objects.filter(member=member, offer=offer).count() == 1
