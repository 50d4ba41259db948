"""Concurrency on PostgreSQL with real threads: the status row lock keeps tiers exact."""

import pytest

from loyalty.core import clock
from loyalty.partners.models import OutboxEvent
from loyalty.tiers import services
from loyalty.tiers.models import ChangeReason, MemberTier, TierChange
from tests.concurrency import run_together
from tests.factories import MemberFactory
from tests.tiers.conftest import at, buy, make_program, tier_name

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("run", range(5))
def test_concurrent_upgrade_checks_of_a_new_member_upgrade_once(run):
    program = make_program()
    clock.set_now(at(2030, 3, 1))
    member = MemberFactory()
    buy(member, program, "1000.00", check=False)
    results = run_together(10, lambda i: services.tier_upgrade_check(member=member, program=program))
    assert all(isinstance(r, MemberTier) for r in results), results
    assert MemberTier.objects.filter(member=member).count() == 1
    reasons = sorted(TierChange.objects.filter(member=member).values_list("reason", flat=True))
    assert reasons == [ChangeReason.INITIAL, ChangeReason.UPGRADE]
    assert OutboxEvent.objects.filter(member=member, event_type="tier.upgraded").count() == 1


@pytest.mark.parametrize("run", range(3))
def test_nightly_run_and_upgrade_checks_together_close_each_period_once(run):
    program = make_program()
    clock.set_now(at(2030, 3, 1))
    members = [MemberFactory() for _ in range(12)]
    for member in members:
        buy(member, program, "1000.00")
    clock.set_now(at(2032, 1, 1, 2))  # 2030 (kept Gold) and 2031 (nothing) both closed, none evaluated

    def work(i):
        if i < 2:
            return services.tiers_evaluate(batch=5)
        return services.tier_upgrade_check(member=members[i], program=program)

    results = run_together(len(members), work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert all(tier_name(m, program) == "Base" for m in members)
    assert TierChange.objects.filter(program=program, reason=ChangeReason.DOWNGRADE).count() == len(members)
    assert OutboxEvent.objects.filter(event_type="tier.downgraded").count() == len(members)


def test_parallel_workers_split_the_members_and_give_the_same_result():
    program = make_program()
    clock.set_now(at(2030, 3, 1))
    members = [MemberFactory() for _ in range(30)]
    for number, member in enumerate(members):
        buy(member, program, "1000.00" if number % 3 else "600.00")
    result = services.tiers_evaluate(now=at(2032, 1, 1, 2), batch=4, workers=3)
    assert result["members"] == 30 and result["downgrades"] == 30 and result["batches"] >= 3
    assert all(tier_name(m, program) == "Base" for m in members)
    assert TierChange.objects.filter(program=program, reason=ChangeReason.DOWNGRADE).count() == 30
    assert services.tiers_evaluate(now=at(2032, 1, 1, 2), workers=3)["members"] == 0
