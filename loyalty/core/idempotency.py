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

from django.db import IntegrityError, transaction

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


def idempotent(
    *, scope: str, key: str, endpoint: str, body: Any, run: Callable[[], tuple[int, Any]]
) -> tuple[int, Any]:
    if not key or len(key) > 255:
        raise ValidationFailed("Idempotency-Key must be 1-255 characters", code="invalid_idempotency_key")
    digest = request_hash(body)
    now = clock.now()
    IdempotencyRecord.objects.filter(scope=scope, key=key, created_at__lt=now - KEEP_FOR).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                scope=scope, key=key, endpoint=endpoint, request_hash=digest, created_at=now
            )
    except IntegrityError:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            record = IdempotencyRecord.objects.get(scope=scope, key=key)
            answer = _stored(record, endpoint, digest)
            if answer is not None:
                return answer
            if time.monotonic() > deadline:
                raise Conflict(
                    "A request with this Idempotency-Key is still running", code="idempotency_in_progress"
                ) from None
            time.sleep(0.05)
    try:
        status, response = run()
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    if status >= 500:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
    else:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            state=IdempotencyRecord.DONE, status_code=status, response_body=response
        )
    return status, response
