import datetime as dt
import itertools
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.ledger.selectors import program_default
from segments import services
from segments.compiler import matching_members
from segments.rules import validate
from tests.factories import MemberFactory

T0 = dt.datetime(2030, 6, 15, 12, 0, tzinfo=dt.UTC)
_purchase_ids = itertools.count(1)


@pytest.fixture
def now(db):
    clock.set_now(T0)
    return T0


@pytest.fixture
def program(now):
    return program_default()


DEMOGRAPHICS = (
    "age_band",
    "income_band",
    "household_size",
    "household_composition",
    "kids_count",
    "home_ownership",
    "marital_status",
)


def member(**fields):
    """A member enrolled through the service; demographic fields may be given directly."""
    demographics = {k: fields.pop(k) for k in DEMOGRAPHICS if k in fields}
    return MemberFactory(demographics=demographics, **fields)


def buy(
    who,
    *,
    days_ago: float = 1,
    amount: str | int = "10.00",
    category: str = "grocery",
    sku: str = "SKU-1",
    partner=None,
    store: str = "S1",
    lines: list[dict] | None = None,
    program=None,
):
    """A purchase by ``who`` ``days_ago`` days before now (one line unless ``lines``)."""
    return ledger.purchase_create(
        program=program or program_default(),
        member=who,
        external_id=f"p-{next(_purchase_ids)}",
        occurred_at=clock.now() - dt.timedelta(days=days_ago),
        lines=lines
        or [{"sku": sku, "category": category, "quantity": 1, "amount": Decimal(str(amount)), "discount": 0}],
        partner=partner,
        store_code=store,
    )


def matching(rules, **kwargs) -> set:
    """Member ids matching a rule tree (validated first), as a set."""
    return set(matching_members(validate(rules), **kwargs).values_list("pk", flat=True))


def ids(*members) -> set:
    return {m.pk for m in members}


def dynamic(name: str, rules, **kwargs):
    return services.segment_create(name=name, rules=rules, **kwargs)
