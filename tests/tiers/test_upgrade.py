"""Upgrades happen at once, when a qualifying activity crosses a threshold; never down."""

import pytest

from loyalty.core import clock
from loyalty.ledger import services as ledger
from loyalty.partners.models import OutboxEvent
from loyalty.tiers import services
from loyalty.tiers.models import ChangeReason, TierChange
from tests.factories import MemberFactory, StaffFactory
from tests.tiers.conftest import at, buy, earn, give_back, make_program, status_of, tier, tier_name

pytestmark = pytest.mark.django_db


def test_first_look_creates_the_status_at_the_base_tier_with_an_initial_history_row():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        services.tier_upgrade_check(member=member, program=program)
    status = status_of(member, program)
    assert status.tier == tier(program, "Base") == status.earned_tier
    assert (status.period_start, status.period_end) == (at(2030, 1, 1), at(2031, 1, 1))
    change = TierChange.objects.get(status=status)
    assert (change.from_tier, change.to_tier, change.reason) == (None, tier(program, "Base"), ChangeReason.INITIAL)
    assert not OutboxEvent.objects.exists()


def test_purchase_crossing_a_threshold_upgrades_at_once_and_records_an_event():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "400.00")
        assert tier_name(member, program) == "Base"
        buy(member, program, "150.00")
    assert tier_name(member, program) == "Silver"
    change = TierChange.objects.filter(member=member).first()
    assert (change.from_tier.name, change.to_tier.name, change.reason) == ("Base", "Silver", ChangeReason.UPGRADE)
    event = OutboxEvent.objects.get()
    assert event.event_type == "tier.upgraded" and event.member == member
    assert event.payload == {
        "program_id": program.pk,
        "member_id": member.pk,
        "from_tier_id": tier(program, "Base").pk,
        "from_tier": "Base",
        "from_rank": 0,
        "to_tier_id": tier(program, "Silver").pk,
        "to_tier": "Silver",
        "to_rank": 1,
        "reason": "upgrade",
        "changed_at": "2030-03-01T00:00:00+00:00",
    }


def test_exactly_at_the_threshold_qualifies_one_cent_below_does_not():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        below, exact = MemberFactory(), MemberFactory()
        buy(below, program, "499.99")
        buy(exact, program, "499.99")
        buy(exact, program, "0.01")
    assert tier_name(below, program) == "Base"
    assert tier_name(exact, program) == "Silver"


def test_upgrade_can_skip_tiers():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "1000.00")
    assert tier_name(member, program) == "Gold"
    assert TierChange.objects.filter(member=member, reason=ChangeReason.UPGRADE).count() == 1


def test_a_return_never_moves_the_tier_down_at_once():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        purchase = buy(member, program, "1000.00")
        give_back(purchase, "600.00")
        services.tier_upgrade_check(member=member, program=program)
    assert tier_name(member, program) == "Gold"


def test_points_earned_count_but_redemptions_do_not_reduce_them():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        account = earn(member, program, 1999)
        assert tier_name(member, program) == "Base"
        ledger.points_redeem(account=account, points=1000, description="reward")
        earn(member, program, 1)
    assert tier_name(member, program) == "Gold"


def test_staff_adjustments_count_only_when_the_program_says_so():
    staff = StaffFactory()
    plain, counting = make_program(), make_program(adjustments_count=True)
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        for program in (plain, counting):
            account = ledger.account_open(member=member, program=program)
            ledger.points_adjust(account=account, points=2500, reason="goodwill", actor=staff)
            services.tier_upgrade_check(member=member, program=program)
    assert tier_name(member, plain) == "Base"
    assert tier_name(member, counting) == "Gold"


def test_all_combination_needs_every_threshold():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "6000.00")
        assert tier_name(member, program) == "Gold"  # Platinum also needs 20 purchases
        for _ in range(18):
            buy(member, program, "1.00", check=False)
        services.tier_upgrade_check(member=member, program=program)
        assert tier_name(member, program) == "Gold"  # 19 purchases
        buy(member, program, "1.00")
    assert tier_name(member, program) == "Platinum"


def test_a_fully_returned_purchase_is_not_a_qualifying_purchase():
    program = make_program(tiers=[("Base", "any", {}), ("Regular", "any", {"purchases": 3})])
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "10.00")
        returned = buy(member, program, "10.00")
        give_back(returned, "10.00")
        buy(member, program, "10.00")
        assert tier_name(member, program) == "Base"
        buy(member, program, "10.00")
    assert tier_name(member, program) == "Regular"


def test_calendar_year_window_counts_only_this_years_purchases():
    program = make_program(window="calendar_year")
    with clock.frozen(at(2030, 12, 31, 23)):
        member = MemberFactory()
        buy(member, program, "400.00")
    with clock.frozen(at(2031, 1, 2)):
        buy(member, program, "400.00")
    assert tier_name(member, program) == "Base"


def test_membership_year_window_starts_at_the_enrollment_anniversary(member_at):
    program = make_program(window="membership_year")
    member = member_at(at(2029, 6, 15))
    with clock.frozen(at(2030, 6, 14)):
        buy(member, program, "400.00")
    with clock.frozen(at(2030, 6, 16)):
        buy(member, program, "400.00")
        assert tier_name(member, program) == "Base"
        buy(member, program, "100.00")
    assert tier_name(member, program) == "Silver"
    assert status_of(member, program).period_end == at(2031, 6, 15)


def test_rolling_window_counts_the_last_12_months():
    program = make_program(window="rolling_12_months")
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "300.00")
    with clock.frozen(at(2031, 2, 20)):
        buy(member, program, "200.00")
        assert tier_name(member, program) == "Silver"  # 1 March 2030 is within 12 months
    with clock.frozen(at(2032, 1, 10)):
        buy(member, program, "700.00")
        assert tier_name(member, program) == "Silver"  # 200 + 700 in the last 12 months; 300 is older
        status = status_of(member, program)
    assert status.period_start == at(2031, 2, 20) and status.period_end == at(2032, 2, 20)


def test_lifetime_window_counts_everything_and_never_needs_review():
    program = make_program(window="lifetime")
    with clock.frozen(at(2020, 3, 1)):
        member = MemberFactory()
        buy(member, program, "600.00")
    with clock.frozen(at(2030, 3, 1)):
        buy(member, program, "400.00")
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.period_end is None


def test_program_without_tiers_does_nothing():
    from loyalty.ledger.services import program_create

    program = program_create(name="No tiers")
    member = MemberFactory()
    assert services.tier_upgrade_check(member=member, program=program) is None
