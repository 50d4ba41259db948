"""Idempotency-Key handling with Stripe's semantics, for any interface that needs it.

``idempotent(scope=, key=, endpoint=, body=, run=)``: the first call runs ``run()`` and stores
its (status, rendered bytes); a repeat with the same body returns the stored answer byte for byte
without running (``replayed``); the same key with another body or endpoint is
``idempotency_key_reused`` (422).

The claim is a lease. The ``running`` row is inserted and committed at once
(``INSERT ... ON CONFLICT DO NOTHING``), ``run()`` does its work in its own transaction (the
workflows open ``transaction.atomic(durable=True)``: they must be the outermost transaction, so
the claim cannot share it), then the answer is stored. So:

- a concurrent copy of a running request waits (up to ``WAIT``) for the first to store its answer,
  then replays it; it never runs the work a second time;
- a request that dies (worker killed, connection lost) leaves its ``running`` row behind for at most
  ``LEASE``: after that its owner is taken for dead and the retry with the same key runs (once);
- a request whose work fails with a server error (5xx, or an exception) gives its claim up at once.

The lease is longer than any request may run (gunicorn's worker timeout is 30 s), so a live request is
never taken for dead. A worker killed after its work committed but before its answer was stored has
its retry run the work again after the lease: the workflows recognise the repeat by its external id
and answer as for a repeat (one effect).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.models import IdempotencyRecord

KEEP_FOR = dt.timedelta(hours=48)
LEASE = dt.timedelta(seconds=60)
WAIT = 10.0  # seconds a concurrent copy waits for the running request's answer
_POLL = 0.05


@dataclass(frozen=True)
class Answer:
    """What to send: the status and the exact bytes of the body; ``replayed`` when it is the
    stored answer of an earlier request (``Idempotent-Replayed: true``)."""

    status: int
    content: bytes
    replayed: bool


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _claim(*, scope: str, key: str, endpoint: str, digest: str, now: dt.datetime) -> int | None:
    """Write the ``running`` record; its id, or None when the scope already holds the key.
    One ``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite): no savepoint, no error to catch.
    On PostgreSQL it waits while another open transaction inserted the same key."""
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


RUNNING = object()  # _replay: the key is held by a request still running (within its lease)


def _replay(*, scope: str, key: str, endpoint: str, digest: str, now: dt.datetime) -> Answer | object | None:
    """The stored answer for the key; ``RUNNING`` while a live request holds it; None when there is
    none (any more) and the key may be claimed: no record, an expired one, or a ``running`` one whose
    lease ran out (both cleared)."""
    record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if record is None:
        return None
    abandoned = record.state == IdempotencyRecord.RUNNING and record.created_at < now - LEASE
    if record.created_at < now - KEEP_FOR or abandoned:
        IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at, state=record.state).delete()
        return None
    if record.endpoint != endpoint or record.request_hash != digest:
        raise ValidationFailed("This Idempotency-Key was used with another request", code="idempotency_key_reused")
    if record.state != IdempotencyRecord.DONE:
        return RUNNING
    return Answer(status=record.status_code, content=bytes(record.response_content or b""), replayed=True)


def idempotent(*, scope: str, key: str, endpoint: str, body: Any, run: Callable[[], tuple[int, bytes]]) -> Answer:
    """Run ``run()`` (returning status and rendered body) once per (scope, key); see the module."""
    if not key or len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be 1-255 characters", code="invalid_idempotency_key")
    digest = request_hash(body)
    deadline = time.monotonic() + WAIT
    while True:
        now = clock.now()
        with transaction.atomic():  # the claim commits at once (unless a caller's transaction is open)
            record_id = _claim(scope=scope, key=key, endpoint=endpoint, digest=digest, now=now)
        if record_id is not None:
            break
        answer = _replay(scope=scope, key=key, endpoint=endpoint, digest=digest, now=now)
        if isinstance(answer, Answer):
            return answer
        if answer is RUNNING:
            if time.monotonic() >= deadline:
                raise Conflict("A request with this Idempotency-Key is still running", code="idempotency_in_progress")
            time.sleep(_POLL)
    try:
        status, content = run()
    except BaseException:
        _settle(record_id)  # a failure is not the answer: the key is free
        raise
    if status >= 500:
        _settle(record_id)
    else:
        _settle(record_id, state=IdempotencyRecord.DONE, status_code=status, response_content=content)
    return Answer(status=status, content=content, replayed=False)


def _settle(record_id: int, **answer: Any) -> None:
    """Store the answer (``answer`` given) or give the claim up. When the connection is broken (the
    server ended it mid-request: failover, ``pg_terminate_backend``), on a new connection: a claim
    left ``running`` would answer the partner's retries ``idempotency_in_progress`` until its lease
    ran out."""
    for attempt in (1, 2):
        records = IdempotencyRecord.objects.filter(pk=record_id)
        try:
            if answer:
                records.update(**answer)
            else:
                records.delete()
            return
        except DatabaseError:
            if attempt == 2 or connection.in_atomic_block or connection.is_usable():
                raise
            connection.close()  # the next statement opens a new connection
