"""Concurrency on PostgreSQL with real threads: row locks keep the ledger exact.
Each test starts its threads at a barrier; the whole set is repeated 20 times in a row."""

import pytest

from loyalty.core.errors import Conflict
from loyalty.ledger import services
from loyalty.ledger.models import Entry, LedgerTransaction
from tests.concurrency import run_together
from tests.ledger.conftest import assert_ledger_invariants, fresh, make_account, make_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RUNS = range(20)


@pytest.mark.parametrize("run", RUNS)
def test_50_concurrent_debits_of_100_on_1000_exactly_10_succeed(run):
    program = make_program()
    account = make_account(program)
    services.points_credit(account=account, points=1000, reason="start")
    results = run_together(50, lambda i: services.points_debit(account=account, points=100, reason=f"d{i}"))
    ok = [r for r in results if isinstance(r, LedgerTransaction)]
    refused = [r for r in results if isinstance(r, Conflict) and r.code == "insufficient_points"]
    assert (len(ok), len(refused)) == (10, 40), [
        type(r) for r in results if not isinstance(r, LedgerTransaction | Conflict)
    ]
    assert fresh(account).available == 0
    assert_ledger_invariants(program)


@pytest.mark.parametrize("run", RUNS)
def test_concurrent_credits_and_debits_lose_no_update(run):
    program = make_program()
    account = make_account(program)
    services.points_credit(account=account, points=500, reason="start")

    def work(i):
        if i % 2:
            return services.points_credit(account=account, points=7, reason=f"c{i}")
        return services.points_debit(account=account, points=5, reason=f"d{i}")

    results = run_together(20, work)
    assert all(isinstance(r, LedgerTransaction) for r in results), results
    assert fresh(account).available == 500 + 10 * 7 - 10 * 5
    assert_ledger_invariants(program)


@pytest.mark.parametrize("run", RUNS)
def test_same_idempotency_key_from_20_threads_credits_once(run):
    program = make_program()
    account = make_account(program)
    results = run_together(
        20, lambda i: services.points_credit(account=account, points=40, reason="once", idempotency_key=f"same-{run}")
    )
    assert all(isinstance(r, LedgerTransaction) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert fresh(account).available == 40 and Entry.objects.filter(account=account).count() == 1


@pytest.mark.parametrize("run", RUNS)
def test_two_opposite_transfers_at_once_do_not_deadlock(run):
    program = make_program()
    a, b = make_account(program), make_account(program)
    services.points_credit(account=a, points=100, reason="a")
    services.points_credit(account=b, points=100, reason="b")
    pairs = [(a, b), (b, a)] * 5
    results = run_together(
        10, lambda i: services.points_transfer(source=pairs[i][0], target=pairs[i][1], points=10, reason="swap")
    )
    assert all(isinstance(r, LedgerTransaction) for r in results), results
    assert fresh(a).available + fresh(b).available == 200
    assert (fresh(a).available, fresh(b).available) == (100, 100)
    assert_ledger_invariants(program)


@pytest.mark.parametrize("run", range(5))
def test_expiry_job_and_debits_at_once_keep_the_ledger_exact(run):
    import datetime as dt

    from loyalty.core import clock

    program = make_program(expiry_policy="fixed_months", expiry_months=1)
    accounts = [make_account(program) for _ in range(5)]
    for account in accounts:
        services.points_credit(account=account, points=50, reason="old")
    clock.set_now(clock.now() + dt.timedelta(days=40))
    for account in accounts:
        services.points_credit(account=account, points=20, reason="new")

    def work(i):
        if i == 0:
            return services.expire_due_lots()
        return services.points_debit(account=accounts[i - 1], points=20, reason="spend")

    results = run_together(6, work)
    assert not any(isinstance(r, BaseException) for r in results), results
    for account in accounts:
        assert (fresh(account).available, fresh(account).expired) == (0, 50)
    assert_ledger_invariants(program)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_expiry_in_parallel_windows_expires_every_due_lot_once(workers):
    """The expiry job on several connections at once (disjoint windows of accounts) writes one
    expire entry per due lot, empties every due lot, keeps the ledger exact, and a second run
    changes nothing."""
    import datetime as dt

    from loyalty.core import clock
    from loyalty.ledger.models import Lot

    program = make_program(expiry_policy="fixed_months", expiry_months=1)
    accounts = [make_account(program) for _ in range(9)]
    for account in accounts:
        services.points_credit(account=account, points=30, reason="old")
        services.points_credit(account=account, points=12, reason="old too")
    clock.set_now(clock.now() + dt.timedelta(days=40))
    services.points_credit(account=accounts[0], points=5, reason="fresh")  # settles (expires) this one first

    assert services.expire_due_lots(batch=2, workers=workers) == 8
    assert services.expire_due_lots(batch=2, workers=workers) == 0
    assert Entry.objects.filter(kind="expire", lot__isnull=False).count() == 18
    assert not Lot.objects.filter(remaining__gt=0, expires_at__lte=clock.now()).exists()
    assert [(fresh(a).available, fresh(a).expired) for a in accounts] == [(5, 42)] + [(0, 42)] * 8
    assert LedgerTransaction.objects.filter(kind="expire").count() == 9
    assert_ledger_invariants(program)
