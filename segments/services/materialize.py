"""Set-based materialization of a segment's membership, with a diff.

The members that should be in the segment (the compiled rules, an uploaded list, the source
of a snapshot) are put into a temporary table by one statement (``CREATE TEMPORARY TABLE ...
AS SELECT`` on PostgreSQL, which may use parallel workers); then four
statements write only what changed: ``left`` events and ``left_at`` for open memberships no
longer matched, ``entered`` events and new membership rows for matches without one. Members
who stay are not touched. No Python loop over members.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from loyalty.core import clock
from segments.models import Segment, SegmentRefresh


def tune_session(cursor) -> None:
    """PostgreSQL: more memory for the hash joins and aggregates of one bulk statement
    (SET LOCAL: only for the current transaction)."""
    if connection.vendor == "postgresql":
        work_mem = settings.SEGMENTS_WORK_MEM
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])


def materialize(
    *, segment: Segment, select_sql: str, params: list[Any] | tuple[Any, ...], trigger: str, setup: list[tuple] = ()
) -> SegmentRefresh:
    """Make the segment's open memberships equal to the member ids ``select_sql`` returns.

    ``setup`` statements run first in the same transaction (e.g. to fill a temporary table the
    select reads). Refreshes of one segment are serialized by a row lock on the segment."""
    started = time.perf_counter()
    now = clock.now()
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).values_list("pk", flat=True).get()
        with connection.cursor() as cursor:
            tune_session(cursor)
            for statement, statement_params in setup:
                cursor.execute(statement, statement_params)
            table = f"segments_match_{uuid.uuid4().hex[:12]}"
            if connection.vendor == "postgresql":
                # CREATE TABLE AS may run its SELECT with parallel workers; INSERT ... SELECT may not.
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {table} (member_id) ON COMMIT DROP AS {select_sql}", list(params)
                )
                cursor.execute(f"ANALYZE {table}")
            else:
                cursor.execute(f"CREATE TEMPORARY TABLE {table} (member_id bigint PRIMARY KEY)")
                cursor.execute(f"INSERT INTO {table} (member_id) {select_sql}", list(params))  # noqa: S608
            refresh = SegmentRefresh.objects.create(
                segment=segment, trigger=trigger, refreshed_at=now, size=0, entered=0, left=0
            )
            gone = f"""m.segment_id = %s AND m.left_at IS NULL
                AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.member_id = m.member_id)"""  # noqa: S608
            cursor.execute(
                f"""INSERT INTO segments_segmentevent (segment_id, member_id, kind, refresh_id, occurred_at)
                    SELECT m.segment_id, m.member_id, 'left', %s, %s FROM segments_segmentmembership m
                    WHERE {gone}""",  # noqa: S608
                [refresh.pk, now, segment.pk],
            )
            left = cursor.rowcount
            if left:
                cursor.execute(
                    f"UPDATE segments_segmentmembership SET left_at = %s WHERE id IN "  # noqa: S608
                    f"(SELECT m.id FROM segments_segmentmembership m WHERE {gone})",
                    [now, segment.pk],
                )
            new = """NOT EXISTS (SELECT 1 FROM segments_segmentmembership m
                WHERE m.segment_id = %s AND m.member_id = t.member_id AND m.left_at IS NULL)"""
            cursor.execute(
                f"""INSERT INTO segments_segmentevent (segment_id, member_id, kind, refresh_id, occurred_at)
                    SELECT %s, t.member_id, 'entered', %s, %s FROM {table} t WHERE {new}""",  # noqa: S608
                [segment.pk, refresh.pk, now, segment.pk],
            )
            entered = cursor.rowcount
            if entered:
                cursor.execute(
                    f"""INSERT INTO segments_segmentmembership (segment_id, member_id, entered_at, left_at)
                        SELECT %s, t.member_id, %s, NULL FROM {table} t WHERE {new}""",  # noqa: S608
                    [segment.pk, now, segment.pk],
                )
            cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
            size = cursor.fetchone()[0]
            cursor.execute(f"DROP TABLE {table}")
        duration_ms = int((time.perf_counter() - started) * 1000)
        SegmentRefresh.objects.filter(pk=refresh.pk).update(
            size=size, entered=entered, left=left, duration_ms=duration_ms
        )
        Segment.objects.filter(pk=segment.pk).update(size=size, last_refreshed_at=now)
    refresh.size, refresh.entered, refresh.left, refresh.duration_ms = size, entered, left, duration_ms
    segment.size, segment.last_refreshed_at = size, now
    return refresh
