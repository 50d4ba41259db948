import os
from pathlib import Path

import pytest
from django.db import connection

from loyalty.core import clock

IN_CI = bool(os.environ.get("CI"))
VERIFY_DIR = Path(__file__).resolve().parent / "verify"


def pytest_addoption(parser):
    parser.addoption(
        "--verify",
        action="store_true",
        help="run the reliability proof (tests/verify, `make verify`) instead of the fast suite",
    )


def _is_verify(item) -> bool:
    return Path(str(item.path)).is_relative_to(VERIFY_DIR)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Browser tests run last (pytest-playwright keeps an event loop in the test thread until the
    session ends: tests/e2e/conftest.py). PostgreSQL-only tests skip (with the reason) on SQLite
    outside CI; in CI they must run."""
    from django.conf import settings

    # `make test` runs the fast suite; `make verify` (--verify) runs only tests/verify. Neither skips
    # the other's tests: they are deselected, so a run reports exactly what it proved.
    verify = config.getoption("--verify")
    kept = [item for item in items if _is_verify(item) == verify]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if _is_verify(item) != verify])
        items[:] = kept

    items.sort(key=lambda item: "e2e" in item.keywords)  # stable: the rest keep their order

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    if IN_CI:
        raise pytest.UsageError("CI must run against PostgreSQL: set DATABASE_URL=postgres://...")
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://postgres@127.0.0.1/loyalty)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tests run Celery tasks in-process even when REDIS_URL is set (CI): no worker needed."""
    from loyalty.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.set_now(None)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


def _seed_reference_data():
    """Transactional tests flush every table, data-migration rows included: put them back."""
    import importlib

    from django.apps import apps

    from loyalty.core.roles import sync_roles

    importlib.import_module("loyalty.ledger.migrations.0002_append_only_default_program_roles").default_program(
        apps, None
    )
    importlib.import_module("loyalty.activity.migrations.0002_builtin_event_types_roles").seed(apps, None)
    sync_roles(apps)


# The session setting that lets TRUNCATE empty the ledger tables (ledger migration 0008): only the
# flush that empties the test database between transactional tests uses it.
ALLOW_LEDGER_TRUNCATE = "SET loyalty.allow_ledger_truncate = 'on'"


@pytest.fixture(autouse=True)
def _reference_data_after_flush(request):
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker and marker.kwargs.get("transaction")) or "transactional_db" in request.fixturenames
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")
    _seed_reference_data()
    yield
    # runs before transactional_db's teardown flushes every table with one TRUNCATE
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(ALLOW_LEDGER_TRUNCATE)
