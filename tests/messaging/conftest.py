import datetime as dt
import itertools

import pytest

from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.messaging.models import Content, MessagingPolicy, Purpose
from members.services import consent_set
from tests.factories import MemberFactory

# 12:00 UTC: daytime in UTC, 07:00 in America/Chicago, 21:00 in Asia/Tokyo
NOON = dt.datetime(2030, 3, 12, 12, 0, tzinfo=dt.UTC)
_names = itertools.count()


def make_content(**fields) -> Content:
    now = clock.now()
    fields.setdefault("name", f"Content {next(_names)}")
    fields.setdefault("purpose", Purpose.MARKETING)
    fields.setdefault("subject", "Hello {{ first_name }}")
    fields.setdefault("body", "{{ first_name }}, you have {{ balance }} points.")
    return Content.objects.create(created_at=now, updated_at=now, **fields)


def make_member(*, marketing: tuple[str, ...] = (), **fields):
    """A member with marketing consent on the given channels ("" = all channels)."""
    fields.setdefault("phone", "+15550100")
    member = MemberFactory(**fields)
    for channel in marketing:
        consent_set(member=member, purpose="marketing", channel=channel, granted=True, source="test")
    return member


def set_policy(**fields) -> MessagingPolicy:
    program = ledger_selectors.program_default()
    policy, _ = MessagingPolicy.objects.update_or_create(
        program=program, defaults={"updated_at": clock.now(), **fields}
    )
    return policy


@pytest.fixture
def noon():
    clock.set_now(NOON)
    return NOON
