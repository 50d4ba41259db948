"""Explanations in words at the source, and the outbox of jobs: events nobody subscribes to never wait."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.activity.rules import Context, Line, Rule, evaluate
from loyalty.core import clock
from loyalty.ledger import services
from loyalty.ledger.explanations import explanation_words
from loyalty.ledger.models import Lot
from loyalty.ledger.policy import points_text
from loyalty.partners.models import OutboxEvent, Partner, WebhookEndpoint
from tests.ledger.conftest import make_account, make_program

T0 = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.UTC)


def test_points_text_writes_whole_numbers_without_exponent_or_trailing_zeros():
    assert points_text(Decimal("50.000").normalize()) == "50"  # Decimal('5E+1')
    assert points_text(Decimal("1.0000")) == "1"
    assert points_text(Decimal("12.500")) == "12.5"
    assert points_text(7) == "7"


def test_base_rate_line_reads_spend_times_rate_equals_points():
    result = evaluate([Line(sku="A", category="DAIRY", amount=Decimal("50.00"))], Context(earn_rate=Decimal("1.0")), [])
    base = result.explanation[0]
    assert base == {"rule": "Base rate", "detail": "50.00 × 1 = 50", "points": "50"}
    assert "E+" not in str(result.explanation)


def test_rule_lines_name_the_rule_and_give_whole_points():
    rule = Rule(
        id=1,
        name="Dairy double",
        kind="category_multiplier",
        categories=frozenset({"DAIRY"}),
        multiplier=Decimal("2.000"),
    )
    result = evaluate(
        [Line(sku="A", category="DAIRY", amount=Decimal("40.00"))], Context(earn_rate=Decimal("1.0000")), [rule]
    )
    line = result.explanation[1]
    assert line == {"rule": "Dairy double", "detail": "40.00 × 1 × (2 − 1) = 40", "points": "40"}
    assert explanation_words(result.explanation) == ["Points for 40.00 spent: +40", "Dairy double: +40"]


def test_old_rows_with_exponent_points_still_read_in_words():
    old = [{"rule": "Base rate", "detail": "80.00 × 1.0000", "points": "8E+1"}, {"rule": "Total", "points": "80"}]
    assert explanation_words(old, with_total=True) == ["Points for 80.00 spent: +80", "Total: 80 points"]


@pytest.mark.django_db
def test_expiry_job_marks_events_nobody_subscribes_to_as_published():
    clock.set_now(T0)
    program = make_program(expiry_policy="fixed_months", expiry_months=3)
    account = make_account(program)
    services.points_credit(account=account, points=70, reason="x")
    clock.set_now(Lot.objects.get(account=account).expires_at)
    assert services.expire_due_lots() == 1
    event = OutboxEvent.objects.get(event_type="points.expired")
    assert event.published_at is not None


@pytest.mark.django_db
def test_expiry_job_leaves_events_an_endpoint_subscribes_to_for_delivery():
    clock.set_now(T0)
    partner = Partner.objects.create(name="Hooked")
    WebhookEndpoint.objects.create(
        partner=partner, url="https://hooks.example.com/x", event_types=["points.expired"], created_at=T0
    )
    program = make_program(expiry_policy="fixed_months", expiry_months=3)
    account = make_account(program)
    services.points_credit(account=account, points=70, reason="x")
    clock.set_now(Lot.objects.get(account=account).expires_at)
    services.expire_due_lots()
    assert OutboxEvent.objects.get(event_type="points.expired").published_at is None


@pytest.mark.django_db
def test_expiring_notice_without_subscriber_is_published_at_once():
    clock.set_now(T0)
    program = make_program(expiry_policy="fixed_months", expiry_months=3)
    account = make_account(program)
    services.points_credit(account=account, points=70, reason="x")
    lot = Lot.objects.get(account=account)
    clock.set_now(lot.expires_at - dt.timedelta(days=7))
    assert services.expiring_notify(days=7) == 1
    assert OutboxEvent.objects.get(event_type="points.expiring").published_at is not None
