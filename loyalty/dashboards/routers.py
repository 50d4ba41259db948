"""Dashboards and their exports read from a replica when ``DATABASE_REPLICA_URL`` is set.

Only reads made inside ``replica_reads()`` (the dashboards' views wrap their selectors in it) go
to ``settings.DASHBOARDS_READ_DATABASE``; every other read and every write stays on the default
database. Nothing is migrated on the replica (it follows the primary)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

_replica: ContextVar[bool] = ContextVar("dashboards_replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[str]:
    """Reads inside the block go to the replica (if one is configured); yields the alias used."""
    token = _replica.set(True)
    try:
        yield read_database()
    finally:
        _replica.reset(token)


def read_database() -> str:
    return (settings.DASHBOARDS_READ_DATABASE or "default") if _replica.get() else "default"


class DashboardsReplicaRouter:
    def db_for_read(self, model, **hints):
        alias = settings.DASHBOARDS_READ_DATABASE
        if alias and _replica.get():
            return alias
        return None

    def db_for_write(self, model, **hints):
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        alias = settings.DASHBOARDS_READ_DATABASE
        if alias and db == alias:
            return False
        return None
