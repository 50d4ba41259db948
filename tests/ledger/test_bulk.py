"""``points_credit_many``: the rows ``points_credit`` writes, for many credits at once."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.ledger import services
from loyalty.ledger.models import Account, Entry, LedgerTransaction, Lot
from loyalty.ledger.services import Credit, points_credit_many
from tests.ledger.conftest import T0, assert_ledger_invariants, fresh, make_account, make_program
from tests.ledger.test_returns import buy

pytestmark = pytest.mark.django_db
DAY = dt.timedelta(days=1)


def _written(account: Account) -> dict:
    """The account's figures and the rows its credits wrote, without ids."""
    account = fresh(account)
    return {
        "figures": (account.available, account.pending, account.debt, account.earned, account.last_activity_at),
        "lots": sorted(
            Lot.objects.filter(account=account).values_list(
                "points", "remaining", "is_pending", "available_at", "expires_at", "created_at"
            )
        ),
        "entries": sorted(
            (kind, points, lot is not None, at, system)
            for kind, points, lot, at, system in Entry.objects.filter(transaction__entries__account=account)
            .exclude(account=account, points__lt=0)
            .values_list("kind", "points", "lot", "created_at", "account__kind")
        ),
        "transactions": sorted(
            LedgerTransaction.objects.filter(entries__account=account).values_list(
                "kind", "reason", "actor_label", "created_at", "partner"
            )
        ),
    }


def test_credit_many_writes_what_points_credit_writes_one_by_one(db):
    program = make_program(pending_days=14, expiry_policy="fixed_months", expiry_months=12)
    one_by_one, bulk = make_account(program), make_account(program)
    times = [T0, T0 + 3 * DAY, T0 + 20 * DAY]  # the first two lots mature before the third credit
    for points, at in zip((50, 70, 30), times, strict=True):
        clock.set_now(at)
        services.points_credit(account=one_by_one, points=points, reason=f"purchase {points}", pending=True)

    result = points_credit_many(
        credits=[
            Credit(account=bulk, points=points, reason=f"purchase {points}", at=at, pending=True)
            for points, at in zip((50, 70, 30), times, strict=True)
        ]
    )

    assert result.credited == 3 and result.repeated == 0
    assert _written(bulk) == _written(one_by_one)
    assert (fresh(bulk).available, fresh(bulk).pending) == (120, 30)
    assert_ledger_invariants(program)


def test_credit_many_pays_debt_first_as_points_credit_does(t0):
    program = make_program(return_policy="allow_negative")
    account = make_account(program)
    purchase = buy(account, 100)
    services.points_redeem(account=account, points=100)
    services.purchase_return_clawback(purchase=purchase, external_id="r", amount="100.00")
    assert fresh(account).debt == 100

    points_credit_many(
        credits=[
            Credit(account=account, points=60, reason="a", at=t0),
            Credit(account=account, points=70, reason="b", at=t0),
        ]
    )

    assert (fresh(account).available, fresh(account).debt) == (30, 0)
    assert sorted(
        Lot.objects.filter(account=account, transaction__reason__in=["a", "b"]).values_list("points", flat=True)
    ) == [30]
    assert_ledger_invariants(program)


def test_same_idempotency_keys_credit_nothing_the_second_time(program, t0):
    first, second = make_account(program), make_account(program)
    credits = [
        Credit(account=first, points=10, reason="opening", at=t0, idempotency_key="k-1"),
        Credit(account=second, points=20, reason="opening", at=t0, idempotency_key="k-2"),
    ]
    assert points_credit_many(credits=credits).credited == 2

    again = points_credit_many(credits=credits)

    assert (again.credited, again.repeated) == (0, 2)
    assert (fresh(first).available, fresh(second).available) == (10, 20)
    assert LedgerTransaction.objects.count() == 2


def test_idempotency_key_of_another_account_is_refused_and_nothing_is_written(program, t0):
    first, second = make_account(program), make_account(program)
    points_credit_many(credits=[Credit(account=first, points=10, reason="x", at=t0, idempotency_key="k")])

    with pytest.raises(Conflict) as error:
        points_credit_many(
            credits=[
                Credit(account=second, points=5, reason="y", at=t0),
                Credit(account=second, points=10, reason="x", at=t0, idempotency_key="k"),
            ]
        )

    assert error.value.code == "idempotency_key_reused"
    assert fresh(second).available == 0


def test_credits_whose_points_would_expire_within_the_batch_are_refused(t0):
    program = make_program(expiry_policy="fixed_months", expiry_months=1)
    account = make_account(program)

    with pytest.raises(ValidationFailed) as error:
        points_credit_many(
            credits=[
                Credit(account=account, points=10, reason="old", at=t0),
                Credit(account=account, points=10, reason="new", at=t0 + 40 * DAY),
            ]
        )

    assert error.value.code == "credits_span_expiry"
    assert not Lot.objects.filter(account=account).exists()


def test_an_earn_in_bulk_moves_the_expiry_of_older_lots_under_inactivity_months(t0):
    program = make_program(expiry_policy="inactivity_months", expiry_months=6)
    account = make_account(program)
    services.points_credit(account=account, points=10, reason="before")
    later = t0 + 30 * DAY
    clock.set_now(later)

    points_credit_many(credits=[Credit(account=account, points=5, reason="bulk", at=later)])

    expiry = later.replace(month=later.month + 6)
    assert set(Lot.objects.filter(account=account).values_list("expires_at", flat=True)) == {expiry}
    assert fresh(account).last_activity_at == later
    assert_ledger_invariants(program)


def test_given_expiry_replaces_the_policy_for_carried_over_balances(program, t0):
    account = make_account(program)
    until = t0 + 90 * DAY

    points_credit_many(
        credits=[Credit(account=account, points=8, reason="carried", at=t0, kind="adjust", expires_at=until)]
    )

    lot = Lot.objects.get(account=account)
    assert (lot.points, lot.expires_at) == (8, until)
    assert (fresh(account).available, fresh(account).earned) == (8, 0)  # an adjustment is not earned
    assert Entry.objects.get(transaction=lot.transaction, points=-8).account.kind == "adjustment"
    assert_ledger_invariants(program)


def _columns(*lines: tuple[int, int, int]):
    """Lines as (quantity, amount cents, discount cents), sku 1.., one category."""
    import numpy as np

    from loyalty.ledger.services import PurchaseLineColumns

    return PurchaseLineColumns(
        sku=np.arange(1, len(lines) + 1, dtype="int64"),
        category=np.zeros(len(lines), dtype="int64"),
        categories=["FOOD"],
        quantity=np.array([q for q, _, _ in lines], dtype="int64"),
        amount=np.array([a for _, a, _ in lines], dtype="int64"),
        discount=np.array([d for _, _, d in lines], dtype="int64"),
    )


def test_purchases_in_bulk_store_eligible_amounts_and_credit_pending_points(t0):
    from loyalty.ledger.models import Purchase
    from loyalty.ledger.services import NewPurchase, purchases_record_many

    program = make_program(pending_days=14)
    account = make_account(program)
    lines = _columns((2, 6000, 500), (1, 4000, 0), (1, 1000, 0))

    ids = purchases_record_many(
        program=program,
        partner=None,
        purchases=[
            NewPurchase(account=account, external_id="b-1", occurred_at=t0, start=0, stop=2, points=95),
            NewPurchase(account=account, external_id="b-2", occurred_at=t0, start=2, stop=3),
        ],
        lines=lines,
    )

    first, second = Purchase.objects.get(pk=ids[0]), Purchase.objects.get(pk=ids[1])
    assert (str(first.eligible_amount), first.points_earned, first.lines.count()) == ("95.00", 95, 2)
    assert (str(second.eligible_amount), second.points_earned) == ("10.00", 0)
    assert (fresh(account).pending, fresh(account).earned) == (95, 95)
    assert LedgerTransaction.objects.get(purchase=first).reason == "purchase b-1"
    assert_ledger_invariants(program)


def test_purchases_in_bulk_with_a_known_external_id_write_nothing(t0):
    from loyalty.ledger.models import Purchase
    from loyalty.ledger.services import NewPurchase, purchases_record_many

    program = make_program()
    account = make_account(program)
    lines = _columns((1, 1000, 0), (1, 2000, 0))
    purchases_record_many(
        program=program,
        partner=None,
        purchases=[NewPurchase(account=account, external_id="b-1", occurred_at=t0, start=0, stop=1, points=10)],
        lines=lines,
    )

    with pytest.raises(Conflict) as error:
        purchases_record_many(
            program=program,
            partner=None,
            purchases=[
                NewPurchase(account=account, external_id="b-2", occurred_at=t0, start=1, stop=2, points=20),
                NewPurchase(account=account, external_id="b-1", occurred_at=t0, start=0, stop=1, points=10),
            ],
            lines=lines,
        )

    assert error.value.code == "duplicate_external_id"
    assert list(Purchase.objects.values_list("external_id", flat=True)) == ["b-1"]
    assert fresh(account).available == 10


def test_purchase_lines_in_bulk_follow_the_ledger_line_rule(t0):
    from loyalty.ledger.services import NewPurchase, purchases_record_many

    program = make_program()
    account = make_account(program)

    with pytest.raises(ValidationFailed) as error:
        purchases_record_many(
            program=program,
            partner=None,
            purchases=[NewPurchase(account=account, external_id="b-1", occurred_at=t0, start=0, stop=1)],
            lines=_columns((1, 1000, 1500)),  # discount above the amount
        )

    assert error.value.code == "invalid_line"
