"""How figures read on the member's pages: points with thousands separators, signed movements,
money with two decimals."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def points(value) -> str:
    return f"{int(value or 0):,}"


@register.filter
def signed(value) -> str:
    value = int(value or 0)
    return f"+{value:,}" if value > 0 else f"−{abs(value):,}" if value < 0 else "0"


@register.filter
def figure(value, metric: str = "") -> str:
    """A tier metric: spend as money, points and purchases as whole numbers."""
    if metric == "spend" or isinstance(value, Decimal):
        return f"{Decimal(value or 0):,.2f}"
    return f"{int(value or 0):,}"
