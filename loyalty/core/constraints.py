"""Which database constraint an ``IntegrityError`` broke, by name, on PostgreSQL and SQLite.

A service that turns a unique violation into a business error (``duplicate_external_id``) asks
for the constraint by name, so a check constraint or another unique index failing in the same
statement is never mistaken for it."""

from __future__ import annotations

import re
from functools import cache

from django.apps import apps
from django.db import IntegrityError, models

# The unique (partner, external_id) constraints of what partners send: a violation is a repeat.
EXTERNAL_ID_CONSTRAINTS = frozenset(
    {
        "purchase_external_id_per_partner",
        "purchase_external_id_own",
        "return_external_id_per_partner",
        "return_external_id_own",
        "redemption_external_id_per_partner",
        "redemption_external_id_own",
        "event_external_id_per_partner",
    }
)

_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")
_SQLITE_UNIQUE_INDEX = re.compile(r"UNIQUE constraint failed: index '(\w+)'")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w., ]+)")


@cache
def _unique_by_columns() -> dict[frozenset[str], str]:
    """``{"table.column", ...}`` → constraint name, for every named unique constraint (SQLite
    names the columns of a unique violation, not the constraint)."""
    found: dict[frozenset[str], str] = {}
    for model in apps.get_models():
        table = model._meta.db_table
        for constraint in model._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
                columns = frozenset(f"{table}.{model._meta.get_field(f).column}" for f in constraint.fields)
                found.setdefault(columns, constraint.name)
    return found


def constraint_name(exc: BaseException) -> str | None:
    """The name of the constraint ``exc`` reports, or None when it names none (or is no
    ``IntegrityError``)."""
    if not isinstance(exc, IntegrityError):
        return None
    diag = getattr(exc.__cause__, "diag", None)  # psycopg
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name
    message = str(exc)
    if match := _SQLITE_CHECK.search(message):
        return match.group(1)
    if match := _SQLITE_UNIQUE_INDEX.search(message):
        return match.group(1)
    if match := _SQLITE_UNIQUE.search(message):
        columns = frozenset(c.strip() for c in match.group(1).split(","))
        return _unique_by_columns().get(columns)
    return None


def is_external_id_repeat(exc: BaseException) -> bool:
    """Whether ``exc`` is the unique (partner, external_id) constraint of a partner's record."""
    return constraint_name(exc) in EXTERNAL_ID_CONSTRAINTS


def is_check_violation(exc: BaseException) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if diag is not None or sqlstate is not None:
        return sqlstate == "23514"  # check_violation
    return bool(_SQLITE_CHECK.search(str(exc)))
