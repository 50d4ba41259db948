"""A small coalition worked out by hand (figures in tests/dashboards/test_figures.py).

Program "Dash" (1 point per 1.00, point value 0.01, points expire 1 month after earning), partners
Coffee (coalition, pays 0.008 per point issued at it) and Store (own store, pays nothing).

- 10 Jan 2030: Ann joins through Coffee, Ben through Store; Ann buys 100.00 at Coffee (100 points),
  Ben 50.00 at Store (50 points).
- 12 Jan: Ben buys 20.00 at Store (20 points).
- 20 Jan: Ann redeems 40 points at Coffee.
- 13 Feb: the expiry job: Ann's 60 left of 10 Jan and Ben's 50 + 20 expire (130 points).
- 15 Feb: Ann buys 30.00 at Coffee (30 points).
- 5 Mar: Cal joins through Store and does nothing.
- The dashboards are refreshed on 31 Mar 2030 (in full) and read for 1 Jan - 31 Mar 2030.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from loyalty.activity.services import enrollment_record, purchase_record
from loyalty.activity.services.redemptions import redemption_record
from loyalty.core import clock
from loyalty.dashboards.selectors.base import Filters
from loyalty.dashboards.services import dashboards_refresh
from loyalty.ledger import services as ledger
from loyalty.ledger.services.jobs import expire_due_lots
from loyalty.partners.models import Partner, PartnerKind
from members.models import EnrollmentSource

REPLICA = "replica"


def _replica_alias() -> None:
    """A second alias on the test database, as a streaming replica of it would be (TEST MIRROR):
    tests/dashboards/test_router.py reads the dashboards through it. Added while collecting, so
    the test databases are set up with it; nothing routes to it unless a test sets
    ``DASHBOARDS_READ_DATABASE``."""
    from django.conf import settings
    from django.db import connections

    if REPLICA not in settings.DATABASES:
        alias = {**settings.DATABASES["default"], "TEST": {"MIRROR": "default"}}
        settings.DATABASES[REPLICA] = alias
        if REPLICA not in connections.settings:
            connections.settings[REPLICA] = connections.configure_settings({REPLICA: alias})[REPLICA]


_replica_alias()


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2030, month, day, 12, 0, tzinfo=dt.UTC)


def buy(partner, member, amount: str, when: dt.datetime, ref: str):
    clock.set_now(when)
    return purchase_record(
        partner=partner,
        member=member,
        external_id=ref,
        occurred_at=when,
        lines=[{"sku": "SKU1", "category": "COFFEE", "amount": Decimal(amount)}],
    )


@pytest.fixture
def story(db):
    program = ledger.program_create(
        name="Dash", point_value=Decimal("0.01"), expiry_policy="fixed_months", expiry_months=1
    )
    coffee = Partner.objects.create(name="Coffee", kind=PartnerKind.COALITION, cost_per_point=Decimal("0.008"))
    store = Partner.objects.create(name="Store", kind=PartnerKind.OWN_STORE)
    program.partners.add(coffee, store)

    clock.set_now(at(1, 10))
    ann = enrollment_record(source=EnrollmentSource.PARTNER, partner=coffee, email="ann@example.com", first_name="Ann")
    ben = enrollment_record(source=EnrollmentSource.PARTNER, partner=store, email="ben@example.com", first_name="Ben")
    buy(coffee, ann, "100.00", at(1, 10), "c-1")
    buy(store, ben, "50.00", at(1, 10), "s-1")
    buy(store, ben, "20.00", at(1, 12), "s-2")
    clock.set_now(at(1, 20))
    redemption_record(partner=coffee, member_number=ann.member_number, points=40, external_id="r-1")
    clock.set_now(at(2, 13))
    expire_due_lots(now=at(2, 13))
    buy(coffee, ann, "30.00", at(2, 15), "c-2")
    clock.set_now(at(3, 5))
    cal = enrollment_record(source=EnrollmentSource.PARTNER, partner=store, email="cal@example.com", first_name="Cal")
    clock.set_now(at(3, 31))
    dashboards_refresh(full=True)
    return {
        "program": program,
        "coffee": coffee,
        "store": store,
        "members": (ann, ben, cal),
        "filters": Filters(program=program, start=dt.date(2030, 1, 1), end=dt.date(2030, 3, 31)),
    }


def staff_user(role: str | None, *, superuser: bool = False):
    user = get_user_model().objects.create_user(
        username=f"staff-{role or 'none'}-{superuser}", password="pw-123456", is_staff=True, is_superuser=superuser
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
