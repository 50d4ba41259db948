"""Program configuration read once per process, kept exact by a stamp in the database.

Programs, earning rules, tiers, partners, webhook endpoints and system accounts change a few
times a day but are read by every purchase. Row triggers on each configuration table (added
by each app's migration with ``stamp_trigger``) set ``core_configstamp.stamp`` to a new
random number in the transaction that changes the table. ``config_cached`` answers from memory
while the stamp it reads is the one the entry was loaded under, else loads again.

Why this is exact: the stamp is read before the configuration, so an entry is never older than
its stamp; a change that commits later changes the stamp, and one rolled back leaves the old stamp
visible to everyone else (a random stamp is never reused, so a value seen inside a transaction
that rolled back never comes back).

Reading the stamp is one small query. Inside ``config_scope()`` (each partner API request) it is
read at most once (the API key lookup selects it: ``config_stamp_seen``) and reused until the scope ends: the request sees configuration as it was when
it first looked, as if it had read it all at that moment. Cached objects are shared between
threads: treat them as read-only.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import TypeVar

from django.db import connection

Value = TypeVar("Value")

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


# What a trigger runs, and how its DROP names the table, per database.
_TRIGGER_ACTION = {
    "postgresql": ("EXECUTE FUNCTION core_config_stamp_renew()", " ON {table}"),
    "sqlite": (f"BEGIN INSERT OR REPLACE INTO {STAMP_TABLE} (id, stamp) VALUES (1, random()); END", ""),  # noqa: S608
}


def stamp_trigger_sql(vendor: str, table: str, *, when: str = "") -> tuple[list[str], list[str]]:
    """(forward, reverse) statements that renew the stamp whenever ``table`` changes, for
    ``vendor`` (postgresql or sqlite). ``when``: a condition on the changed row written with
    ``ROW.`` (e.g. ``ROW.kind <> 'member'``), to watch only some rows of a busy table."""
    if vendor not in _TRIGGER_ACTION:
        raise NotImplementedError(f"No configuration stamp triggers for {vendor}")
    action, drop_on = _TRIGGER_ACTION[vendor]
    name = f"{table}_config_stamp"
    forward, reverse = [], []
    for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        condition = f"WHEN ({when.replace('ROW.', row + '.')})" if when else ""
        forward.append(f"CREATE TRIGGER {name}_{op.lower()} AFTER {op} ON {table} FOR EACH ROW {condition} {action}")
        reverse.append(f"DROP TRIGGER IF EXISTS {name}_{op.lower()}" + drop_on.format(table=table))
    return forward, reverse


# PostgreSQL: the function the triggers call (created by core's migration).
PG_RENEW_FUNCTION = f"""
CREATE OR REPLACE FUNCTION core_config_stamp_renew() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {STAMP_TABLE} (id, stamp) VALUES (1, (random() * 9.2e18 - 4.6e18)::bigint)
    ON CONFLICT (id) DO UPDATE SET stamp = EXCLUDED.stamp;
    RETURN NULL;
END $$
"""  # noqa: S608 - constant names


def stamp_trigger(table: str, *, when: str = ""):
    """A migration operation adding (or, backwards, dropping) the triggers of ``table``."""
    from django.db import migrations

    def run(direction: int):
        def apply(apps, schema_editor) -> None:
            statements = stamp_trigger_sql(schema_editor.connection.vendor, table, when=when)[direction]
            for statement in statements:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(0), run(1))
