"""The scoring pipeline's pure part: customer-day summaries and the fallback for degenerate fits."""

import numpy as np
import pandas as pd
import pytest

from segments.scoring import pipeline


def test_purchases_on_one_day_are_one_transaction_and_the_first_day_is_left_out_of_the_repeat_mean():
    days = pd.DataFrame(
        {
            "member_id": [1, 1, 1, 1, 2],
            "day": [100, 100, 107, 121, 110],
            "spend": [10.0, 30.0, 20.0, 60.0, 5.0],
            "purchases_window": [0, 0, 1, 1, 1],
            "spend_window": [0.0, 0.0, 20.0, 60.0, 5.0],
        }
    )
    summary = pipeline.member_summaries(pipeline.member_days_aggregate(days), end_day=130).set_index("member_id")
    one = summary.loc[1]
    assert (one["x"], one["t_x_days"], one["T_days"], one["recency_days"], one["transactions"]) == (2, 21, 30, 9, 3)
    assert one["repeat_mean"] == pytest.approx(40.0)  # (20 + 60) / 2: the first day's 40 left out
    assert (one["spend_total"], one["transactions_window"], one["spend_window"]) == (120.0, 2, 80.0)
    two = summary.loc[2]
    assert (two["x"], two["t_x_days"], two["T_days"], two["repeat_mean"]) == (0, 0, 20, 0.0)


def steady_base(n: int = 200, seed: int = 1) -> pd.DataFrame:
    """Members who all keep buying at their own rate to the end: no drop-out to estimate, so
    BG/NBD runs a and b to their bounds."""
    rng = np.random.default_rng(seed)
    T = rng.integers(100, 700, n)
    x = rng.poisson(rng.gamma(2, 1 / 20, n) * T)
    t_x = np.where(x > 0, np.maximum(T - rng.integers(0, 5, n), 0), 0)
    return pd.DataFrame(
        {
            "member_id": np.arange(n),
            "x": x,
            "t_x_days": t_x,
            "T_days": T,
            "recency_days": T - t_x,
            "transactions": x + 1,
            "spend_total": (x + 1) * 30.0,
            "repeat_mean": np.where(x > 0, 30.0 + rng.normal(0, 3, n), 0.0),
            "transactions_window": x,
            "spend_window": x * 30.0,
        }
    )


def test_a_fit_at_its_bound_is_reported_and_value_falls_back_to_historic_value_per_day():
    base = steady_base()
    scored = pipeline.score_members(base, horizon_days=365, margin=0.5)
    assert scored.degenerate and scored.basis == pipeline.BASIS_HISTORIC
    assert set(scored.bgnbd.at_bound) == {"a", "b"}
    assert any("BG/NBD degenerate: a, b at the bound" in note for note in scored.notes)
    observed = np.maximum(base["T_days"] + 1, 365)
    expected = base["spend_total"] / observed * 365 * 0.5
    assert np.allclose(scored.frame["predicted_clv"], expected)
    assert scored.frame["probability_alive"].isna().all()  # no trusted model: not shown


def test_a_member_seen_for_a_few_days_is_not_extrapolated_past_their_spend():
    base = steady_base()
    base.loc[0, ["x", "t_x_days", "T_days", "recency_days", "transactions", "spend_total", "repeat_mean"]] = [
        0,
        0,
        2,
        2,
        1,
        90.0,
        0.0,
    ]
    scored = pipeline.score_members(base, horizon_days=365)
    assert scored.frame.loc[0, "predicted_clv"] == pytest.approx(90.0)
