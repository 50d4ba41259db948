"""Server-rendered SVG charts (no script, no CDN): line, bar (grouped), stacked bar and heat-grid.

Each chart is drawn from the rows of the table shown under it; it has a title, axis labels, a
<title>/<desc> for screen readers (role="img", aria-labelledby) and a legend. Text is escaped."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from html import escape
from itertools import count
from typing import Any

from django.utils.safestring import SafeString, mark_safe

# Okabe-Ito: told apart by most colour-blind readers
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 44, 64
_ids = count(1)


def fmt(value: Any, kind: str = "int") -> str:
    """A value as people read it: 12,345; 12.3%; 1,234.50; 'Mar 2026'."""
    if value is None or value == "":
        return "–"
    if kind == "rate":
        return f"{float(value):.1%}"
    if kind == "money":
        return f"{Decimal(value):,.2f}"
    if kind == "ratio":
        return f"{float(value):,.2f}"
    if kind == "month" and isinstance(value, dt.date):
        return value.strftime("%b %Y")
    if kind == "date" and isinstance(value, dt.date):
        return value.strftime("%d %b %Y")
    if isinstance(value, int | Decimal) and kind in ("int", "points"):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _short(value: Any, kind: str) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%b %y") if kind == "month" or value.day == 1 else value.strftime("%d %b")
    text = fmt(value, kind)
    return text if len(text) <= 24 else text[:23] + "…"


def _nice_ticks(low: float, high: float, n: int = 5) -> list[float]:
    if high == low:
        high = low + 1
    raw = (high - low) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, t = [], start
    while t <= high + step * 0.001:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def _axis_value(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value:.0%}"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:,.0f}k"
    if value != int(value):
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _frame(
    title: str, description: str, body: list[str], legend: list[tuple[str, str]], height: int = HEIGHT
) -> SafeString:
    n = next(_ids)
    items, x = [], LEFT
    for color, label in legend:
        items.append(
            f'<rect x="{x}" y="26" width="12" height="12" fill="{color}"/>'
            f'<text x="{x + 16}" y="36" class="legend">{escape(label)}</text>'
        )
        x += 28 + 7 * len(label)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" class="chart" role="img" '
        f'aria-labelledby="chart{n}-title chart{n}-desc" preserveAspectRatio="xMinYMin meet">'
        f'<title id="chart{n}-title">{escape(title)}</title><desc id="chart{n}-desc">{escape(description)}</desc>'
        f'<text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>'
        + "".join(items)
        + "".join(body)
        + "</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - every text in it is escaped


def _axes(ticks: list[float], y_of, y_kind: str, x_label: str, y_label: str, height: int) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{escape(_axis_value(t, y_kind))}</text>'
        )
    out.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y_of(max(0, ticks[0])):.1f}" y2="{y_of(max(0, ticks[0])):.1f}" class="axis"/>'
    )
    out.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{height - 6}" class="axis-label" text-anchor="middle">{escape(x_label)}</text>'
    )
    mid = (TOP + height - BOTTOM) / 2
    out.append(
        f'<text x="14" y="{mid}" class="axis-label" text-anchor="middle" transform="rotate(-90 14 {mid})">{escape(y_label)}</text>'
    )
    return out


def _x_labels(labels: list[str], x_of, base: float, *, slanted: bool = False) -> list[str]:
    """Labels under the x axis at ``base`` (the axis' y); slanted for long names side by side."""
    if slanted:
        return [
            f'<text x="{x_of(i):.1f}" y="{base + 14:.1f}" class="tick" text-anchor="end" '
            f'transform="rotate(-35 {x_of(i):.1f} {base + 14:.1f})">{escape(label)}</text>'
            for i, label in enumerate(labels)
        ]
    every = max(1, math.ceil(len(labels) / 12))
    return [
        f'<text x="{x_of(i):.1f}" y="{base + 16:.1f}" class="tick" text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _describe(
    kind: str, title: str, rows: Sequence[dict], x: str, series: Sequence[tuple[str, str, str]], x_kind: str
) -> str:
    if not rows:
        return f"{title}: no data in this range."
    parts = []
    for key, label, s_kind in series:
        values = [(r[x], _num(r.get(key))) for r in rows if _num(r.get(key)) is not None]
        if values:
            top = max(values, key=lambda v: v[1])
            parts.append(
                f"{label}: highest {fmt(top[1] if s_kind != 'int' else int(top[1]), s_kind)} ({fmt(top[0], x_kind)})"
            )
    return (
        f"{kind} chart of {len(rows)} rows from {fmt(rows[0][x], x_kind)} to {fmt(rows[-1][x], x_kind)}. "
        + "; ".join(parts)
        + ". The table below has every value."
    )


def render(chart, table) -> SafeString:
    """The SVG of ``chart`` drawn from ``table`` (``selectors.base.Chart`` and ``Table``)."""
    columns = {c.key: c for c in table.columns}
    rows = table.rows[: chart.limit] if chart.limit else table.rows
    series = [(key, columns[key].label, columns[key].kind) for key in chart.series]
    x_kind = columns[chart.x].kind
    if not series:
        rows = []
    if chart.kind == "heat" and rows:
        return heat_grid(chart.title, rows, chart.x, series, x_kind, chart.x_label, chart.y_label)
    description = chart.description or _describe(chart.kind, chart.title, rows, chart.x, series, x_kind)
    if not rows or not series:
        return _frame(
            chart.title,
            description,
            [f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" class="empty" text-anchor="middle">No data in this range</text>'],
            [],
        )
    return xy_chart(chart.kind, chart.title, description, rows, chart.x, series, x_kind, chart.x_label, chart.y_label)


def xy_chart(kind, title, description, rows, x, series, x_kind, x_label, y_label) -> SafeString:
    labels = [_short(r[x], x_kind) for r in rows]
    slanted = x_kind == "text" and len(rows) * max(len(label) for label in labels) * 6.5 > WIDTH - LEFT - RIGHT
    extra = int(min(110, 6 * max(len(label) for label in labels))) if slanted else 0
    height = HEIGHT + extra
    y_kind = series[0][2]
    if kind == "stacked":
        highs = [sum(max(0.0, _num(r.get(k)) or 0) for k, _, _ in series) for r in rows]
        lows = [sum(min(0.0, _num(r.get(k)) or 0) for k, _, _ in series) for r in rows]
    else:
        values = [_num(r.get(k)) for r in rows for k, _, _ in series]
        values = [v for v in values if v is not None] or [0.0]
        highs, lows = values, values
    low, high = min(0.0, min(lows)), max(0.0, max(highs))
    ticks = _nice_ticks(low, high)
    low, high = ticks[0], ticks[-1]
    plot_h = height - extra - TOP - BOTTOM - 10
    top = TOP + 10

    def y_of(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    n = len(rows)
    slot = (WIDTH - LEFT - RIGHT) / n

    def x_of(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    body = _axes(ticks, y_of, y_kind, x_label, y_label, height)
    body += _x_labels(labels, x_of, top + plot_h, slanted=slanted)
    zero = y_of(0)
    for s, (key, label, s_kind) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        if kind == "line":
            points = [(x_of(i), y_of(v)) for i, r in enumerate(rows) if (v := _num(r.get(key))) is not None]
            if len(points) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
                body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
            for i, r in enumerate(rows):
                v = _num(r.get(key))
                if v is not None:
                    body.append(
                        f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3" fill="{color}">'
                        f"<title>{escape(label)}, {escape(fmt(r[x], x_kind))}: {escape(fmt(r.get(key), s_kind))}</title></circle>"
                    )
        elif kind == "bar":
            width = slot * 0.8 / len(series)
            for i, r in enumerate(rows):
                v = _num(r.get(key))
                if v is None:
                    continue
                bx = x_of(i) - slot * 0.4 + s * width
                y1, y2 = sorted((y_of(v), zero))
                body.append(
                    f'<rect x="{bx:.1f}" y="{y1:.1f}" width="{max(width - 1, 1):.1f}" height="{max(y2 - y1, 0.5):.1f}" fill="{color}">'
                    f"<title>{escape(label)}, {escape(fmt(r[x], x_kind))}: {escape(fmt(r.get(key), s_kind))}</title></rect>"
                )
    if kind == "stacked":
        width = slot * 0.7
        for i, r in enumerate(rows):
            up, down = 0.0, 0.0
            for s, (key, label, s_kind) in enumerate(series):
                v = _num(r.get(key)) or 0.0
                if v >= 0:
                    y1, y2 = y_of(up + v), y_of(up)
                    up += v
                else:
                    y1, y2 = y_of(down), y_of(down + v)
                    down += v
                body.append(
                    f'<rect x="{x_of(i) - width / 2:.1f}" y="{y1:.1f}" width="{width:.1f}" height="{max(y2 - y1, 0):.1f}" '
                    f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)}, {escape(fmt(r[x], x_kind))}: '
                    f"{escape(fmt(r.get(key), s_kind))}</title></rect>"
                )
    legend = [(PALETTE[s % len(PALETTE)], label) for s, (_, label, _) in enumerate(series)]
    return _frame(title, description, body, legend, height)


def heat_grid(title, rows, x, series, x_kind, x_label, y_label) -> SafeString:
    """Rows are the grid's rows (labelled by ``x``), ``series`` its columns; darker = higher."""
    cell_w = (WIDTH - LEFT - RIGHT) / max(1, len(series))
    cell_h = 26
    height = TOP + 24 + cell_h * max(1, len(rows)) + 40
    values = [_num(r.get(k)) for r in rows for k, _, _ in series]
    values = [v for v in values if v is not None]
    high = max(values) if values else 1.0
    high = high or 1.0
    body = []
    for j, (_, label, _) in enumerate(series):
        body.append(
            f'<text x="{LEFT + cell_w * (j + 0.5):.1f}" y="{TOP + 16}" class="tick" text-anchor="middle">{escape(label)}</text>'
        )
    for i, r in enumerate(rows):
        y = TOP + 24 + i * cell_h
        body.append(
            f'<text x="{LEFT - 6}" y="{y + 17}" class="tick" text-anchor="end">{escape(_short(r[x], x_kind))}</text>'
        )
        for j, (key, label, s_kind) in enumerate(series):
            v = _num(r.get(key))
            shade = 0.0 if v is None else max(0.0, v) / high
            fill = "#f2f2f2" if v is None else f"rgba(0,114,178,{0.08 + 0.92 * shade:.3f})"
            text_class = "cell-dark" if shade > 0.55 else "cell"
            body.append(
                f'<rect x="{LEFT + j * cell_w:.1f}" y="{y}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" fill="{fill}">'
                f"<title>{escape(fmt(r[x], x_kind))}, {escape(label)}: {escape(fmt(r.get(key), s_kind))}</title></rect>"
            )
            if v is not None:
                body.append(
                    f'<text x="{LEFT + (j + 0.5) * cell_w:.1f}" y="{y + 17}" class="{text_class}" text-anchor="middle">'
                    f"{escape(_axis_value(v, s_kind) if s_kind == 'rate' else fmt(r.get(key), s_kind))}</text>"
                )
    body.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{height - 8}" class="axis-label" text-anchor="middle">{escape(x_label)}</text>'
    )
    mid = (TOP + height) / 2
    body.append(
        f'<text x="14" y="{mid}" class="axis-label" text-anchor="middle" transform="rotate(-90 14 {mid})">{escape(y_label)}</text>'
    )
    description = f"Heat grid of {len(rows)} rows by {len(series)} columns; darker cells hold higher values. The table below has every value."
    return _frame(title, description, body, [], height)
