"""A ledger transaction's explanation (the earning rules' lines) in plain words, for every screen
that shows it: the member portal, the admin and the member's page. Old rows written before the
points were formatted at the source ("8E+1") read the same as new ones ("80")."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def number_words(text: Any) -> str:
    """A rule's points or rate as a person writes it: 80, 1.5, 1,200 (not 8E+1)."""
    try:
        value = Decimal(str(text))
    except (ArithmeticError, InvalidOperation):
        return str(text)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,f}".rstrip("0").rstrip(".")


def explanation_words(explanation: list[dict[str, Any]] | None, *, with_total: bool = False) -> list[str]:
    """The earning rules' explanation lines in plain words: "Double points on dairy: +40"."""
    words = []
    for item in explanation or []:
        rule, detail, points = item.get("rule", ""), item.get("detail", ""), item.get("points")
        if rule == "Total":
            if with_total and points is not None:
                words.append(
                    f"Total: {number_words(points)} points ({detail})"
                    if detail
                    else f"Total: {number_words(points)} points"
                )
            continue
        if rule == "Base rate" and points is not None:
            spend, _, rate = str(detail).partition(" × ")
            rate = rate.partition(" = ")[0]  # "50.00 × 1 = 50": the rate before the result
            try:
                per = f" ({number_words(rate)} a unit)" if rate and Decimal(rate) != 1 else ""
            except (ArithmeticError, InvalidOperation):
                per = ""
            words.append(f"Points for {spend} spent{per}: +{number_words(points)}")
        elif detail == "cap reached":
            words.append(f"{rule}: limit reached, no more points this period")
        elif points is not None:
            words.append(f"{rule}: +{number_words(points)}")
        else:
            words.append(f"{rule}: {detail}" if not str(detail).startswith("×") else f"{rule} {detail}")
    return words
