"""Rate limits hold under concurrency (an atomic counter in Redis) and bad keys are throttled by address."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from loyalty.api import throttling
from loyalty.partners.services import partner_key_create
from tests.api.conftest import key_client
from tests.api.test_api import problem
from tests.concurrency import run_together

IN_CI = bool(os.environ.get("CI"))


@pytest.fixture
def redis_counters():
    """The counters of a real Redis; in CI a missing Redis fails the test instead of skipping it."""
    if not settings.REDIS_URL:
        if IN_CI:
            pytest.fail("CI must run the throttle tests against Redis: set REDIS_URL")
        pytest.skip("needs Redis (set REDIS_URL=redis://127.0.0.1:6379/5)")
    return throttling._redis()


def _fresh_address() -> str:
    """A documentation-range IPv6 address no other test run has counted against."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _rates(**rates):
    return {**api_settings.DEFAULT_THROTTLE_RATES, **rates}


@pytest.fixture
def rates(monkeypatch):
    def set_rates(**rates):
        for throttle in (throttling.PerKeyThrottle, throttling.BadKeyAddressThrottle):
            monkeypatch.setattr(throttle, "THROTTLE_RATES", _rates(**rates))

    return set_rates


def test_sixty_concurrent_requests_against_twenty_per_minute_let_at_most_twenty_through(redis_counters, rates):
    rates(partner="20/min")
    key = SimpleNamespace(pk=f"concurrency-{uuid.uuid4()}")  # a fresh key: its own counter
    request = SimpleNamespace(auth=key)

    allowed = run_together(60, lambda i: throttling.PerKeyThrottle().allow_request(request, None))

    assert not [r for r in allowed if isinstance(r, BaseException)], allowed
    assert sum(allowed) == 20


def test_refused_requests_do_not_count_against_the_next_window(redis_counters, rates, monkeypatch):
    rates(partner="3/min")
    request = SimpleNamespace(auth=SimpleNamespace(pk=f"window-{uuid.uuid4()}"))
    start = 6000 * 60.0  # the start of a window
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: start + 1))
    first_window = [throttling.PerKeyThrottle().allow_request(request, None) for _ in range(10)]
    # halfway through the next window, half of the 3 accepted still weigh: floor(1.5) + new <= 3
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: start + 90))
    second_window = [throttling.PerKeyThrottle().allow_request(request, None) for _ in range(3)]

    assert first_window == [True] * 3 + [False] * 7
    assert second_window == [True, True, False]


def test_refused_request_says_when_to_retry(redis_counters, rates, monkeypatch):
    rates(partner="2/min")
    request = SimpleNamespace(auth=SimpleNamespace(pk=f"wait-{uuid.uuid4()}"))
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: 6000 * 60.0 + 15))
    throttles = [throttling.PerKeyThrottle() for _ in range(3)]
    assert [t.allow_request(request, None) for t in throttles] == [True, True, False]
    # full now: room again once the 2 of this window weigh less than 1, 45 s + 30 s from now
    assert throttles[2].wait() == pytest.approx(75)


@pytest.mark.django_db
def test_api_over_the_key_limit_is_429_problem_with_retry_after(rates):
    rates(partner="2/min")
    client = key_client(f"Throttled {uuid.uuid4()}")
    codes = [client.get("/api/v1/members/?email=a@b.c").status_code for _ in range(3)]
    limited = client.get("/api/v1/members/?email=a@b.c")

    assert codes == [200, 200, 429]
    problem(limited, 429, "throttled")
    assert int(limited["Retry-After"]) > 0


@pytest.mark.django_db
def test_requests_with_a_bad_key_are_throttled_by_client_address(rates):
    rates(bad_key="3/min")
    guesser = APIClient(REMOTE_ADDR=_fresh_address())
    guesser.credentials(HTTP_AUTHORIZATION="Api-Key nope.guess")

    codes = [guesser.get("/api/v1/members/?email=a@b.c").status_code for _ in range(4)]
    other_address = APIClient(REMOTE_ADDR=_fresh_address())
    other_address.credentials(HTTP_AUTHORIZATION="Api-Key nope.guess")

    assert codes == [401, 401, 401, 429]
    problem(guesser.get("/api/v1/members/?email=a@b.c"), 429, "throttled")
    assert other_address.get("/api/v1/members/?email=a@b.c").status_code == 401


@pytest.mark.django_db
def test_forwarded_for_header_does_not_pick_the_throttled_address(rates):
    rates(bad_key="2/min")
    address = _fresh_address()
    codes = []
    for i in range(3):
        client = APIClient(REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"10.9.{i}.1")
        client.credentials(HTTP_AUTHORIZATION="Api-Key nope.guess")
        codes.append(client.get("/api/v1/members/?email=a@b.c").status_code)

    assert codes == [401, 401, 429]


@pytest.mark.django_db(transaction=True)
def test_concurrent_api_requests_pass_the_key_limit_at_most_once_each(redis_counters, rates):
    """Through the whole stack (authentication, throttle, view), on real threads and connections."""
    rates(partner="8/min")
    _partner, _created, raw = partner_key_create(partner_name=f"Burst {uuid.uuid4()}", scopes=["read"])

    def call(i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client.get("/api/v1/members/?email=a@b.c").status_code

    codes = run_together(24, call)

    assert sorted(codes) == [200] * 8 + [429] * 16


def test_threads_of_a_fresh_process_share_one_redis_client(monkeypatch, settings):
    """Two threads that each made a client had the second replace the first, whose pool closed when
    it was collected, under the first one's command: a 500 at the start of each gunicorn worker."""
    import threading
    import time

    import redis

    made = []

    def slow_from_url(url, **options):
        time.sleep(0.05)  # the window in which another thread looked too
        made.append(object())
        return made[-1]

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    monkeypatch.setattr(throttling, "_redis_clients", {})
    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(slow_from_url))
    barrier = threading.Barrier(8)
    got = []

    def take():
        barrier.wait()
        got.append(throttling._redis())

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1 and len({id(c) for c in got}) == 1 and len(got) == 8


@pytest.mark.django_db
def test_requests_pass_uncounted_while_redis_is_unreachable(rates, settings, monkeypatch, caplog):
    """Rule: the rate limit protects the service; a Redis restart must not turn partners' calls into 500s."""
    rates(partner="2/min")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused at once
    monkeypatch.setattr(throttling, "_redis_clients", {})
    client = key_client(f"Redis down {uuid.uuid4()}")
    codes = [client.get("/api/v1/members/?email=a@b.c").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    assert "rate limit not counted (Redis unreachable)" in caplog.text
