import os

import pytest
from django.db import connection

from loyalty.core import clock

IN_CI = bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests skip (with the reason) on SQLite outside CI; in CI they must run."""
    from django.conf import settings

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
def _reset_clock():
    yield
    clock.set_now(None)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"
