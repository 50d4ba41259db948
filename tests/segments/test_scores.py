"""The scoring service: reads purchases set-based, writes MemberScore rows in bulk."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.management import call_command

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.ledger import services as ledger
from members import services as members
from segments import selectors, services, tasks
from segments.models import MemberScore, ScoreRun
from tests.segments.conftest import T0, buy, dynamic, ids, matching, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def ladder(program):
    """m1..m5: k purchases of 10*k, the last one 100, 50, 20, 10, 1 days ago."""
    people = {}
    for k, last in zip(range(1, 6), (100, 50, 20, 10, 1), strict=True):
        person = member()
        for i in range(k):
            buy(person, days_ago=last + 10 * i, amount=10 * k)
        people[k] = person
    return people


def test_rfm_scores_are_stored_per_member_with_the_date(ladder):
    run = services.scores_compute()
    assert run.members_scored == 5
    rows = {s.member_id: s for s in MemberScore.objects.all()}
    expected = {1: "lost", 2: "hibernating", 3: "need_attention", 4: "champions", 5: "champions"}
    for k, person in ladder.items():
        score = rows[person.pk]
        assert (score.r_score, score.f_score, score.m_score) == (k, k, k)
        assert score.rfm_segment == expected[k]
        assert score.frequency == k and score.monetary == Decimal(10 * k * k)
        assert score.computed_on == T0.date() and score.run_id == run.pk
    assert rows[ladder[1].pk].recency_days == 100
    assert "CLV not computed" in run.note
    assert rows[ladder[1].pk].predicted_clv is None


def test_recency_counts_all_history_but_frequency_and_monetary_only_the_window(ladder):
    services.scores_compute(window_days=30)
    m1 = MemberScore.objects.get(member=ladder[1])
    assert (m1.recency_days, m1.frequency, m1.monetary, m1.purchases_total) == (100, 0, Decimal("0.00"), 1)
    m5 = MemberScore.objects.get(member=ladder[5])
    assert (m5.frequency, m5.purchases_total, m5.historic_clv) == (3, 5, Decimal("250.00"))


def test_returns_reduce_monetary_and_a_fully_returned_purchase_does_not_count(program):
    buyer = member()
    kept = buy(buyer, days_ago=3, amount=100)
    gone = buy(buyer, days_ago=1, amount=40)
    ledger.purchase_return_clawback(purchase=kept, external_id="r1", amount="25.00")
    ledger.purchase_return_clawback(purchase=gone, external_id="r2", amount="40.00")
    services.scores_compute()
    score = MemberScore.objects.get(member=buyer)
    assert (score.frequency, score.monetary, score.recency_days) == (1, Decimal("75.00"), 3)


def make_base(n: int = 80, seed: int = 7):
    """n members with varied purchase rhythms over the last 300 days."""
    rng = random.Random(seed)
    people = []
    for i in range(n):
        person = member()
        purchases = 1 + (i % 7) * rng.randint(0, 3)
        start = rng.randint(30, 300)
        for j in range(purchases):
            buy(person, days_ago=max(0.5, start - j * rng.randint(5, 40)), amount=rng.randint(5, 120))
        people.append(person)
    return people


def test_predicted_value_is_fitted_and_stored(program):
    make_base()
    frequent, lapsed = member(), member()
    for day in range(2, 200, 14):
        buy(frequent, days_ago=day, amount=60)
    buy(lapsed, days_ago=290, amount=60)
    run = services.scores_compute(margin="0.5")
    assert run.note == ""
    assert set(run.bgnbd) == {"r", "alpha", "a", "b", "log_likelihood", "members", "converged", "at_bound"}
    assert set(run.gamma_gamma) == {"p", "q", "gamma", "log_likelihood", "members", "converged", "at_bound"}
    assert (run.clv_basis, run.degenerate, run.fit_members) == ("model", False, 82)
    assert run.fit_log_likelihood == pytest.approx(run.bgnbd["log_likelihood"]) and run.fit_log_likelihood < 0
    assert set(run.timings) == {"read_s", "compute_s", "write_s", "total_s"}
    rows = MemberScore.objects.all()
    assert rows.count() == 82
    assert not rows.filter(predicted_clv__isnull=True).exists()
    for score in rows:
        assert 0 <= score.probability_alive <= 1
        expected = Decimal(score.predicted_purchases) * score.expected_spend * Decimal("0.5")
        assert abs(score.predicted_clv - expected) <= Decimal("0.05") + expected * Decimal("0.001")
    best, worst = MemberScore.objects.get(member=frequent), MemberScore.objects.get(member=lapsed)
    assert best.predicted_purchases > worst.predicted_purchases
    assert best.predicted_clv > worst.predicted_clv
    assert best.rfm_segment == "champions"


def test_batches_give_the_same_scores_as_one_batch(program):
    make_base(30)
    services.scores_compute()
    first = {s.member_id: (s.r_score, s.f_score, s.m_score, s.predicted_clv) for s in MemberScore.objects.all()}
    services.scores_compute(batch_size=4)
    second = {s.member_id: (s.r_score, s.f_score, s.m_score, s.predicted_clv) for s in MemberScore.objects.all()}
    assert first == second


def test_a_new_run_replaces_the_scores_and_drops_members_without_purchases(ladder):
    services.scores_compute()
    members.member_erase(member=ladder[2], actor=None, reason="request")  # eraser drops the score
    assert not MemberScore.objects.filter(member=ladder[2]).exists()
    clock.set_now(T0 + dt.timedelta(days=7))
    run = services.scores_compute()
    assert MemberScore.objects.count() == 4
    assert set(MemberScore.objects.values_list("run_id", flat=True)) == {run.pk}
    assert MemberScore.objects.get(member=ladder[1]).recency_days == 107


def test_scores_feed_segment_conditions(ladder):
    services.scores_compute()
    assert matching({"field": "score.rfm_segment", "op": "eq", "value": "champions"}) == ids(ladder[4], ladder[5])
    segment = dynamic("Champions", {"field": "score.rfm_segment", "op": "eq", "value": "champions"})
    services.segment_refresh(segment=segment)
    assert selectors.segment_composition(segment=segment)["rfm_segments"] == [
        {"rfm_segment": "champions", "members": 2}
    ]
    assert selectors.rfm_distribution()[0]["members"] == 2


def test_settings_are_checked(now):
    with pytest.raises(ValidationFailed) as exc:
        services.scores_compute(margin="1.5")
    assert exc.value.code == "invalid_margin"
    with pytest.raises(ValidationFailed):
        services.scores_compute(window_days=0)
    assert not ScoreRun.objects.exists()


def test_command_and_task_compute_scores(ladder, capsys):
    call_command("compute_scores", "--window-days", "90")
    assert "scored 5 members" in capsys.readouterr().out
    assert ScoreRun.objects.get().window_days == 90
    assert tasks.compute_scores.delay().get() == 5


def test_no_purchases_no_scores(now):
    member()
    run = services.scores_compute()
    assert run.members_scored == 0 and not MemberScore.objects.exists()


def test_a_degenerate_fit_is_stored_with_the_run_and_shown_with_the_composition(program):
    """Everybody buys every week to the end: no drop-out to estimate, BG/NBD's b runs to its bound."""
    people = []
    for i in range(24):
        person = member()
        for week in range(6 + i % 4):
            buy(person, days_ago=1 + 7 * week + i % 3, amount=20 + i)
        people.append(person)
    run = services.scores_compute(horizon_days=364)
    assert run.degenerate and run.clv_basis == "historic"
    assert run.bgnbd["at_bound"] and run.fit_members == 24 and run.fit_log_likelihood < 0
    assert "degenerate" in run.note and "historic value per day" in run.note
    score = MemberScore.objects.get(member=people[0])
    assert score.probability_alive is None
    assert score.predicted_clv == Decimal(20 * 6)  # 6 weeks seen: at most what was spent, over one horizon
    segment = dynamic("Everybody", {"field": "score.r", "op": "gte", "value": 1})
    services.segment_refresh(segment=segment)
    shown = selectors.segment_composition(segment=segment)["predicted_clv"]
    assert shown["basis"] == "historic" and shown["degenerate"]
    assert "historic value per day" in shown["explanation"]
