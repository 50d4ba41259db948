"""Rate limits of the partner API on an atomic counter.

DRF's ``SimpleRateThrottle`` reads a request history from the cache and writes it back: two
requests that read at once both pass, so 60 concurrent requests went through a 20/min limit.
Here every request is one atomic ``INCR`` of a per-window counter in Redis (in one ``MULTI`` with
the counter's expiry and a read of the previous window), so at most the limit passes, however many
requests arrive together. The limit is a sliding window: the previous window's count weighs in
proportionally to how much of it still overlaps the last ``duration`` seconds, so a burst at a
window's edge cannot pass twice the limit. A refused request takes its hit back: only accepted
requests count.

Without ``REDIS_URL`` (embedded, one process) the counter lives in Django's local-memory cache,
whose ``incr`` holds a lock. When Redis cannot be reached (a restart), requests pass uncounted and a
warning is logged: the limit protects the service, and a partner's purchase must not fail for it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling

KEY_PREFIX = "loyalty:throttle"
REDIS_TIMEOUT = 0.5  # seconds to connect or answer before the request passes uncounted

logger = logging.getLogger(__name__)

_redis_clients: dict[str, object] = {}
_redis_clients_lock = threading.Lock()


def _redis():
    """One client (and connection pool) per process and URL, made once under a lock: two threads of a
    fresh gunicorn worker that each made one had the second replace the first, whose pool was closed
    when it was collected, under the first thread's command (a 500, ``I/O operation on closed file``)."""
    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        with _redis_clients_lock:
            client = _redis_clients.get(url)
            if client is None:
                client = _redis_clients[url] = redis.Redis.from_url(
                    url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
                )
    return client


def counter_hit(*, key: str, previous_key: str, ttl: int) -> tuple[int, int]:
    """Count one hit on ``key`` (created with ``ttl`` seconds to live) and read ``previous_key``,
    atomically; returns (count of ``key`` after this hit, count of ``previous_key``)."""
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=True)
        pipe.set(key, 0, ex=ttl, nx=True)
        pipe.incr(key)
        pipe.get(previous_key)
        _, current, previous = pipe.execute()
        return int(current), int(previous or 0)
    cache.add(key, 0, ttl)
    try:
        current = cache.incr(key)
    except ValueError:  # expired between add and incr (only at the end of its ttl)
        cache.add(key, 0, ttl)
        current = cache.incr(key)
    return current, int(cache.get(previous_key) or 0)


def counter_undo(*, key: str) -> None:
    """Take back one hit of ``key`` (a refused request does not count)."""
    if settings.REDIS_URL:
        _redis().decr(key)
        return
    with contextlib.suppress(ValueError):
        cache.decr(key)


class AtomicRateThrottle(throttling.SimpleRateThrottle):
    """A ``SimpleRateThrottle`` (same ``rate``/``scope``/``THROTTLE_RATES``) whose count is an atomic
    counter. Subclasses say whom a request counts against in ``get_cache_key``."""

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        ident = self.get_cache_key(request, view)
        if ident is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        elapsed = now - window * self.duration
        key = f"{KEY_PREFIX}:{ident}:{window}"
        try:
            current, previous = counter_hit(
                key=key, previous_key=f"{KEY_PREFIX}:{ident}:{window - 1}", ttl=2 * self.duration + 1
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("rate limit not counted (Redis unreachable): %s", exc)
            return True
        weight = 1 - elapsed / self.duration
        if math.floor(previous * weight) + current <= self.num_requests:
            return True
        counter_undo(key=key)
        self._wait = self._seconds_until_room(accepted=current - 1, previous=previous, elapsed=elapsed)
        return False

    def _seconds_until_room(self, *, accepted: int, previous: int, elapsed: float) -> float:
        """When one more request would pass if none other came."""
        room = self.num_requests - 1 - accepted
        if room >= 0:
            # previous * (1 - t / duration) must drop to room
            at = self.duration * (1 - room / previous) if previous else elapsed
            return max(at - elapsed, 1.0)
        # this window is full: into the next, where this window's count weighs in
        at_next = self.duration * (1 - (self.num_requests - 1) / accepted) if accepted else 0.0
        return max(self.duration - elapsed + at_next, 1.0)

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class PerKeyThrottle(AtomicRateThrottle):
    """``API_THROTTLE_RATE`` requests per API key."""

    scope = "partner"

    def get_cache_key(self, request, view):
        key = getattr(request, "auth", None)
        if key is None or getattr(key, "pk", None) is None:
            return None
        return f"{self.scope}:{key.pk}"


class BadKeyAddressThrottle(AtomicRateThrottle):
    """``API_ANON_THROTTLE_RATE`` requests with an unusable API key per client address (behind
    ``NUM_PROXIES`` proxies, the address they forward): guessing keys costs time."""

    scope = "bad_key"

    def get_cache_key(self, request, view):
        return f"{self.scope}:{self.get_ident(request)}"
