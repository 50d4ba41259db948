"""Real HTTP for the race and idempotency proofs (promises 1-5, 7): the API served as in production
by gunicorn (bench/_setup.py ``bench_server``: gthread workers, Redis for throttling and the broker)
on the test database, and clients that start together.

Why gunicorn and not Django's ``live_server``: the promises are about what concurrent clients get,
so the requests go through the production server, several worker processes (each with its own
configuration cache) and their own persistent connections; and promise 4 kills a worker with
SIGKILL, which only a separate process allows. The tests write their set-up through the services
(committed: transactional tests) and read the outcome from the database after the server answered.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests
from django.db import connection

from tests.concurrency import run_together

ROOT = Path(__file__).resolve().parents[2]
WORKERS, THREADS = 2, 8  # 16 requests at once; Postgres allows 100 connections, shared with other tests
REDIS_URL = os.environ.get("REDIS_URL", "")


def _bench_setup():
    spec = importlib.util.spec_from_file_location("bench_setup_for_verify", ROOT / "bench" / "_setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Server:
    base: str
    master: psutil.Process

    def workers(self) -> list[psutil.Process]:
        return self.master.children()

    def worker_of_backend(self, backend_pid: int) -> psutil.Process:
        """The gunicorn worker whose database connection is served by PostgreSQL backend ``backend_pid``."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT client_port FROM pg_stat_activity WHERE pid = %s", [backend_pid])
            (port,) = cursor.fetchone()
        for worker in self.workers():
            if any(c.laddr and c.laddr.port == port for c in worker.net_connections(kind="tcp")):
                return worker
        raise AssertionError(f"no worker holds the connection of backend {backend_pid}")

    def kill(self, worker: psutil.Process) -> None:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)


def database_url_of_tests() -> str:
    """The URL of the database the tests write (its name as pytest-django made it)."""
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{settings['USER']}@{host}:{port}/{settings['NAME']}"


def _need_redis() -> None:
    if not REDIS_URL:
        pytest.fail("make verify needs REDIS_URL (the server throttles and queues through Redis)")


@contextlib.contextmanager
def gunicorn_server(port: int) -> Iterator[Server]:
    """``bench_server`` on the test database."""
    _need_redis()
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url_of_tests()
    try:
        with _bench_setup().bench_server(port=port, workers=WORKERS, threads=THREADS, redis_url=REDIS_URL) as base:
            os.environ["DATABASE_URL"] = saved or ""
            master = next(p for p in psutil.Process().children() if f"127.0.0.1:{port}" in p.cmdline())
            yield Server(base=base, master=master)
    finally:
        if saved is not None:
            os.environ["DATABASE_URL"] = saved


@contextlib.contextmanager
def celery_worker(*, concurrency: int = 2, **env: str) -> Iterator[None]:
    """A real Celery worker (bench/_setup.py ``celery_worker``) on the test database and REDIS_URL, with
    ``env`` added; this process sends its tasks to the broker meanwhile (not eagerly)."""
    from loyalty.celery import app

    _need_redis()
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty.settings",
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": REDIS_URL,
        **env,
    }
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with _bench_setup().celery_worker(app=app, env=worker_env, concurrency=concurrency):
            yield
    finally:
        app.conf.task_always_eager = eager


def celery_drained(timeout: float = 60) -> None:
    """Wait until the broker holds no task, queued or running (unacknowledged: tasks are acks_late)."""
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    deadline, idle = time.monotonic() + timeout, 0
    while idle < 3:
        assert time.monotonic() < deadline, "Celery did not drain"
        busy = broker.llen("celery") + broker.hlen("unacked")
        idle = 0 if busy else idle + 1
        time.sleep(0.2)


@dataclass
class Answer:
    """What a client got: status, the body's exact bytes and the headers (``error``: the request failed
    without an answer, e.g. its worker was killed)."""

    status: int
    content: bytes
    headers: dict
    error: str = ""

    @property
    def code(self) -> str:
        try:
            return json.loads(self.content).get("code", "")
        except (ValueError, AttributeError):
            return ""

    def json(self):
        return json.loads(self.content)


def call(method: str, url: str, *, key: str | None = None, body=None, headers=None, cookies=None) -> Answer:
    sent = dict(headers or {})
    if key:
        sent["Authorization"] = f"Api-Key {key}"
    try:
        response = requests.request(
            method, url, json=body, headers=sent, cookies=cookies, timeout=60, allow_redirects=False
        )
    except requests.RequestException as exc:
        return Answer(status=0, content=b"", headers={}, error=type(exc).__name__)
    return Answer(status=response.status_code, content=response.content, headers=dict(response.headers))


def together(n: int, fn) -> list[Answer]:
    """``fn(i)`` from ``n`` threads that start together (``tests.concurrency.run_together``)."""
    answers = run_together(n, fn, timeout=120)
    failed = [a for a in answers if not isinstance(a, Answer)]
    assert not failed, failed[:3]
    return answers


def tally(answers: list[Answer]) -> Counter:
    """(status, problem code) → how many; status 0 is a request without an answer."""
    return Counter((a.status, a.code if a.status >= 400 else "") for a in answers)


def server_errors(answers: list[Answer]) -> int:
    return sum(1 for a in answers if a.status >= 500 or a.status == 0)


def described(counts: Counter, fivexx: int) -> str:
    """``10 × 201, 54 × 409 coupon_exhausted, 0 × 5xx``."""
    parts = [f"{n} × {status}{' ' + code if code else ''}" for (status, code), n in sorted(counts.items())]
    return ", ".join([*parts, f"{fivexx} × 5xx"])
