"""Program configuration read once per process, kept exact by a stamp in the database.

Programs, earning rules, tiers, partners, webhook endpoints and system accounts change a few
times a day but are read by every purchase. Row triggers on each configuration table (created
by each app's migration, their SQL written there verbatim; PostgreSQL's call the function
``core_config_stamp_renew`` of core's migration 0003) set ``core_configstamp.stamp`` to a new
random number in the transaction that changes the table. ``config_cached`` answers from memory
while the stamp it reads is the one the entry was loaded under, else loads again.

Why this is exact: the stamp is read before the configuration, so an entry is never older than
its stamp; a change that commits later changes the stamp, and one rolled back leaves the old stamp
visible to everyone else (a random stamp is never reused, so a value seen inside a transaction
that rolled back never comes back).

Reading the stamp is one small query. Inside ``config_scope()`` (each partner API request) it is
read at most once (the API key lookup selects it: ``config_stamp_seen``) and reused until the scope ends: the request sees configuration as it was when
it first looked, as if it had read it all at that moment.

Cached values are shared between threads and requests, so they are frozen: a ``FrozenRow`` (a
model row's column values) hands each caller its own model instance (``instance()``), and other
entries are frozen dataclasses, tuples or frozensets. A model instance is never cached.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Model

Value = TypeVar("Value")
M = TypeVar("M", bound=Model)

STAMP_TABLE = "core_configstamp"
STAMP_SQL = f"SELECT stamp FROM {STAMP_TABLE} WHERE id = 1"  # noqa: S608 - constant

_lock = threading.Lock()
_entries: dict[Hashable, object] = {}
_entries_stamp: list[int | None] = [None]
_scope: contextvars.ContextVar[list | None] = contextvars.ContextVar("config_scope", default=None)


def _stamp_read() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(STAMP_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


_UNREAD = object()


def config_stamp() -> int | None:
    """The configuration stamp now (once per ``config_scope``); None when the stamp row is
    missing (a test flushed the tables): then nothing is cached until a change writes it again."""
    scope = _scope.get()
    if scope is None:
        return _stamp_read()
    if scope[0] is _UNREAD:
        scope[0] = _stamp_read()
    return scope[0]


def config_stamp_seen(stamp: int | None) -> None:
    """Inside ``config_scope``: a stamp read along with another query of this request (the API
    key lookup selects it), so that the scope does not read it again. No effect outside a scope
    or once the scope has read it."""
    scope = _scope.get()
    if scope is not None and scope[0] is _UNREAD:
        scope[0] = stamp


@contextlib.contextmanager
def config_scope() -> Iterator[None]:
    """Read the configuration stamp at most once inside the block (one request)."""
    token = _scope.set([_UNREAD])
    try:
        yield
    finally:
        _scope.reset(token)


def config_scoped(view: Callable) -> Callable:
    """A view run inside ``config_scope`` (the partner API's views: they never change
    configuration, so one stamp read serves the whole request)."""

    @functools.wraps(view)
    def scoped(*args, **kwargs):
        with config_scope():
            return view(*args, **kwargs)

    return scoped


def config_cached(key: Hashable, load: Callable[[], Value]) -> Value:
    """The value ``load()`` gives for ``key`` under the current configuration stamp. ``load``
    must only read (a value created by the caller's own uncommitted transaction must not be
    cached: return it without calling this)."""
    stamp = config_stamp()
    if stamp is None:
        return load()
    with _lock:
        if _entries_stamp[0] == stamp and key in _entries:
            return _entries[key]  # type: ignore[return-value]
    value = load()
    with _lock:
        if _entries_stamp[0] != stamp:
            _entries.clear()
            _entries_stamp[0] = stamp
        _entries[key] = value
    return value


@dataclass(frozen=True, slots=True)
class FrozenRow(Generic[M]):
    """One model row as frozen column values: what the cache keeps of a program or a system
    account. ``instance()`` builds a new model instance from it for each caller (``from_db``, as a
    query would), so nobody shares, or can change, what another request reads."""

    model: type[M]
    attnames: tuple[str, ...]
    values: tuple[Any, ...]

    @classmethod
    def of(cls, instance: M) -> FrozenRow[M]:
        fields = type(instance)._meta.concrete_fields
        values = tuple(getattr(instance, f.attname) for f in fields)
        if any(isinstance(v, (list, dict, set, bytearray)) for v in values):
            raise TypeError(f"{type(instance).__name__}: a row with mutable values cannot be frozen")
        return cls(type(instance), tuple(f.attname for f in fields), values)

    @property
    def pk(self) -> Any:
        return self.values[self.attnames.index(self.model._meta.pk.attname)]

    def instance(self) -> M:
        return self.model.from_db(DEFAULT_DB_ALIAS, list(self.attnames), list(self.values))


def config_cached_row(key: Hashable, load: Callable[[], M | None]) -> M | None:
    """``config_cached`` for one model row (or None): the cache keeps a ``FrozenRow``, the caller
    gets its own instance."""

    def frozen() -> FrozenRow[M] | None:
        found = load()
        return FrozenRow.of(found) if found is not None else None

    row = config_cached(key, frozen)
    return row.instance() if row is not None else None
