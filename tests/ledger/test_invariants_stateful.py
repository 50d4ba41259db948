"""For any sequence of credits, debits, returns, refunds, transfers, adjustments, clock moves,
maturation and expiry: every transaction balances, balance == sum(entries) == sum(lots)
(minus debt), no lot below zero, no lot consumed past its expiry."""

import contextlib
import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty.core import clock
from loyalty.core.errors import ApplicationError
from loyalty.ledger import services
from loyalty.ledger.models import Purchase, Redemption, RedemptionStatus
from tests.factories import StaffFactory
from tests.ledger.conftest import T0, assert_ledger_invariants, make_account, make_program

_ids = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    @initialize(
        return_policy=st.sampled_from(["only_pending", "within_balance", "allow_negative"]),
        expiry=st.sampled_from([("never", 0), ("fixed_months", 1), ("inactivity_months", 2)]),
        pending_days=st.sampled_from([0, 3]),
    )
    def setup(self, return_policy, expiry, pending_days):
        clock.set_now(T0)
        self.program = make_program(
            return_policy=return_policy,
            expiry_policy=expiry[0],
            expiry_months=expiry[1],
            pending_days=pending_days,
            refund_grace_days=5,
        )
        self.accounts = [make_account(self.program), make_account(self.program)]
        self.staff = StaffFactory(username="machine-staff")

    def _try(self, fn, **kwargs):
        with contextlib.suppress(ApplicationError):  # refused actions must change nothing; the invariant checks it
            fn(**kwargs)

    @rule(who=st.integers(0, 1), points=st.integers(1, 300), pending=st.booleans())
    def credit(self, who, points, pending):
        services.points_credit(account=self.accounts[who], points=points, reason="earn", pending=pending)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 400), points=st.integers(0, 400))
    def purchase(self, who, amount, points):
        account = self.accounts[who]
        purchase = services.purchase_create(
            program=self.program,
            member=account.member,
            external_id=f"p{next(_ids)}",
            occurred_at=clock.now(),
            lines=[{"sku": "A", "quantity": 4, "amount": str(amount)}],
        )
        if points:
            services.points_credit(account=account, points=points, reason="purchase", purchase=purchase, pending=True)

    @precondition(lambda self: Purchase.objects.filter(program=self.program).exists())
    @rule(pick=st.integers(0, 10_000), quantity=st.integers(1, 5))
    def return_lines(self, pick, quantity):
        purchases = list(Purchase.objects.filter(program=self.program).order_by("pk"))
        purchase = purchases[pick % len(purchases)]
        self._try(
            services.purchase_return_clawback,
            purchase=purchase,
            external_id=f"r{next(_ids)}",
            lines=[{"sku": "A", "quantity": quantity}],
        )

    @rule(who=st.integers(0, 1), points=st.integers(1, 300))
    def redeem(self, who, points):
        self._try(services.points_redeem, account=self.accounts[who], points=points)

    @precondition(
        lambda self: Redemption.objects.filter(
            account__program=self.program, status=RedemptionStatus.COMPLETED
        ).exists()
    )
    @rule(pick=st.integers(0, 10_000))
    def refund(self, pick):
        open_ones = list(
            Redemption.objects.filter(account__program=self.program, status=RedemptionStatus.COMPLETED).order_by("pk")
        )
        services.points_refund(redemption=open_ones[pick % len(open_ones)])

    @rule(points=st.integers(1, 300), direction=st.booleans())
    def transfer(self, points, direction):
        source, target = self.accounts if direction else self.accounts[::-1]
        self._try(services.points_transfer, source=source, target=target, points=points, reason="gift")

    @rule(who=st.integers(0, 1), points=st.integers(-200, 200).filter(bool))
    def adjust(self, who, points):
        self._try(services.points_adjust, account=self.accounts[who], points=points, reason="fix", actor=self.staff)

    @rule(days=st.integers(1, 40))
    def advance(self, days):
        clock.advance(dt.timedelta(days=days))

    @rule()
    def mature(self):
        services.mature_pending_lots()

    @rule()
    def expire(self):
        services.expire_due_lots()

    @invariant()
    def ledger_is_exact(self):
        if hasattr(self, "program"):
            for account in self.accounts:
                account.refresh_from_db()
            assert_ledger_invariants(self.program)

    def teardown(self):
        clock.set_now(None)


@pytest.mark.django_db
def test_ledger_invariants_hold_for_any_sequence_of_operations():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
