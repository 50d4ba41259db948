"""Parallel set-based jobs: disjoint pieces of work on several database connections at once.

The nightly jobs (expiry, maturation, tier evaluation) are single SQL statements per window of
rows; one connection keeps one core busy. On PostgreSQL, ``parallel_drain`` hands the windows
to a few threads, each with its own connection (closed when it is done), so a 2-core machine
does twice the work. Windows must be disjoint (each locks its own rows) so that threads never
wait on each other. SQLite has a single writer, and work started inside an open transaction must
stay on that transaction's connection, so both run serially.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection

Item = TypeVar("Item")
Result = TypeVar("Result")


def job_workers(configured: int) -> int:
    """How many connections a job may use: ``configured`` on PostgreSQL outside a transaction,
    else 1."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, int(configured))


def parallel_drain(items: Iterable[Item], work: Callable[[Item], Result], *, workers: int) -> list[Result]:
    """``work(item)`` for every item, on ``workers`` threads pulling from one queue (results in
    no particular order). With one worker everything runs here, on this connection. The first
    error stops the other threads from taking new items and is raised."""
    if workers <= 1:
        return [work(item) for item in items]
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        pending.put(item)
    failed: list[BaseException] = []

    def drain() -> list[Result]:
        done: list[Result] = []
        try:
            while not failed:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
                done.append(work(item))
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            connection.close()  # this thread's own connection
        return done

    with ThreadPoolExecutor(max_workers=workers) as pool:
        running = [pool.submit(drain) for _ in range(workers)]
        results = [future.result() for future in running]
    return [result for chunk in results for result in chunk]
