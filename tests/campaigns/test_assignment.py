"""Arm assignment: a keyed hash per member and campaign, deterministic, split by the weights, and
the same in Python and in PostgreSQL."""

import numpy as np
import pytest
from django.db import connection
from scipy import stats

from loyalty.campaigns import assignment
from loyalty.campaigns.models import HOLDOUT

KEY = "0123456789abcdef0123456789abcdef"


def test_a_member_always_gets_the_same_arm_of_a_campaign():
    arms = assignment.Arms.of(holdout_percent=10, variants=[("A", 1), ("B", 1)])

    first = [assignment.arm_of(key=KEY, member_id=i, arms=arms) for i in range(1000)]
    again = [assignment.arm_of(key=KEY, member_id=i, arms=arms) for i in range(1000)]

    assert first == again


def test_another_campaign_key_shuffles_the_arms():
    arms = assignment.Arms.of(holdout_percent=50, variants=[("A", 1)])

    one = [assignment.arm_of(key=KEY, member_id=i, arms=arms) for i in range(2000)]
    other = [assignment.arm_of(key="another-key", member_id=i, arms=arms) for i in range(2000)]

    agreement = sum(a == b for a, b in zip(one, other, strict=True)) / 2000
    assert 0.45 < agreement < 0.55  # independent coin flips agree half the time


def test_arms_split_100k_members_by_holdout_and_weights_chi_square():
    arms = assignment.Arms.of(holdout_percent=10, variants=[("A", 2), ("B", 1)])
    n = 100_000

    counts = {HOLDOUT: 0, "A": 0, "B": 0}
    for member_id in range(1, n + 1):
        counts[assignment.arm_of(key=KEY, member_id=member_id, arms=arms)] += 1

    expected = np.array([0.10, 0.60, 0.30]) * n
    observed = np.array([counts[HOLDOUT], counts["A"], counts["B"]])
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_boundaries_follow_the_weights_exactly():
    arms = assignment.Arms.of(holdout_percent=12.5, variants=[("A", 1), ("B", 3)])

    assert arms.holdout_end == 1250
    assert arms.ends == (1250 + 8750 // 4, 10_000)
    assert arms.arm_of_bucket(0) == HOLDOUT
    assert arms.arm_of_bucket(1249) == HOLDOUT
    assert arms.arm_of_bucket(1250) == "A"
    assert arms.arm_of_bucket(9999) == "B"


def test_no_holdout_means_every_member_is_treated():
    arms = assignment.Arms.of(holdout_percent=0, variants=[("A", 1)])

    assert {assignment.arm_of(key=KEY, member_id=i, arms=arms) for i in range(500)} == {"A"}


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_assigns_exactly_the_arms_python_assigns():
    arms = assignment.Arms.of(holdout_percent=10, variants=[("A", 1), ("B", 2), ("C", 1)])
    ids = list(range(1, 20_001)) + [2**31 - 1, 10**12]
    case_sql, case_params = assignment.arm_sql(arms)

    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT b.member_id, b.bucket, {case_sql}
                FROM (SELECT s.member_id, {assignment.bucket_sql("s.member_id")} AS bucket
                      FROM unnest(%s::bigint[]) AS s(member_id)) AS b ORDER BY b.member_id""",  # noqa: S608 - our own expressions
            [*case_params, KEY, ids],
        )
        rows = cursor.fetchall()

    assert [(m, b) for m, b, _ in rows] == [(m, assignment.bucket_of(key=KEY, member_id=m)) for m in ids]
    assert [a for _, _, a in rows] == [assignment.arm_of(key=KEY, member_id=m, arms=arms) for m in ids]
