"""Inserts for the hot paths (a purchase, a credit): the statements Django's ``create`` and
``bulk_create`` would send, built once per model instead of once per call.

On a small CPU, compiling an ORM statement costs more than PostgreSQL takes to run it (about a
millisecond against a tenth), and a purchase writes eight rows. ``row_insert`` and
``rows_insert`` take model instances built as usual, prepare every concrete field the way
``save`` does (``pre_save`` then ``get_db_prep_save``), and run one cached INSERT. They skip what
the hot paths never need: signals (none are registered on these models), ``full_clean`` (callers
validate first) and inherited models (refused).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


def _db():
    """The default connection itself: ``django.db.connection`` is a proxy that looks it up again
    on every attribute read (a few microseconds each, hundreds of reads per purchase)."""
    return connections[DEFAULT_DB_ALIAS]


@functools.cache
def _plan(model: type[Model], vendor: str) -> tuple[list, str, str]:
    meta = model._meta
    if meta.parents:
        raise TypeError(f"{meta.label}: inherited models are not supported")
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = _db().ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    head = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608 - names from the model
    return fields, head, placeholders


def _params(obj: Model, fields: list, db) -> list:
    return [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]


def _saved(obj: Model, pk) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS


def row_insert(obj: Model, *, skip_if_exists: bool = False) -> bool:
    """INSERT ``obj`` (its primary key is set from the database). With ``skip_if_exists``, a row
    that breaks a unique constraint is not written (ON CONFLICT DO NOTHING) and False is
    returned, without a savepoint. Returns whether the row was written."""
    db = _db()
    fields, head, placeholders = _plan(type(obj), db.vendor)
    pk = obj._meta.pk
    sql = head + placeholders
    if skip_if_exists:
        sql += " ON CONFLICT DO NOTHING"
    sql += f" RETURNING {db.ops.quote_name(pk.column)}"
    with db.cursor() as cursor:
        cursor.execute(sql, _params(obj, fields, db))
        row = cursor.fetchone()
    if row is None:
        return False
    _saved(obj, row[0])
    return True


def rows_insert(objs: Sequence[Model]) -> None:
    """INSERT ``objs`` (all of one model) in one statement; their primary keys are not read."""
    if not objs:
        return
    db = _db()
    fields, head, placeholders = _plan(type(objs[0]), db.vendor)
    params: list = []
    for obj in objs:
        params.extend(_params(obj, fields, db))
    with db.cursor() as cursor:
        cursor.execute(head + ", ".join([placeholders] * len(objs)), params)


def _add_sql(model: type[Model], pk, increments: dict[str, int], sets: dict | None) -> tuple[str, list] | None:
    """UPDATE ... SET column = column + n (zero increments skipped), column = value WHERE id = pk;
    None when there is nothing to change."""
    parts, params = [], []
    for column, delta in increments.items():
        if delta:
            parts.append(f"{column} = {column} + %s")
            params.append(delta)
    for column, value in (sets or {}).items():
        parts.append(f"{column} = %s")
        params.append(value)
    if not parts:
        return None
    table = _db().ops.quote_name(model._meta.db_table)
    return f"UPDATE {table} SET {', '.join(parts)} WHERE id = %s", [*params, pk]  # noqa: S608 - names from the code


def row_add(model: type[Model], pk, *, increments: dict[str, int], sets: dict | None = None) -> None:
    """Add to counters of one row now (``Writes.add``, outside a unit of work)."""
    if (statement := _add_sql(model, pk, increments, sets)) is not None:
        with _db().cursor() as cursor:
            cursor.execute(*statement)


def _cast(field) -> str:
    """The type a parameter for ``field`` is cast to inside a SELECT list, where PostgreSQL cannot
    infer it from the target column. Text stays text (a cast to varchar(n) would cut it short
    silently; the insert itself checks the length)."""
    if field.get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
        return "text"
    return field.rel_db_type(_db()) if field.is_relation else field.db_type(_db())


@functools.cache
def _casts(model: type[Model], vendor: str) -> list[tuple]:
    """(field, its placeholder cast to the column's type) for the columns ``_plan`` inserts."""
    return [(f, f"CAST(%s AS {_cast(f)})") for f in _plan(model, vendor)[0]]


class Writes:
    """The writes of one unit of work whose only answers are the ids of the rows they insert: a
    head insert that may be skipped as a repeat (ON CONFLICT DO NOTHING), then inserts that may
    point at rows inserted before them (foreign keys set to those instances; they may be skipped
    as repeats too) and increments of counters. Nothing after the head is written when the head
    is skipped.

    On PostgreSQL ``run`` sends them as one statement (data-modifying CTEs): a credit is five
    writes, and each statement costs more in round trip and driver than in the server. Elsewhere
    they run one by one (``row_insert`` / ``rows_insert``). Either way every inserted instance
    gets its primary key."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, object]] = []
        self._rows: list[Model] = []  # instances inserted one per step ("one"), in order
        self._updated: set[tuple] = set()

    def insert(self, obj: Model, *, skip_if_exists: bool = False) -> None:
        """``skip_if_exists``: a row breaking a unique constraint is not written (ON CONFLICT DO
        NOTHING); when that row is the first of the unit, nothing after it is written either,
        otherwise only it is left out (its primary key stays None: no later row may point at it)."""
        self._steps.append(("one", (obj, skip_if_exists)))
        self._rows.append(obj)

    def insert_many(self, objs: Sequence[Model]) -> None:
        """Rows whose primary keys are not needed (never referenced by a later write)."""
        if objs:
            self._steps.append(("many", list(objs)))

    def add(self, model: type[Model], pk, *, increments: dict[str, int], sets: dict | None = None) -> None:
        """UPDATE ... SET column = column + n (zero increments skipped), column = value. A row
        may be changed once per unit (PostgreSQL would apply only one of two updates of a row in
        one statement), and only a row that exists before the unit runs."""
        if (model, pk) in self._updated:
            raise ValueError(f"{model._meta.label} {pk} is changed once per unit of work")
        self._updated.add((model, pk))
        if (statement := _add_sql(model, pk, increments, sets)) is not None:
            self._steps.append(("add", statement))

    def run(self) -> bool:
        """Write everything; False (and nothing written) when the head was skipped as a repeat."""
        if not self._steps:
            return True
        if self._steps[0][0] != "one":
            raise ValueError("a unit of work starts with an insert (its head)")
        if _db().vendor == "postgresql":
            return self._run_one_statement()
        return self._run_one_by_one()

    def _run_one_by_one(self) -> bool:
        for index, (kind, payload) in enumerate(self._steps):
            if kind == "one":
                obj, skip = payload
                obj._prepare_related_fields_for_save(operation_name="insert")
                if not row_insert(obj, skip_if_exists=skip) and index == 0:
                    return False
            elif kind == "many":
                for obj in payload:
                    obj._prepare_related_fields_for_save(operation_name="insert")
                rows_insert(payload)
            else:
                with _db().cursor() as cursor:
                    cursor.execute(*payload)
        return True

    def _select_list(self, obj: Model, names: dict[int, str], db) -> tuple[str, list]:
        """The values of ``obj`` as a SELECT list: parameters cast to their column's type, and
        references to rows of this unit of work as sub-selects of their CTE."""
        items, params = [], []
        for f, cast in _casts(type(obj), db.vendor):
            related = f.get_cached_value(obj, None) if f.is_relation else None
            if related is not None and id(related) in names:
                items.append(f"(SELECT id FROM {names[id(related)]})")  # noqa: S608 - a CTE name
            else:
                items.append(cast)
                params.append(f.get_db_prep_save(f.pre_save(obj, True), db))
        return ", ".join(items), params

    def _run_one_statement(self) -> bool:
        db = _db()
        quote = db.ops.quote_name
        names: dict[int, str] = {}
        ctes, params = [], []
        for index, (kind, payload) in enumerate(self._steps):
            name = f"w{index}"
            source = " FROM w0" if index else ""  # nothing after a skipped head
            if kind in ("one", "many"):
                objs, skip = ([payload[0]], payload[1]) if kind == "one" else (payload, False)
                _, head, _ = _plan(type(objs[0]), db.vendor)
                selects = []
                for obj in objs:
                    items, values = self._select_list(obj, names, db)
                    selects.append(f"SELECT {items}{source}")
                    params.extend(values)
                sql = head.removesuffix(" VALUES ") + " " + " UNION ALL ".join(selects)
                if skip:
                    sql += " ON CONFLICT DO NOTHING"
                if kind == "one":
                    sql += f" RETURNING {quote(objs[0]._meta.pk.column)}"
                    names[id(objs[0])] = name
            else:
                sql, values = payload
                if index:
                    sql += " AND EXISTS (SELECT 1 FROM w0)"
                params.extend(values)
            ctes.append(f"{name} AS ({sql})")
        returned = ", ".join(f"(SELECT id FROM {names[id(obj)]})" for obj in self._rows)  # noqa: S608 - CTE names
        with db.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT {returned}", params)  # noqa: S608 - built from model names
            row = cursor.fetchone()
        if row[0] is None:
            return False
        for obj, pk in zip(self._rows, row, strict=True):
            if pk is not None:
                _saved(obj, pk)
        return True
