"""The batch importer feeds the rule engine each basket's lines merged by what the rules can tell
apart (``rule_lines``); the engine must give exactly what it gives for the basket's own lines."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np

from loyalty.activity.models import EarningRule
from loyalty.activity.services.purchases import earn_evaluate
from loyalty.imports.complete_journey import LineTable, rule_lines
from loyalty.ledger.models import Program
from loyalty.partners.models import Partner
from loyalty.tiers.models import Tier


def _rules() -> list[EarningRule]:
    return [
        EarningRule(
            id=1, name="Produce x2", kind="category_multiplier", categories=["PRODUCE / A"], multiplier=Decimal(2)
        ),
        EarningRule(id=2, name="Sku x3", kind="sku_multiplier", skus=["7", "11"], multiplier=Decimal("3"), priority=5),
        EarningRule(id=3, name="Dairy bonus", kind="category_bonus", categories=["DAIRY / B"], bonus_points=15),
        EarningRule(id=4, name="Sku bonus", kind="sku_bonus", skus=["5"], bonus_points=7, stackable=False),
        EarningRule(id=5, name="Big basket", kind="min_spend_bonus", min_spend=Decimal("20"), bonus_points=25),
        EarningRule(id=6, name="No tobacco", kind="exclude_categories", categories=["DRUG / C", "PRODUCE / A"]),
        EarningRule(
            id=7, name="Produce x1.5", kind="category_multiplier", categories=["DAIRY / B"], multiplier=Decimal("1.5")
        ),
    ]


def _table(rng: random.Random, rows: int) -> LineTable:
    categories = ["", "DAIRY / B", "DRUG / C", "PRODUCE / A", "MEAT / D", "GROCERY / E"]
    sizes = []
    while sum(sizes) < rows:
        sizes.append(rng.randint(1, 12))
    sizes[-1] -= sum(sizes) - rows
    sizes = [s for s in sizes if s > 0]
    starts = np.cumsum([0, *sizes[:-1]])
    discount = np.array([rng.choice([0, 0, 0, 10, 55, 120]) for _ in range(rows)], dtype="int64")
    return LineTable(
        sku=np.array([rng.randint(1, 15) for _ in range(rows)], dtype="int64"),
        category=np.array([rng.randrange(len(categories)) for _ in range(rows)], dtype="int64"),
        categories=categories,
        quantity=np.ones(rows, dtype="int64"),
        amount=discount + np.array([rng.choice([0, 1, 99, 250, 1999, 5]) for _ in range(rows)], dtype="int64"),
        discount=discount,
        first=np.repeat(starts, sizes),
    )


def _result(lines, rules, caps, tier):
    program = Program(name="p", earn_rate=Decimal("1.2500"), earn_rounding="ROUND_HALF_UP")
    partner = Partner(name="x", earn_multiplier=Decimal("1.1"))
    result = earn_evaluate(program=program, partner=partner, rules=rules, caps=caps, tier=tier, lines=lines)
    return result.points, result.earn_base, result.explanation, result.awards


def test_merged_lines_give_the_rule_engine_the_same_result_as_the_basket_lines():
    rng = random.Random(7)
    table = _table(rng, 4000)
    all_rules = _rules()
    merged = rule_lines(table, all_rules)
    tiers = [None, Tier(name="Gold", rank=2, earn_multiplier=Decimal("1.5"))]
    firsts = sorted(set(table.first.tolist()))
    stops = [*firsts[1:], len(table.sku)]
    checked = 0
    for start, stop in zip(firsts, stops, strict=True):
        lines = [table.line(i) for i in range(start, stop)]
        rules = rng.sample(all_rules, rng.randint(0, len(all_rules)))  # rules valid at some time: a subset
        caps = {r.pk: rng.choice([None, None, 0, 3, 100]) for r in rules}
        tier = rng.choice(tiers)
        assert len(merged[start]) <= len(lines)
        assert _result(merged[start], rules, caps, tier) == _result(lines, rules, caps, tier), (start, rules)
        checked += 1
    assert checked > 500


def test_without_rules_a_basket_is_one_line():
    table = _table(random.Random(3), 500)
    merged = rule_lines(table, [])
    assert all(len(lines) == 1 for lines in merged.values())
    assert (
        sum(Decimal(line["amount"]) - Decimal(line["discount"]) for lines in merged.values() for line in lines)
        == Decimal(int((table.amount - table.discount).sum())) / 100
    )
