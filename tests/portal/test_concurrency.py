"""Two clients at once on the portal (threads, each with its own PostgreSQL connection): one
join per email, one consent event per change."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from loyalty.imports.management.commands.load_demo import demo_program_configure
from loyalty.partners.models import OutboxEvent
from loyalty.portal.forms import consent_field_name
from members.models import ConsentEvent, Member
from tests.concurrency import run_together
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
