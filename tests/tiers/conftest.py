import datetime as dt
import itertools
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.tiers import services
from loyalty.tiers.models import MemberTier, Tier
from tests.factories import MemberFactory

_ids = itertools.count()


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def make_program(
    *, window="calendar_year", downgrade_policy="requalify", grace_days=0, adjustments_count=False, tiers=None
):
    """A program with a policy and tiers; by default Base (no thresholds), Silver (spend 500),
    Gold (spend 1000 or 2000 points), Platinum (spend 5000 and 20 purchases)."""
    program = ledger.program_create(name=f"Tier program {next(_ids)}")
    services.tier_policy_set(
        program=program,
        window=window,
        downgrade_policy=downgrade_policy,
        grace_days=grace_days,
        adjustments_count=adjustments_count,
    )
    for rank, (name, combine, thresholds) in enumerate(
        tiers
        or [
            ("Base", "any", {}),
            ("Silver", "any", {"spend": "500"}),
            ("Gold", "any", {"spend": "1000", "points": 2000}),
            ("Platinum", "all", {"spend": "5000", "purchases": 20}),
        ]
    ):
        services.tier_create(program=program, name=name, rank=rank, combine=combine, thresholds=thresholds)
    return program


def tier(program, name) -> Tier:
    return Tier.objects.get(program=program, name=name)


def buy(member, program, amount, *, when=None, check=True):
    """A purchase of ``amount`` eligible spend at ``when`` (default: now), then the upgrade check
    the activity workflow will run."""
    purchase = ledger.purchase_create(
        program=program,
        member=member,
        external_id=f"p-{next(_ids)}",
        occurred_at=when or clock.now(),
        lines=[{"sku": "sku", "category": "food", "quantity": 1, "amount": Decimal(str(amount)), "discount": 0}],
    )
    if check:
        services.tier_upgrade_check(member=member, program=program)
    return purchase


def give_back(purchase, amount):
    return ledger.purchase_return_clawback(
        purchase=purchase, external_id=f"r-{next(_ids)}", amount=Decimal(str(amount))
    )


def earn(member, program, points, *, check=True):
    account = ledger.account_open(member=member, program=program)
    ledger.points_credit(account=account, points=points, reason="test earn")
    if check:
        services.tier_upgrade_check(member=member, program=program)
    return account


def status_of(member, program) -> MemberTier:
    return MemberTier.objects.select_related("tier", "earned_tier", "downgrade_to").get(member=member, program=program)


def tier_name(member, program) -> str | None:
    status = status_of(member, program)
    return status.tier.name if status.tier else None


@pytest.fixture
def member_at():
    """A member enrolled at a given time."""

    def make(moment, **fields):
        with clock.frozen(moment):
            return MemberFactory(**fields)

    return make
