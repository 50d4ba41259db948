"""Shared helpers for offers tests: offers and rewards written as staff would (all fields
explicit where a test cares, sensible defaults elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.core import clock
from loyalty.ledger.selectors import program_default
from offers.models import BenefitKind, Offer, OfferStatus, Reward, RewardKind

M2M = ("segments_include", "segments_exclude", "tiers", "partners", "scope_partners")


def offer_make(**fields: Any) -> Offer:
    """An active offer of the default program (bonus of 10 points on any purchase unless told)."""
    related = {name: fields.pop(name) for name in M2M if name in fields}
    now = clock.now()
    values: dict[str, Any] = {
        "program": program_default(),
        "name": "Test offer",
        "status": OfferStatus.ACTIVE,
        "benefit_kind": BenefitKind.BONUS_FIXED,
        "benefit_points": 10,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    offer = Offer.objects.create(**values)
    for name, items in related.items():
        getattr(offer, name).set(items)
    return offer


def reward_make(**fields: Any) -> Reward:
    """An active reward of the default program (100 points, amount coupon of 5, unlimited)."""
    related = {name: fields.pop(name) for name in ("segments_include", "segments_exclude", "tiers") if name in fields}
    now = clock.now()
    values: dict[str, Any] = {
        "program": program_default(),
        "name": "Test reward",
        "kind": RewardKind.AMOUNT_COUPON,
        "points_cost": 100,
        "value": 5,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    reward = Reward.objects.create(**values)
    for name, items in related.items():
        getattr(reward, name).set(items)
    return reward


@pytest.fixture
def program(db):
    return program_default()
