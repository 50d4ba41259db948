"""What every dashboard selector takes and returns: the filters, and plain data for the page
(headline figures, tables, and the charts drawn from those tables)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loyalty.ledger.models import Program
from loyalty.partners.models import Partner

CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Filters:
    program: Program
    start: dt.date
    end: dt.date  # inclusive
    partner: Partner | None = None

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)

    @property
    def end_at(self) -> dt.datetime:
        """The moment after the last day."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    @property
    def partner_key(self) -> int:
        return self.partner.pk if self.partner else 0

    def months(self) -> list[dt.date]:
        """First day of every month the range touches."""
        months, month = [], self.start.replace(day=1)
        while month <= self.end:
            months.append(month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return months


@dataclass
class Column:
    key: str
    label: str
    kind: str = "int"  # int, money, points, rate (0..1), text, date, month


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""


@dataclass
class Chart:
    kind: str  # line, bar, stacked, heat
    title: str
    table: str  # id of the table it is drawn from
    x: str  # key of the x column (heat: the row label column)
    series: list[str]  # keys of the plotted columns (heat: the cell columns)
    x_label: str = ""
    y_label: str = ""
    description: str = ""
    limit: int | None = None  # plot only the first rows (the table keeps them all)


@dataclass
class Figure:
    label: str
    value: Any
    kind: str = "int"
    note: str = ""


@dataclass
class Page:
    title: str
    figures: list[Figure] = field(default_factory=list)
    sections: list[tuple[Chart | None, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, table_id: str) -> Table | None:
        return next((t for _, t in self.sections if t.id == table_id), None)


def ratio(numerator, denominator) -> float | None:
    """numerator ÷ denominator to 4 decimals, None when nothing to divide by."""
    if not denominator:
        return None
    return round(float(numerator) / float(denominator), 4)


def money(value) -> Decimal:
    return Decimal(value or 0).quantize(CENTS)


def month_end(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value
