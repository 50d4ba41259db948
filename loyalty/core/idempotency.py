"""Idempotency-Key handling with Stripe's semantics, for any interface that needs it.

``idempotent(scope, key, endpoint, body, run)``: the first call runs ``run()`` and stores its
(status, body); a repeat with the same body returns the stored answer without running; the
same key with another body or endpoint is ``idempotency_key_reused`` (422); a repeat while the
first is still running waits briefly, then gets ``idempotency_in_progress`` (409)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from django.db import connection

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.models import IdempotencyRecord

KEEP_FOR = dt.timedelta(hours=48)
WAIT_SECONDS = 5.0


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _stored(record: IdempotencyRecord, endpoint: str, digest: str) -> tuple[int, Any] | None:
    if record.endpoint != endpoint or record.request_hash != digest:
        raise ValidationFailed("This Idempotency-Key was used with another request", code="idempotency_key_reused")
    if record.state == IdempotencyRecord.DONE:
        return record.status_code, record.response_body
    return None


def _claim(*, scope: str, key: str, endpoint: str, digest: str, now: dt.datetime) -> int | None:
    """Write the ``running`` record; its id, or None when the scope already holds the key.
    One ``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite): no savepoint, no error to catch."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in ("scope", "key", "endpoint", "request_hash", "state", "created_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(IdempotencyRecord._meta.db_table)} ({columns}) VALUES (%s, %s, %s, %s, %s, %s) "  # noqa: S608 - names quoted, values bound
            f"ON CONFLICT ({quote('scope')}, {quote('key')}) DO NOTHING RETURNING {quote('id')}",
            [scope, key, endpoint, digest, IdempotencyRecord.RUNNING, connection.ops.adapt_datetimefield_value(now)],
        )
        row = cursor.fetchone()
    return row[0] if row is not None else None


def idempotent(
    *, scope: str, key: str, endpoint: str, body: Any, run: Callable[[], tuple[int, Any]]
) -> tuple[int, Any]:
    if not key or len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be 1-255 characters", code="invalid_idempotency_key")
    digest = request_hash(body)
    now = clock.now()
    deadline = time.monotonic() + WAIT_SECONDS
    while (record_id := _claim(scope=scope, key=key, endpoint=endpoint, digest=digest, now=now)) is None:
        record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if record is None:
            continue  # the first request failed and gave the key up: this one runs
        if record.created_at < now - KEEP_FOR:
            # Expired: forget it and claim the key afresh (expired records go only when reused).
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        answer = _stored(record, endpoint, digest)
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise Conflict("A request with this Idempotency-Key is still running", code="idempotency_in_progress")
        time.sleep(0.05)
    try:
        status, response = run()
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record_id).delete()
        raise
    if status >= 500:
        IdempotencyRecord.objects.filter(pk=record_id).delete()
    else:
        IdempotencyRecord.objects.filter(pk=record_id).update(
            state=IdempotencyRecord.DONE, status_code=status, response_body=response
        )
    return status, response
