"""Updating many rows of one table, each with its own values, in one round trip.

Django's ``bulk_update`` builds one ``CASE WHEN pk = ...`` per field and row; compiling those
costs far more than PostgreSQL takes to run them (0.3-0.6 s for 200 accounts against 15 ms).
``rows_update`` sends one parameterised ``UPDATE ... WHERE pk = %s`` for all rows
(``executemany``: pipelined by psycopg), values prepared by each field as the ORM prepares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def rows_update(
    model: type[models.Model],
    *,
    rows: Sequence[tuple[Any, ...]],
    set_fields: Sequence[str] = (),
    add_fields: Sequence[str] = (),
) -> None:
    """For each row ``(pk, *add values, *set values)``: add to ``add_fields`` (``F(name) +
    value``, for counters under a row lock) and set ``set_fields``; a None given for a set field
    keeps the stored value."""
    if not rows:
        return
    qn = connection.ops.quote_name
    adds = [model._meta.get_field(name) for name in add_fields]
    sets = [model._meta.get_field(name) for name in set_fields]
    assignments = [f"{qn(f.column)} = {qn(f.column)} + %s" for f in adds] + [
        f"{qn(f.column)} = COALESCE(%s, {qn(f.column)})" for f in sets
    ]
    sql = (
        f"UPDATE {qn(model._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608 - quoted names only
        f"WHERE {qn(model._meta.pk.column)} = %s"
    )
    fields = [*adds, *sets]
    params = [
        [f.get_db_prep_save(value, connection) for f, value in zip(fields, row[1:], strict=True)] + [row[0]]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
