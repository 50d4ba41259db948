import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.ledger import selectors, services
from loyalty.ledger.models import Purchase, Return
from tests.ledger.conftest import assert_ledger_invariants, fresh, make_account, make_program

pytestmark = pytest.mark.django_db


def buy(account, points, *, external_id="b-1", lines=None, pending=False):
    lines = lines or [
        {"sku": "A", "category": "food", "quantity": 2, "amount": "60.00"},
        {"sku": "B", "quantity": 1, "amount": "40.00"},
    ]
    purchase = services.purchase_create(
        program=account.program, member=account.member, external_id=external_id, occurred_at=clock.now(), lines=lines
    )
    services.points_credit(account=account, points=points, reason="purchase", purchase=purchase, pending=pending)
    return Purchase.objects.get(pk=purchase.pk)


def test_purchase_eligible_amount_is_line_amounts_minus_discounts(t0):
    account = make_account(make_program())
    purchase = services.purchase_create(
        program=account.program,
        member=account.member,
        external_id="p",
        occurred_at=t0,
        lines=[{"sku": "A", "amount": "10.00", "discount": "2.50"}, {"sku": "B", "amount": "5"}],
        tax="1.20",
    )
    assert str(purchase.eligible_amount) == "12.50"


def test_duplicate_purchase_external_id_is_refused(t0):
    account = make_account(make_program())
    buy(account, 10)
    with pytest.raises(Conflict) as exc:
        buy(account, 10)
    assert exc.value.code == "duplicate_external_id"


def test_return_claws_back_points_from_pending_lot_first(t0):
    program = make_program(pending_days=30, return_policy="only_pending")
    account = make_account(program)
    purchase = buy(account, 100, pending=True)
    ret = services.purchase_return_clawback(purchase=purchase, external_id="r-1", lines=[{"sku": "B", "quantity": 1}])
    assert (ret.points_reversed, ret.points_written_off) == (40, 0)
    assert (fresh(account).pending, fresh(account).reversed) == (60, 40)
    assert_ledger_invariants(program)


def test_only_pending_policy_writes_off_what_was_already_spent(t0):
    program = make_program(return_policy="only_pending")
    account = make_account(program)
    services.points_credit(account=account, points=500, reason="other")
    purchase = buy(account, 100)
    services.points_redeem(account=account, points=550)  # FEFO: 500 + 50 of the purchase lot (no expiry: oldest first)
    ret = services.purchase_return_clawback(purchase=purchase, external_id="r", amount="100.00")
    assert (ret.points_reversed, ret.points_written_off) == (50, 50)
    assert fresh(account).available == 0
    assert selectors.system_totals(program=program)["write_off"] == -50
    assert_ledger_invariants(program)


def test_within_balance_policy_takes_from_other_lots_down_to_zero_then_writes_off(t0):
    program = make_program(return_policy="within_balance")
    account = make_account(program)
    purchase = buy(account, 100)
    services.points_redeem(account=account, points=90)
    services.points_credit(account=account, points=30, reason="later earn")
    ret = services.purchase_return_clawback(purchase=purchase, external_id="r", amount="100.00")
    assert (ret.points_reversed, ret.points_written_off, ret.points_to_debt) == (40, 60, 0)
    assert fresh(account).available == 0
    assert_ledger_invariants(program)


def test_allow_negative_policy_records_debt_that_later_earns_pay_off_first(t0):
    program = make_program(return_policy="allow_negative")
    account = make_account(program)
    purchase = buy(account, 100)
    services.points_redeem(account=account, points=100)
    ret = services.purchase_return_clawback(purchase=purchase, external_id="r", amount="100.00")
    assert (ret.points_reversed, ret.points_to_debt, ret.points_written_off) == (0, 100, 0)
    assert (fresh(account).available, fresh(account).debt) == (0, 100)
    assert_ledger_invariants(program)
    services.points_credit(account=account, points=130, reason="next purchase")
    assert (fresh(account).available, fresh(account).debt) == (30, 0)
    assert_ledger_invariants(program)


def test_partial_returns_add_up_to_the_points_of_a_full_return(t0):
    program = make_program()
    account = make_account(program)
    purchase = buy(account, 99, lines=[{"sku": "A", "quantity": 3, "amount": "30.00"}])
    reversed_points = []
    for n in range(3):
        ret = services.purchase_return_clawback(
            purchase=purchase, external_id=f"r{n}", lines=[{"sku": "A", "quantity": 1}]
        )
        reversed_points.append(ret.points_reversed)
    assert sum(reversed_points) == 99 and fresh(account).available == 0
    assert_ledger_invariants(program)


def test_returning_more_than_bought_is_refused_and_changes_nothing(t0):
    program = make_program()
    account = make_account(program)
    purchase = buy(account, 100)
    with pytest.raises(ValidationFailed) as exc:
        services.purchase_return_clawback(purchase=purchase, external_id="r", lines=[{"sku": "A", "quantity": 3}])
    assert exc.value.code == "return_exceeds_purchase"
    with pytest.raises(ValidationFailed):
        services.purchase_return_clawback(purchase=purchase, external_id="r", amount="100.01")
    with pytest.raises(ValidationFailed) as exc:
        services.purchase_return_clawback(purchase=purchase, external_id="r", lines=[{"sku": "ZZZ", "quantity": 1}])
    assert exc.value.code == "return_unknown_sku"
    assert not Return.objects.exists() and fresh(account).available == 100
    assert purchase.lines.get(sku="A").returned_quantity == 0


def test_same_return_external_id_is_idempotent(t0):
    account = make_account(make_program())
    purchase = buy(account, 100)
    first = services.purchase_return_clawback(purchase=purchase, external_id="r", amount="10.00")
    again = services.purchase_return_clawback(purchase=purchase, external_id="r", amount="10.00")
    assert first.pk == again.pk and fresh(account).available == 90


def test_return_after_points_matured_takes_available_points(t0):
    program = make_program(pending_days=7)
    account = make_account(program)
    purchase = buy(account, 100, pending=True)
    clock.set_now(t0 + dt.timedelta(days=8))
    ret = services.purchase_return_clawback(purchase=purchase, external_id="r", amount="50.00")
    assert ret.points_reversed == 50 and (fresh(account).available, fresh(account).pending) == (50, 0)
    assert_ledger_invariants(program)


def test_a_second_reversal_of_a_fully_returned_purchase_is_a_conflict_and_changes_nothing(t0):
    program = make_program()
    account = make_account(program)
    purchase = buy(account, 100)
    services.purchase_return_clawback(purchase=purchase, external_id="r1", amount=purchase.eligible_amount)
    before = fresh(account).available
    with pytest.raises(Conflict) as exc:
        services.purchase_return_clawback(purchase=purchase, external_id="r2", amount="0.01")
    assert exc.value.code == "purchase_already_returned"
    assert Return.objects.count() == 1 and fresh(account).available == before
    assert_ledger_invariants(program)
