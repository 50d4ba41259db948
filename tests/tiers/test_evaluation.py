"""The nightly evaluation: period closes by policy, grace periods, idempotent, set-based."""

import itertools
from decimal import Decimal

import pytest
from django.core.management import call_command

from loyalty.core import clock
from loyalty.partners.models import OutboxEvent
from loyalty.tiers import qualification, services
from loyalty.tiers.models import ChangeReason, MemberTier, TierChange
from loyalty.tiers.selectors import member_metrics, program_tiers
from loyalty.tiers.tasks import evaluate_tiers
from tests.factories import MemberFactory
from tests.tiers.conftest import at, buy, give_back, make_program, status_of, tier, tier_name

pytestmark = pytest.mark.django_db


def gold_member(program, when=None, amount="1000.00"):
    with clock.frozen(when or at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, amount)
    return member


def test_requalify_keeps_the_tier_when_the_closed_year_qualifies():
    program = make_program(downgrade_policy="requalify")
    member = gold_member(program)
    result = services.tiers_evaluate(now=at(2031, 1, 1, 2))
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.tier_since == at(2030, 3, 1)
    assert (status.period_start, status.period_end) == (at(2031, 1, 1), at(2032, 1, 1))
    assert result["periods_closed"] == 1 and result["downgrades"] == 0


def test_requalify_moves_to_the_highest_tier_the_closed_year_qualifies_for():
    program = make_program(downgrade_policy="requalify")
    member = gold_member(program)
    with clock.frozen(at(2031, 6, 1)):
        buy(member, program, "600.00")
    with clock.frozen(at(2032, 1, 1, 1)):  # counts for 2032, not for the closed 2031
        buy(member, program, "450.00", check=False)
    result = services.tiers_evaluate(now=at(2032, 1, 1, 2))
    status = status_of(member, program)
    assert status.tier.name == "Silver" and status.earned_tier.name == "Silver"
    assert (status.period_start, status.period_end) == (at(2032, 1, 1), at(2033, 1, 1))
    assert status.tier_since == at(2032, 1, 1, 2)
    change = TierChange.objects.filter(member=member).first()
    assert (change.from_tier.name, change.to_tier.name, change.reason) == ("Gold", "Silver", ChangeReason.DOWNGRADE)
    event = OutboxEvent.objects.filter(event_type="tier.downgraded").get()
    assert event.member == member
    assert event.payload == {
        "program_id": program.pk,
        "member_id": member.pk,
        "from_tier_id": tier(program, "Gold").pk,
        "from_tier": "Gold",
        "from_rank": 2,
        "to_tier_id": tier(program, "Silver").pk,
        "to_tier": "Silver",
        "to_rank": 1,
        "reason": "downgrade",
        "changed_at": "2032-01-01T02:00:00+00:00",
    }
    assert result["downgrades"] == 1 and result["upgrades"] == 0
    assert result["periods_closed"] == 1  # 2030 was closed by the upgrade check of 1 June 2031


def test_requalify_with_nothing_falls_to_the_base_tier():
    program = make_program(downgrade_policy="requalify")
    member = gold_member(program)
    services.tiers_evaluate(now=at(2031, 1, 1, 2))
    services.tiers_evaluate(now=at(2032, 1, 1, 2))
    assert tier_name(member, program) == "Base"


def test_one_step_goes_down_at_most_one_tier_per_period():
    program = make_program(downgrade_policy="one_step")
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "6000.00")
        for _ in range(19):
            buy(member, program, "1.00")
    assert tier_name(member, program) == "Platinum"
    services.tiers_evaluate(now=at(2031, 1, 1, 2))
    assert tier_name(member, program) == "Platinum"  # 2030 qualified
    services.tiers_evaluate(now=at(2032, 1, 1, 2))
    assert tier_name(member, program) == "Gold"  # nothing in 2031: one step only
    services.tiers_evaluate(now=at(2033, 1, 1, 2))
    assert tier_name(member, program) == "Silver"


def test_one_step_lands_on_the_qualified_tier_when_that_is_higher_than_one_step():
    program = make_program(downgrade_policy="one_step")
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "6000.00")
        for _ in range(19):
            buy(member, program, "1.00")
    with clock.frozen(at(2031, 3, 1)):
        buy(member, program, "1500.00")  # 2031: Gold
    services.tiers_evaluate(now=at(2031, 1, 1, 2))
    services.tiers_evaluate(now=at(2032, 1, 1, 2))
    assert tier_name(member, program) == "Gold"


def test_never_policy_keeps_the_tier():
    program = make_program(downgrade_policy="never")
    member = gold_member(program)
    result = services.tiers_evaluate(now=at(2035, 1, 1, 2))
    assert tier_name(member, program) == "Gold"
    assert result["downgrades"] == 0
    assert status_of(member, program).period_end == at(2036, 1, 1)  # periods still roll


def test_return_drops_spend_below_the_threshold_only_at_period_end():
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        purchase = buy(member, program, "1000.00")
    with clock.frozen(at(2030, 6, 1)):
        give_back(purchase, "300.00")
        services.tier_upgrade_check(member=member, program=program)
    services.tiers_evaluate(now=at(2030, 6, 2))
    assert tier_name(member, program) == "Gold"  # no immediate downgrade
    services.tiers_evaluate(now=at(2031, 1, 1, 2))
    assert tier_name(member, program) == "Silver"  # 700.00 net spend counted at period end


def test_grace_period_delays_the_downgrade():
    program = make_program(grace_days=30)
    member = gold_member(program, when=at(2030, 3, 1))
    services.tiers_evaluate(now=at(2031, 1, 1, 2))
    services.tiers_evaluate(now=at(2032, 1, 1, 2))
    status = status_of(member, program)
    assert status.tier.name == "Gold"
    assert status.downgrade_to.name == "Base" and status.downgrade_at == at(2032, 1, 31)
    services.tiers_evaluate(now=at(2032, 1, 30, 23))
    assert tier_name(member, program) == "Gold"
    result = services.tiers_evaluate(now=at(2032, 1, 31, 2))
    status = status_of(member, program)
    assert status.tier.name == "Base" and status.downgrade_at is None and status.downgrade_to is None
    assert result["downgrades"] == 1
    assert TierChange.objects.filter(member=member).first().reason == ChangeReason.DOWNGRADE


def test_requalifying_during_the_grace_period_cancels_the_downgrade():
    program = make_program(grace_days=30)
    member = gold_member(program)
    services.tiers_evaluate(now=at(2032, 1, 1, 2))
    assert status_of(member, program).downgrade_at is not None
    with clock.frozen(at(2032, 1, 10)):
        buy(member, program, "1000.00")
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.downgrade_at is None and status.downgrade_to is None
    services.tiers_evaluate(now=at(2032, 2, 1))
    assert tier_name(member, program) == "Gold"


def test_partial_requalifying_during_grace_softens_the_downgrade():
    program = make_program(grace_days=30)
    member = gold_member(program)
    services.tiers_evaluate(now=at(2032, 1, 1, 2))
    with clock.frozen(at(2032, 1, 10)):
        buy(member, program, "600.00")
    assert status_of(member, program).downgrade_to.name == "Silver"
    services.tiers_evaluate(now=at(2032, 2, 1))
    assert tier_name(member, program) == "Silver"


def test_membership_year_closes_at_each_members_anniversary(member_at):
    program = make_program(window="membership_year")
    early, late = member_at(at(2030, 2, 10)), member_at(at(2030, 8, 20))
    for member in (early, late):
        with clock.frozen(member.enrolled_at):
            buy(member, program, "1000.00")
    services.tiers_evaluate(now=at(2031, 2, 10, 1))  # early's first year closed, Gold requalified
    services.tiers_evaluate(now=at(2032, 2, 10, 1))  # early's second year: nothing -> Base
    assert tier_name(early, program) == "Base"
    assert tier_name(late, program) == "Gold"  # late's second year closes 20 Aug 2032
    assert status_of(late, program).period_end == at(2032, 8, 20)
    services.tiers_evaluate(now=at(2032, 8, 20, 1))
    assert tier_name(late, program) == "Base"
    assert status_of(late, program).period_end == at(2033, 8, 20)


def test_membership_year_of_a_29_february_enrollment(member_at):
    program = make_program(window="membership_year")
    member = member_at(at(2028, 2, 29, 10))
    with clock.frozen(at(2028, 3, 1)):
        services.tier_upgrade_check(member=member, program=program)
    assert status_of(member, program).period_end == at(2029, 2, 28, 10)
    services.tiers_evaluate(now=at(2032, 3, 1))
    status = status_of(member, program)
    assert (status.period_start, status.period_end) == (at(2032, 2, 29, 10), at(2033, 2, 28, 10))


def test_rolling_window_reviews_twelve_months_after_the_upgrade():
    program = make_program(window="rolling_12_months")
    member = gold_member(program, when=at(2030, 5, 10))
    assert status_of(member, program).period_end == at(2031, 5, 10)
    with clock.frozen(at(2030, 12, 1)):
        buy(member, program, "600.00")
    services.tiers_evaluate(now=at(2031, 5, 9))
    assert tier_name(member, program) == "Gold"
    services.tiers_evaluate(now=at(2031, 5, 10, 1))
    # the 12 months before the review: 1000 (10 May 2030) + 600 -> keeps Gold
    assert tier_name(member, program) == "Gold"
    services.tiers_evaluate(now=at(2032, 5, 10, 1))
    assert tier_name(member, program) == "Base"


def test_lifetime_window_has_nothing_to_evaluate():
    program = make_program(window="lifetime")
    member = gold_member(program)
    result = services.tiers_evaluate(now=at(2040, 1, 1))
    assert tier_name(member, program) == "Gold" and result["members"] == 0


def test_nightly_run_is_idempotent():
    program = make_program(grace_days=0)
    members = [gold_member(program) for _ in range(3)]
    with clock.frozen(at(2031, 4, 1)):
        buy(members[0], program, "600.00")
    first = services.tiers_evaluate(now=at(2032, 1, 1, 2))
    history, events = TierChange.objects.count(), OutboxEvent.objects.count()
    snapshot = list(MemberTier.objects.order_by("pk").values())
    second = services.tiers_evaluate(now=at(2032, 1, 1, 2))
    assert first["downgrades"] == 3 and second["members"] == 0 and second["downgrades"] == 0
    assert (TierChange.objects.count(), OutboxEvent.objects.count()) == (history, events)
    assert list(MemberTier.objects.order_by("pk").values()) == snapshot


def test_a_stopped_job_catches_up_period_by_period():
    program = make_program(downgrade_policy="one_step")
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "6000.00")
        for _ in range(19):
            buy(member, program, "1.00")
    result = services.tiers_evaluate(now=at(2033, 1, 1, 2))  # 2030, 2031 and 2032 closed
    assert tier_name(member, program) == "Silver"  # Platinum (2030 ok) -> Gold -> Silver
    assert result["periods_closed"] == 3
    assert status_of(member, program).period_end == at(2034, 1, 1)


def test_batches_give_the_same_result_as_one_batch():
    def scenario(batch):
        program = make_program()
        spends = ["0", "499.99", "500.00", "999.99", "1000.00", "7000.00"]
        members = [gold_member(program, amount="1000.00") for _ in spends]
        for member, spend in zip(members, spends, strict=True):
            if Decimal(spend):
                with clock.frozen(at(2031, 6, 1)):
                    buy(member, program, spend, check=False)
        services.tiers_evaluate(now=at(2032, 1, 1, 2), program=program, batch=batch)
        return [tier_name(m, program) for m in members]

    assert scenario(batch=2) == scenario(batch=1000) == ["Base", "Base", "Silver", "Silver", "Gold", "Gold"]


def test_sql_evaluation_agrees_with_the_python_rules_at_every_boundary():
    """The nightly CASE expressions and ``qualification`` give the same tier for the same metrics."""
    program = make_program(downgrade_policy="requalify")
    spends = ["0", "499.99", "500.00", "999.99", "1000.00", "4999.99", "5000.00"]
    purchase_counts = [1, 19, 20]
    members = []
    for spend, count in itertools.product(spends, purchase_counts):
        with clock.frozen(at(2031, 1, 1)):
            member = MemberFactory()
            services.tier_status_ensure(member=member, program=program)
        total = Decimal(spend)
        with clock.frozen(at(2031, 5, 1)):
            if total:  # count purchases in all: count - 1 of 0.01 and one with the rest
                for _ in range(count - 1):
                    buy(member, program, "0.01", check=False)
                buy(member, program, total - Decimal("0.01") * (count - 1), check=False)
        members.append(member)
    services.tiers_evaluate(now=at(2032, 1, 1, 1))
    pt = program_tiers(program=program)
    for member in members:
        metrics = member_metrics(member=member, program=program, start=at(2031, 1, 1), end=at(2032, 1, 1))
        expected = qualification.qualified_tier(pt.rules, metrics)
        assert status_of(member, program).tier_id == expected.id, (metrics, expected.name)


def test_task_and_management_command_run_the_evaluation(capsys):
    program = make_program()
    member = gold_member(program)
    with clock.frozen(at(2032, 1, 1, 2)):
        assert evaluate_tiers.delay().get()["downgrades"] == 1
        call_command("evaluate_tiers", program=program.pk)
    assert tier_name(member, program) == "Base"
    assert "members: 0" in capsys.readouterr().out


def test_evaluation_leaves_other_programs_alone():
    first, second = make_program(), make_program()
    member = gold_member(first)
    with clock.frozen(at(2030, 3, 1)):
        buy(member, second, "1000.00")
    services.tiers_evaluate(now=at(2032, 1, 1, 2), program=first)
    assert tier_name(member, first) == "Base" and tier_name(member, second) == "Gold"
    assert tier(second, "Gold").pk == status_of(member, second).tier_id
