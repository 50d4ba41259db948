"""Members with portal logins, a configured program (the demo's: 14-day return window, points
expiring after 12 months, tiers Member / Silver 1,500 / Gold 5,000 spent, a few earning rules) and
purchases made through the purchase workflow."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from loyalty.activity.services import enrollment_record, purchase_record
from loyalty.core import clock
from loyalty.imports.management.commands.load_demo import demo_program_configure
from members.models import EnrollmentSource
from members.services import member_link_user

PASSWORD = "a-long-member-pass-42"
_numbers = itertools.count(1)


@pytest.fixture
def program(db):
    return demo_program_configure()


def make_member(email: str | None = None, **profile):
    n = next(_numbers)
    email = email or f"member{n}@example.com"
    member = enrollment_record(source=EnrollmentSource.STAFF, email=email, first_name=f"Mia{n}", **profile)
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    return member_link_user(member=member, user=user)


def shop(member, *, amount="100.00", category="GROCERY", at: dt.datetime | None = None, external_id=None):
    """A purchase through the purchase workflow (no partner: the program's own till)."""
    return purchase_record(
        partner=None,
        member=member,
        external_id=external_id or f"till-{next(_numbers)}",
        occurred_at=at or clock.now(),
        lines=[{"sku": "SKU1", "category": category, "amount": Decimal(amount)}],
    )


def logged_in(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


@pytest.fixture
def member(program):
    return make_member()


@pytest.fixture
def other_member(program):
    return make_member()


@pytest.fixture
def member_client(member):
    return logged_in(member)
