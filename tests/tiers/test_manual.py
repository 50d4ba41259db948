"""Tiers set by hand (status match): reason, end date, audit; normal rules after the end."""

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.selectors import audit_events_for
from loyalty.partners.models import OutboxEvent
from loyalty.tiers import services
from loyalty.tiers.models import ChangeReason, TierChange
from members.services import member_close
from tests.factories import MemberFactory, StaffFactory
from tests.tiers.conftest import at, buy, make_program, status_of, tier, tier_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return StaffFactory(username="support")


def test_manual_tier_is_set_with_reason_end_date_history_audit_and_event(staff):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2030, 6, 30),
            reason="status match: competitor gold card",
            actor=staff,
        )
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.earned_tier.name == "Base"
    assert status.manual_until == at(2030, 7, 1) and status.manual_reason == "status match: competitor gold card"
    change = TierChange.objects.filter(member=member).first()
    assert (change.from_tier.name, change.to_tier.name, change.reason, change.actor) == (
        "Base",
        "Gold",
        ChangeReason.MANUAL,
        staff,
    )
    audit = audit_events_for(target=status).get(action="tier.manual_set")
    assert audit.actor == staff and audit.reason == "status match: competitor gold card"
    assert audit.before["tier"] == "Base" and audit.after["tier"] == "Gold"
    assert OutboxEvent.objects.get().event_type == "tier.upgraded"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"reason": " "}, "reason_required"),
        ({"until": dt.date(2030, 2, 1)}, "invalid_until"),
        ({"other_program": True}, "tier_program_mismatch"),
    ],
)
def test_manual_tier_refuses_bad_input(staff, kwargs, code):
    program, other = make_program(), make_program()
    args = {"reason": "match", "until": dt.date(2030, 6, 30)}
    other_program = kwargs.pop("other_program", False)
    args.update(kwargs)
    with clock.frozen(at(2030, 3, 1)), pytest.raises(ValidationFailed) as error:
        services.tier_manual_set(
            member=MemberFactory(),
            program=program,
            tier=tier(other if other_program else program, "Gold"),
            actor=staff,
            **args,
        )
    assert error.value.code == code


def test_closed_member_cannot_get_a_manual_tier(staff):
    program = make_program()
    member = MemberFactory()
    member = member_close(member=member, actor=staff, reason="left")
    with pytest.raises(Conflict) as error:
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2099, 1, 1),
            reason="x",
            actor=staff,
        )
    assert error.value.code == "member_inactive"


def test_period_close_does_not_lower_a_manual_tier(staff):
    program = make_program()
    with clock.frozen(at(2030, 11, 1)):
        member = MemberFactory()
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2031, 3, 31),
            reason="m",
            actor=staff,
        )
    services.tiers_evaluate(now=at(2031, 1, 1, 2))
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.period_end == at(2032, 1, 1)


def test_at_its_end_the_member_falls_back_to_the_earned_tier(staff):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "600.00")
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2030, 6, 30),
            reason="m",
            actor=staff,
        )
    services.tiers_evaluate(now=at(2030, 6, 30, 23))
    assert tier_name(member, program) == "Gold"
    result = services.tiers_evaluate(now=at(2030, 7, 1, 2))
    status = status_of(member, program)
    assert status.tier.name == "Silver" and status.manual_until is None and status.manual_reason == ""
    change = TierChange.objects.filter(member=member).first()
    assert (change.from_tier.name, change.to_tier.name, change.reason) == (
        "Gold",
        "Silver",
        ChangeReason.MANUAL_EXPIRED,
    )
    assert OutboxEvent.objects.filter(event_type="tier.downgraded").get().payload["reason"] == "manual_expired"
    assert result["manual_expired"] == 1 and result["downgrades"] == 1
    assert services.tiers_evaluate(now=at(2030, 7, 1, 2))["members"] == 0


def test_a_manual_tier_that_was_earned_meanwhile_ends_without_a_change(staff):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2030, 6, 30),
            reason="m",
            actor=staff,
        )
        buy(member, program, "1000.00")  # earns Gold: not above the manual tier, nothing changes yet
    assert status_of(member, program).manual_until is not None
    history = TierChange.objects.count()
    services.tiers_evaluate(now=at(2030, 7, 1, 2))
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.manual_until is None
    assert TierChange.objects.count() == history


def test_earning_a_tier_above_the_manual_one_upgrades_at_once_and_ends_it(staff):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Silver"),
            until=dt.date(2030, 12, 1),
            reason="m",
            actor=staff,
        )
        buy(member, program, "1000.00")
    status = status_of(member, program)
    assert status.tier.name == "Gold" and status.manual_until is None
    assert TierChange.objects.filter(member=member).first().reason == ChangeReason.UPGRADE


def test_a_manual_demotion_is_not_undone_by_activity_that_earns_nothing_new(staff):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        buy(member, program, "1000.00")
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Base"),
            until=dt.date(2030, 5, 1),
            reason="abuse",
            actor=staff,
        )
        buy(member, program, "10.00")
    assert tier_name(member, program) == "Base"
    services.tiers_evaluate(now=at(2030, 5, 2))
    assert tier_name(member, program) == "Gold"


def test_staff_can_end_a_manual_tier_early(staff):
    program = make_program()
    with clock.frozen(at(2030, 3, 1)):
        member = MemberFactory()
        services.tier_manual_set(
            member=member,
            program=program,
            tier=tier(program, "Gold"),
            until=dt.date(2030, 12, 1),
            reason="m",
            actor=staff,
        )
    with clock.frozen(at(2030, 4, 1)):
        services.tier_manual_end(member=member, program=program, reason="match refused", actor=staff)
        with pytest.raises(Conflict):
            services.tier_manual_end(member=member, program=program, reason="again", actor=staff)
    status = status_of(member, program)
    assert status.tier.name == "Base" and status.manual_until is None
    assert audit_events_for(target=status).filter(action="tier.manual_end").get().reason == "match refused"
    assert TierChange.objects.filter(member=member).first().reason == ChangeReason.MANUAL_EXPIRED
