import datetime as dt

import pytest
from django.contrib.auth.models import Group

from loyalty.activity.services import enrollment_record, purchase_record
from loyalty.core import clock
from members.models import EnrollmentSource
from tests.factories import UserFactory

T = dt.datetime(2030, 1, 10, 12, tzinfo=dt.UTC)
LINES = [{"sku": "MILK-1", "category": "DAIRY", "quantity": "1", "amount": "50.00"}]


@pytest.fixture(autouse=True)
def _now():
    clock.set_now(T)


def role_user(role: str):
    user = UserFactory(username=role.lower().replace(" ", "-"), is_staff=True)
    if role != "no role":
        user.groups.add(Group.objects.get(name=role))
    return user


def member_with_history(*, purchases: int = 1, email: str = "jane@example.com"):
    member = enrollment_record(source=EnrollmentSource.STAFF, first_name="Jane", last_name="Doe", email=email)
    for i in range(purchases):
        purchase_record(partner=None, member=member, external_id=f"till-{email}-{i}", occurred_at=T, lines=LINES)
    return member
