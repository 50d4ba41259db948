"""Promise 6: the stateful ledger machine (tests/ledger/test_invariants_stateful.py, the same class
``make test`` runs at 20 examples × 25 steps) run at 200 examples × 50 steps on PostgreSQL: credits,
debits, purchases through the workflow with a budgeted bonus offer, returns, refunds, transfers,
adjustments, reward redemptions and cancels, coupon uses and cancels, a campaign promoting the offer
and the reward, clock moves, maturation and expiry, with every invariant checked after every step."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.ledger.test_invariants_stateful import LedgerMachine

EXAMPLES = int(os.environ.get("LEDGER_MACHINE_EXAMPLES", "200"))  # verify runs 200; fewer while developing
STEPS = 50


@pytest.mark.django_db
def test_ledger_machine_keeps_every_invariant_after_every_step(figure):
    """Rule: for any sequence of the machine's operations (≥ 200 examples × 50 steps), after every step
    transactions balance, balances equal their entries and open lots less debt, no lot is below zero
    or spent after its expiry, no event is twice in the outbox, and reward stock, coupon uses, offer
    budgets and the campaign's attribution agree with what the machine did."""
    LedgerMachine.examples = LedgerMachine.steps = 0
    started = time.monotonic()
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,  # the same fresh exploration on every run, not a replay of a local cache
        ),
    )
    seconds = time.monotonic() - started
    examples, steps = LedgerMachine.examples, LedgerMachine.steps
    assert examples >= EXAMPLES, examples
    assert steps >= examples * 10, (examples, steps)  # the examples really ran sequences of steps
    figure(
        6,
        f"stateful ledger machine, {EXAMPLES} examples × up to {STEPS} steps",
        f"{examples} examples, {steps} steps checked (invariants after each), {steps / seconds:.0f} steps/s, "
        f"0 violations, {seconds:.0f} s",
    )
