"""parallel_drain: every item once, on as many connections as asked, errors raised."""

import threading

import pytest
from django.db import connection

from loyalty.core.parallel import job_workers, parallel_drain


def test_one_worker_runs_every_item_here_in_order():
    seen = parallel_drain(range(5), lambda i: (i, threading.current_thread().name), workers=1)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_several_workers_take_every_item_exactly_once():
    seen = parallel_drain(range(100), lambda i: i * i, workers=4)
    assert sorted(seen) == [i * i for i in range(100)]


def test_the_first_error_is_raised():
    def work(i):
        if i == 3:
            raise ValueError("item 3")
        return i

    with pytest.raises(ValueError, match="item 3"):
        parallel_drain(range(10), work, workers=2)


@pytest.mark.django_db
def test_inside_a_transaction_or_on_sqlite_jobs_stay_on_one_connection():
    """Work started inside a transaction must see it: one worker whatever is configured."""
    assert connection.in_atomic_block  # the test's own transaction
    assert job_workers(4) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_postgresql_uses_the_configured_workers():
    assert job_workers(3) == 3 and job_workers(0) == 1
