"""The reliability proof (`make verify`): each test proves one promise of the platform against real
PostgreSQL, Redis and Celery on 127.0.0.1 and records its figure with the ``figure`` fixture. The
figures are printed at the end of the run and written to ``test-artifacts/verify-figures.md``, from
which the README's reliability section is updated.

Files are numbered by the promise they prove (the numbering of docs/reliability.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = ROOT / "test-artifacts" / "verify-figures.md"


@dataclass
class Figure:
    promise: int
    name: str
    value: str
    test: str
    seconds: float = 0.0


_figures: list[Figure] = []


@pytest.fixture
def figure(request):
    """``figure(promise, name, value)`` records what a test measured, e.g.
    ``figure(1, "64 uses of a 10-use coupon", "10 × 201, 54 × 409 coupon_exhausted, 0 × 5xx")``.
    Record it after the assertions, so a figure is only printed for a promise kept."""
    started = time.monotonic()

    def record(promise: int, name: str, value: str) -> None:
        _figures.append(Figure(promise, name, value, request.node.nodeid, time.monotonic() - started))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.getoption("--verify") or not _figures:
        return
    figures = sorted(_figures, key=lambda f: f.promise)
    terminalreporter.section("reliability figures")
    lines = ["| # | Promise | Figure | Test |", "|---|---|---|---|"]
    for f in figures:
        terminalreporter.write_line(f"{f.promise:>2}  {f.name}: {f.value}  ({f.seconds:.1f} s)")
        lines.append(f"| {f.promise} | {f.name} | {f.value} | `{f.test}` |")
    FIGURES_FILE.parent.mkdir(exist_ok=True)
    FIGURES_FILE.write_text("\n".join(lines) + "\n")
    terminalreporter.write_line(f"figures written to {FIGURES_FILE.relative_to(ROOT)}")
