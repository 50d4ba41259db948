"""Shared set-up for bench scripts: a dedicated PostgreSQL database, recreated and migrated."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(db_name: str) -> None:
    """Point Django at a fresh PostgreSQL database ``db_name`` (BENCH_PG_URL gives the server)."""
    import psycopg

    server = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    os.environ["DATABASE_URL"] = f"{server}/{db_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


SQL_MEMBERS = """
INSERT INTO members_member (member_number, external_id, email, phone, first_name, last_name, postal_code, country,
    preferred_language, age_band, income_band, household_composition, home_ownership, marital_status, status,
    enrolled_at, enrollment_source, referral_code, updated_at)
SELECT '9' || lpad(i::text, 11, '0'), 'bench-' || i, NULL, '', 'Bench', 'Member ' || i, '', 'US', 'en', '', '', '', '', '',
    'active', %(now)s, 'import', 'B' || lpad(i::text, 10, '0'), %(now)s
FROM generate_series(1, %(n)s) AS i
"""


def insert_select(
    cursor, model, given: dict[str, str | tuple[str, list]], source: str, params: list, *, analyze: bool = True
) -> int:
    """INSERT INTO <model> (...) SELECT ... FROM <source>: ``given`` maps columns to SQL
    expressions (with their parameters); other columns get NULL or their model default, so
    columns added later keep working. ``params`` are the parameters of ``source``. For the bench
    scripts that generate their data in the database."""
    from django.db import connection

    columns, expressions, values = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in given:
            continue
        columns.append(field.column)
        if field.column in given:
            expression, expression_params = given[field.column], []
            if isinstance(expression, tuple):
                expression, expression_params = expression
            expressions.append(expression)
            values.extend(expression_params)
        elif field.null:
            expressions.append("NULL")
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            expressions.append("now()")
        elif (default := field.get_default()) is not None:
            expressions.append("%s")
            values.append(field.get_db_prep_save(default, connection))
        else:
            raise RuntimeError(f"{model.__name__}.{field.name}: no value for the bench")
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(expressions)} FROM {source}",
        [*values, *params],
    )
    count = cursor.rowcount
    if analyze:  # the next INSERT ... SELECT joins it: fresh statistics
        cursor.execute(f"ANALYZE {model._meta.db_table}")
    return count


@contextlib.contextmanager
def celery_worker(*, app, env: dict[str, str], concurrency: int) -> Iterator[subprocess.Popen]:
    """A real Celery worker of the project (``concurrency`` processes, ``env`` as its environment), up and
    answering pings when the block starts, terminated when it ends."""
    worker = subprocess.Popen(  # noqa: S603 - our own worker
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "loyalty",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the Celery worker did not start")
        yield worker
    finally:
        worker.terminate()
        worker.wait(30)


@contextlib.contextmanager
def bench_server(*, port: int, workers: int, threads: int, redis_url: str) -> Iterator[str]:
    """The API served as in production (gunicorn gthread workers, Redis for throttling and the broker,
    the bench settings) on 127.0.0.1:``port``; yields its base URL once it answers, stops it after."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "API_THROTTLE_RATE": "1000000/min",
        "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT}",
        "REDIS_URL": redis_url,
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "loyalty.wsgi", "-b", f"127.0.0.1:{port}"]
    command += ["-w", str(workers), "--threads", str(threads), "-k", "gthread", "--log-level", "error"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/api/schema/", timeout=5)  # noqa: S310 - local bench server
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
