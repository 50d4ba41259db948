"""Fault injection harness for promise 9 (``test_06_faults.py``): a Redis server of the test's own,
a real Celery worker whose pool process is SIGKILLed on demand, a local HTTP receiver that records
what it is sent (webhooks by ``webhook-id``, gateway messages by ``Idempotency-Key``), and the wait
for a quiet broker.

The worker is the project's (``bench._setup.celery_worker``: prefork, ``--without-gossip
--without-mingle --without-heartbeat``). A pool process killed mid-task is replaced by the main
process at once; with ``acks_late`` and ``reject_on_worker_lost`` the task's message is put back on
the queue at once (``redelivered``), not after Redis' visibility timeout."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import redis
from celery import Celery

from bench._setup import celery_worker

# kombu's Redis transport: the default queue (a list) and the messages delivered but not acked
QUEUE_KEY, UNACKED_KEY = "celery", "unacked"


class RedisServer:
    """``redis-server`` on ``port``, in memory only (``--save ''``, no AOF): a restart loses every
    queued message, as a crashed broker without persistence would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own server
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self) -> float:
        """Kill and start again; returns the seconds it was down."""
        started = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - started


class WorkerDied(RuntimeError):
    """The worker's main process exited (a supervisor would start it again)."""


class Worker:
    """A real Celery worker of the project on ``broker_url`` with ``env``; ``kill_pool_process``
    SIGKILLs the pool process running a task."""

    def __init__(self, process: subprocess.Popen, broker_url: str) -> None:
        self.process = process
        self.broker = redis.Redis.from_url(broker_url)

    def pool_processes(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def busy(self) -> bool:
        """A task's message is delivered and not yet acknowledged (acks_late: it is running)."""
        return bool(self.broker.hlen(UNACKED_KEY))

    def wait_busy(self, timeout: float = 10.0) -> float:
        """Wait until a task is running; returns when (``time.monotonic()``)."""
        deadline = time.monotonic() + timeout
        while not self.busy():
            if time.monotonic() > deadline:
                raise AssertionError(f"no task started within {timeout} s")
            time.sleep(0.002)
        return time.monotonic()

    def kill_pool_process(self, rng: random.Random) -> bool:
        """SIGKILL the pool process running a task (the one holding a PostgreSQL connection: Django
        closes it after each task), else one drawn by ``rng``; returns whether it was mid-task."""
        children = self.pool_processes()
        working = []
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                if any(c.raddr and c.raddr.port == 5432 for c in child.net_connections(kind="tcp")):
                    working.append(child)
        victim = rng.choice(working or children)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGKILL)
        return bool(working)

    def kill_mid_task(self, delay: float, rng: random.Random) -> tuple[bool, float]:
        """Once a task runs, wait ``delay`` seconds, SIGKILL its pool process and wait until the
        redelivered work is done; returns (whether the kill hit a running task, seconds to recover)."""
        self.wait_busy()
        time.sleep(delay)
        hit = self.kill_pool_process(rng)
        return hit, self.wait_quiet()

    def wait_quiet(self, timeout: float = 30.0, settle: float = 0.15) -> float:
        """Wait until no message is queued or unacknowledged (every task done and acked) for
        ``settle`` seconds; returns the seconds waited."""
        started = time.monotonic()
        quiet_since = None
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise WorkerDied("the Celery worker died")
            quiet = not self.broker.llen(QUEUE_KEY) and not self.broker.hlen(UNACKED_KEY)
            if quiet:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return time.monotonic() - started
            else:
                quiet_since = None
            time.sleep(0.02)
        raise AssertionError(
            f"tasks still queued or running after {timeout} s: queued {self.broker.llen(QUEUE_KEY)}, "
            f"unacked {self.broker.hlen(UNACKED_KEY)}"
        )


@contextlib.contextmanager
def worker(*, broker_url: str, database_url: str, env: dict[str, str] | None = None) -> Iterator[Worker]:
    """One worker (two pool processes: when one is killed the other takes the redelivered task at
    once; a killed one is replaced within 5 s, billiard's maintenance interval) on ``broker_url`` and the test database, up and answering
    pings; its broker database is emptied first."""
    redis.Redis.from_url(broker_url).flushdb()
    app = Celery("loyalty-faults", broker=broker_url)
    full_env = {
        **os.environ,
        "REDIS_URL": broker_url,
        "DATABASE_URL": database_url,
        "WEBHOOKS_ALLOW_HTTP_LOCALHOST": "true",
        "LEDGER_JOB_WORKERS": "1",
        **(env or {}),
    }
    with celery_worker(app=app, env=full_env, concurrency=2) as process:
        yield Worker(process, broker_url)


class Receiver:
    """An HTTP receiver on 127.0.0.1:``port`` that answers 200 with ``{"id": ...}`` and records
    each request's key: the ``webhook-id`` header (webhooks) or ``Idempotency-Key`` (the SMS
    gateway). A repeat of a key answers the same id (as a gateway that drops repeats does)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.keys: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                self.rfile.read(int(self.headers.get("content-length") or 0))
                key = self.headers.get("webhook-id") or self.headers.get("Idempotency-Key") or ""
                with receiver.lock:
                    receiver.keys.append(f"{self.path} {key}")
                body = json.dumps({"id": f"gw-{key}"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:  # noqa: A002 - quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self) -> Counter:
        with self.lock:
            return Counter(self.keys)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


LEDGER_INVARIANTS_SQL = """
SELECT 'unbalanced transaction', t.id FROM ledger_ledgertransaction t
    JOIN ledger_entry e ON e.transaction_id = t.id GROUP BY t.id HAVING sum(e.points) <> 0
UNION ALL
SELECT 'account figures', a.id FROM ledger_account a
    LEFT JOIN (SELECT account_id, sum(points) AS s FROM ledger_entry GROUP BY account_id) e ON e.account_id = a.id
    LEFT JOIN (SELECT account_id, sum(remaining) AS s, sum(remaining) FILTER (WHERE is_pending) AS p
               FROM ledger_lot GROUP BY account_id) l ON l.account_id = a.id
    WHERE a.kind = 'member' AND (
        a.available < 0 OR a.pending < 0 OR a.debt < 0
        OR a.available + a.pending - a.debt <> coalesce(e.s, 0)
        OR a.available + a.pending <> coalesce(l.s, 0)
        OR a.pending <> coalesce(l.p, 0))
UNION ALL
SELECT 'lot out of range', id FROM ledger_lot WHERE remaining < 0 OR remaining > points
"""


def ledger_invariant_breaches(cursor) -> list[tuple[str, int]]:
    """``tests/ledger/conftest.assert_ledger_invariants``'s balance rules, set-based (one statement
    over the whole ledger: the fault runs leave tens of thousands of accounts)."""
    cursor.execute(LEDGER_INVARIANTS_SQL)
    return cursor.fetchall()


class Partner:
    """A partner's client of the live API: every POST carries an Idempotency-Key and is retried
    with the same key on a connection error, a 5xx or ``idempotency_in_progress`` (409), as a
    partner's integration would."""

    RETRY_STATUSES = frozenset({500, 502, 503, 504})

    def __init__(self, base: str, api_key: str) -> None:
        import httpx

        self.base = base
        self.headers = {"Authorization": f"Api-Key {api_key}"}
        self.httpx = httpx

    def post(self, path: str, body: dict, *, key: str, attempts: int = 60) -> tuple[int, dict, int]:
        """(final status, final body, tries)."""
        with self.httpx.Client(base_url=self.base, timeout=30) as client:
            for tried in range(1, attempts + 1):
                try:
                    response = client.post(path, json=body, headers={**self.headers, "Idempotency-Key": key})
                except self.httpx.TransportError:
                    time.sleep(0.05 * tried)
                    continue
                retry = response.status_code in self.RETRY_STATUSES or (
                    response.status_code == 409 and response.json().get("code") == "idempotency_in_progress"
                )
                if not retry:
                    return response.status_code, response.json(), tried
                time.sleep(0.05 * tried)
        raise AssertionError(f"POST {path} with key {key}: no answer after {attempts} tries")


def terminate_backends(cursor, database: str, keep: list[int]) -> int:
    """``pg_terminate_backend`` every client connection to ``database`` but this one and ``keep``
    (the test's): the API server's; returns how many."""
    cursor.execute(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() AND NOT pid = ANY(%s) AND backend_type = 'client backend'",
        [database, keep],
    )
    return cursor.fetchone()[0]
