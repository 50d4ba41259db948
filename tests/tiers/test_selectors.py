"""What members and dashboards read: progress, distribution, movements."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.tiers import services
from loyalty.tiers.selectors import member_tier, tier_distribution, tier_history, tier_movements, tier_progress
from tests.factories import MemberFactory, StaffFactory
from tests.tiers.conftest import at, buy, earn, give_back, make_program, tier

pytestmark = pytest.mark.django_db


def test_progress_shows_metrics_next_tier_gap_what_keeps_the_tier_and_next_evaluation():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "500.00")
        buy(member, program, "380.00")
        earn(member, program, 150)
        progress = tier_progress(member=member, program=program)
    assert progress.tier.name == "Silver"
    assert (progress.window_start, progress.window_end) == (at(2030, 1, 1), at(2031, 1, 1))
    assert progress.metrics.spend == Decimal("880.00")
    assert (progress.metrics.points, progress.metrics.purchases) == (150, 2)
    assert progress.next_tier.name == "Gold" and progress.next_combine == "any"
    assert progress.to_next == {"spend": Decimal("120.00"), "points": 1850}
    assert progress.keep == {"spend": Decimal("0.00")}  # already secured for 2030
    assert progress.keep_by == at(2031, 1, 1)
    assert progress.next_evaluation == dt.date(2031, 1, 1)


def test_progress_after_a_return_shows_what_is_missing_to_keep_the_tier():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        purchase = buy(member, program, "1000.00")
        give_back(purchase, "250.00")
        progress = tier_progress(member=member, program=program)
    assert progress.tier.name == "Gold"
    assert progress.keep == {"spend": Decimal("250.00"), "points": 2000}
    assert progress.keep_combine == "any"
    assert progress.next_tier.name == "Platinum" and progress.next_combine == "all"
    assert progress.to_next == {"spend": Decimal("4250.00"), "purchases": 19}


def test_progress_of_a_member_never_evaluated_is_at_the_base_tier():
    program = make_program(window="membership_year")
    with clock.frozen(at(2030, 5, 20)):
        member = MemberFactory()
    with clock.frozen(at(2030, 8, 1)):
        progress = tier_progress(member=member, program=program)
    assert progress.tier.name == "Base" and progress.keep is None
    assert progress.to_next == {"spend": Decimal("500.00")}
    assert progress.next_evaluation == dt.date(2031, 5, 20)
    assert progress.earn_multiplier == Decimal("1")


def test_progress_under_never_policy_needs_nothing_to_keep():
    program = make_program(downgrade_policy="never")
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "600.00")
        assert tier_progress(member=member, program=program).keep is None


def test_progress_shows_a_pending_downgrade_and_its_date():
    program = make_program(grace_days=14)
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "600.00")
    services.tiers_evaluate(now=at(2032, 1, 1, 1))  # 2030 kept Silver, 2031 had nothing
    with clock.frozen(at(2032, 1, 5)):
        progress = tier_progress(member=member, program=program)
    assert progress.tier.name == "Silver" and progress.downgrade_to.name == "Base"
    assert progress.downgrade_at == at(2032, 1, 15) and progress.next_evaluation == dt.date(2032, 1, 15)
    assert progress.keep == {"spend": Decimal("500.00")}


def test_progress_of_a_manual_tier_shows_its_end():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2030, 4, 30),
            reason="match",
            actor=StaffFactory(),
        )
        progress = tier_progress(member=member, program=program)
    assert progress.tier.name == "Gold" and progress.earned_tier.name == "Base"
    assert progress.manual_until == at(2030, 5, 1) and progress.keep_by == at(2030, 5, 1)
    assert progress.next_evaluation == dt.date(2030, 5, 1)


def test_progress_uses_a_bounded_number_of_queries(django_assert_max_num_queries):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        for _ in range(5):
            buy(member, program, "300.00")
        earn(member, program, 100)
        with django_assert_max_num_queries(8):
            progress = tier_progress(member=member, program=program)
        with django_assert_max_num_queries(9):
            tier_progress(member=member)  # the default program: one more query
    assert progress.tier.name == "Gold"
    assert [p.title for p in progress.perks] == []


def test_progress_lists_the_perks_and_benefits_of_the_tier():
    program = make_program(tiers=[("Base", "any", {})])
    services.tier_create(
        program=program,
        name="VIP",
        rank=5,
        thresholds={"spend": 100},
        perks=["Free delivery", "Birthday gift"],
        earn_multiplier="1.25",
        early_access=True,
    )
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "100.00")
        progress = tier_progress(member=member, program=program)
    assert [p.title for p in progress.perks] == ["Free delivery", "Birthday gift"]
    assert progress.earn_multiplier == Decimal("1.250") and progress.tier.early_access
    assert member_tier(member=member, program=program).name == "VIP"


def test_distribution_counts_members_per_tier_including_those_never_evaluated():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        for amount in ("10.00", "600.00", "700.00", "1200.00"):
            buy(MemberFactory(), program, amount)
        ledger.account_open(member=MemberFactory(), program=program)  # no tier status yet
    rows = {row["tier"]: row["members"] for row in tier_distribution(program=program)}
    assert rows == {"Base": 2, "Silver": 2, "Gold": 1, "Platinum": 0}


def test_movements_per_period_for_dashboards():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        first, second = MemberFactory(), MemberFactory()
        buy(first, program, "600.00")
        buy(second, program, "1000.00")
    services.tiers_evaluate(now=at(2031, 1, 1, 1))
    services.tiers_evaluate(now=at(2032, 1, 1, 1))
    rows = tier_movements(program=program, since=at(2030, 1, 1), until=at(2033, 1, 1), period="month")
    summary = [(r["period"], r["reason"], r["from_tier"], r["to_tier"], r["members"]) for r in rows]
    assert summary == [
        (dt.date(2030, 3, 1), "initial", None, "Base", 2),
        (dt.date(2030, 3, 1), "upgrade", "Base", "Silver", 1),
        (dt.date(2030, 3, 1), "upgrade", "Base", "Gold", 1),
        (dt.date(2032, 1, 1), "downgrade", "Silver", "Base", 1),
        (dt.date(2032, 1, 1), "downgrade", "Gold", "Base", 1),
    ]
    assert [c.reason for c in tier_history(member=first, program=program)] == ["downgrade", "upgrade", "initial"]
