"""The one source of "now". Tests move it with ``clock.frozen(...)`` / ``clock.travel(...)``.

All code asks ``clock.now()`` (timezone-aware UTC) instead of ``timezone.now()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    return _frozen if _frozen is not None else timezone.now()


def today() -> dt.date:
    return now().date()


def set_now(value: dt.datetime | None) -> None:
    """Freeze the clock at ``value`` (aware datetime), or unfreeze with ``None``."""
    global _frozen
    if value is not None and timezone.is_naive(value):
        raise ValueError("clock needs an aware datetime")
    _frozen = value


def advance(delta: dt.timedelta) -> dt.datetime:
    """Move a frozen clock forward (freezing it at the current time first if needed)."""
    set_now(now() + delta)
    return now()


@contextmanager
def frozen(value: dt.datetime) -> Iterator[None]:
    previous = _frozen
    set_now(value)
    try:
        yield
    finally:
        set_now(previous)
