"""From purchases per member and calendar day to stored scores: RFM, BG/NBD and Gamma-Gamma.

Pure functions over pandas DataFrames (no database); ``segments.services.scores`` reads the
member-days and writes the result.

Definitions (Fader, Hardie & Lee 2005; the conventions of the ``lifetimes`` package):

- A transaction is a customer-day: the purchases of one member on one calendar day (in the
  program's time zone) are one transaction, their spend summed.
- x = transactions after the first; t_x = days from the first to the last transaction day;
  T = days from the first transaction day to the last day observed. BG/NBD is fitted in weeks
  (days / 7), as in the paper.
- Gamma-Gamma is fitted on members with x >= 1, on x and the mean value of the repeat
  transactions (the first day's spend left out); a member's expected transaction value uses
  the same (x = 0 gives the population mean).

Both models are fitted on at most ``fit_sample`` members drawn at random (fixed seed), with
identical rows compressed to weights. A fit with a parameter at its bound or that did not
converge is *degenerate*: predicted value then falls back to the member's historic value per
day (see ``historic_estimate``) and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segments.scoring import clv, rfm

MIN_MEMBERS_FOR_FIT = 20
MIN_REPEATERS_FOR_FIT = 5
DAY_COLUMNS = ("member_id", "day", "spend", "purchases_window", "spend_window")

BASIS_MODEL = "model"
BASIS_HISTORIC = "historic"
BASIS_NONE = "none"


@dataclass
class Scored:
    frame: pd.DataFrame
    bgnbd: clv.BgNbd | None = None
    gamma_gamma: clv.GammaGamma | None = None
    basis: str = BASIS_NONE
    notes: list[str] = field(default_factory=list)

    @property
    def degenerate(self) -> bool:
        return any(model is not None and model.degenerate for model in (self.bgnbd, self.gamma_gamma))


MEMBER_COLUMNS = (
    "member_id",
    "first_day",
    "last_day",
    "transactions",
    "spend_total",
    "first_spend",
    "transactions_window",
    "spend_window",
)


def member_days_aggregate(days: pd.DataFrame) -> pd.DataFrame:
    """Rows of (``member_id``, ``day``: days since 1970 in the program's time zone, ``spend``,
    ``purchases_window``: purchases of that row in the RFM window, ``spend_window``) to one row
    per member (``MEMBER_COLUMNS``). Several rows of one member and day are one transaction.
    ``segments.services.scores`` computes the same in SQL on PostgreSQL."""
    if days.empty:
        return pd.DataFrame({c: np.zeros(0, dtype="int64") for c in MEMBER_COLUMNS})
    per_day = (
        pd.DataFrame(
            {
                "member_id": days["member_id"].to_numpy(dtype="int64"),
                "day": days["day"].to_numpy(dtype="int64"),
                "spend": days["spend"].to_numpy(dtype="float64"),
                "purchases_window": days["purchases_window"].to_numpy(dtype="int64"),
                "spend_window": days["spend_window"].to_numpy(dtype="float64"),
            }
        )
        .groupby(["member_id", "day"], sort=True, as_index=False)
        .sum()
    )
    per_day["in_window"] = per_day["purchases_window"] > 0
    by_member = per_day.groupby("member_id", sort=True)
    return pd.DataFrame(
        {
            "member_id": by_member["member_id"].first().to_numpy(),
            "first_day": by_member["day"].min().to_numpy(),
            "last_day": by_member["day"].max().to_numpy(),
            "transactions": by_member.size().to_numpy(),
            "spend_total": by_member["spend"].sum().to_numpy(),
            "first_spend": by_member["spend"].first().to_numpy(),  # rows are sorted by day
            "transactions_window": by_member["in_window"].sum().to_numpy(dtype="int64"),
            "spend_window": by_member["spend_window"].sum().to_numpy(),
        }
    )


def member_summaries(members: pd.DataFrame, *, end_day: int) -> pd.DataFrame:
    """From one row per member (``MEMBER_COLUMNS``) and ``end_day``, the last day observed:
    ``member_id``, ``x``, ``t_x_days``, ``T_days``, ``recency_days`` (days since the last
    transaction day), ``transactions``, ``spend_total``, ``repeat_mean`` (mean spend of the
    transactions after the first; 0 when x = 0), ``transactions_window``, ``spend_window``."""
    first = members["first_day"].to_numpy(dtype="int64")
    last = members["last_day"].to_numpy(dtype="int64")
    count = members["transactions"].to_numpy(dtype="int64")
    total = members["spend_total"].to_numpy(dtype="float64")
    x = count - 1
    repeat = total - members["first_spend"].to_numpy(dtype="float64")
    return pd.DataFrame(
        {
            "member_id": members["member_id"].to_numpy(dtype="int64"),
            "x": x,
            "t_x_days": last - first,
            "T_days": end_day - first,
            "recency_days": end_day - last,
            "transactions": count,
            "spend_total": total,
            "repeat_mean": np.divide(repeat, x, out=np.zeros(len(x), dtype="float64"), where=x > 0),
            "transactions_window": members["transactions_window"].to_numpy(dtype="int64"),
            "spend_window": members["spend_window"].to_numpy(dtype="float64"),
        }
    )


def historic_estimate(summary: pd.DataFrame, *, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """The simpler estimate used when a model fit is degenerate: the member's transactions and
    spend per day since their first transaction day (counting at least one horizon, so a member
    seen for a few days is not extrapolated), times the horizon. Returns (transactions, value)."""
    observed = np.maximum(summary["T_days"].to_numpy(dtype="float64") + 1, float(horizon_days))
    scale = horizon_days / observed
    return (
        summary["transactions"].to_numpy(dtype="float64") * scale,
        summary["spend_total"].to_numpy(dtype="float64") * scale,
    )


def score_members(
    summary: pd.DataFrame,
    *,
    horizon_days: int = 365,
    margin: float = 1.0,
    fit_sample: int = 200_000,
    seed: int = 0,
) -> Scored:
    """RFM scores over the window columns, and BG/NBD × Gamma-Gamma predictions for the next
    ``horizon_days`` (value × ``margin``) for every row of ``member_summaries``."""
    frame = pd.DataFrame(
        {
            "member_id": summary["member_id"].to_numpy(),
            "recency_days": summary["recency_days"].to_numpy(dtype="int64"),
            "frequency": summary["transactions_window"].to_numpy(dtype="int64"),
            "monetary": summary["spend_window"].to_numpy(dtype="float64"),
            "purchases_total": summary["transactions"].to_numpy(dtype="int64"),
            "historic_clv": summary["spend_total"].to_numpy(dtype="float64"),
        }
    )
    frame = rfm.rfm_scores(frame)
    result = Scored(frame=frame)
    for column in ("predicted_purchases", "probability_alive", "expected_spend", "predicted_clv"):
        frame[column] = np.nan
    if len(frame) < MIN_MEMBERS_FOR_FIT:
        result.notes.append(f"CLV not computed: {len(frame)} members with purchases (needs {MIN_MEMBERS_FOR_FIT})")
        return result

    x = summary["x"].to_numpy(dtype="float64")
    T = summary["T_days"].to_numpy(dtype="float64") / 7.0
    t_x = summary["t_x_days"].to_numpy(dtype="float64") / 7.0
    if int(np.sum(x > 0)) < MIN_REPEATERS_FOR_FIT:
        result.notes.append(f"CLV not computed: fewer than {MIN_REPEATERS_FOR_FIT} members bought on two days")
        return result
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(frame), size=fit_sample, replace=False) if len(frame) > fit_sample else slice(None)
    try:
        (ux, ut, uT), weights, _ = clv.compress(x[sample], t_x[sample], T[sample])
        model = clv.bgnbd_fit(ux, ut, uT, weights)
    except clv.FitError as exc:
        result.notes.append(f"BG/NBD not fitted: {exc}")
        return result
    result.bgnbd = model

    mean = summary["repeat_mean"].to_numpy(dtype="float64")
    repeaters = (x >= 1) & (mean > 0)
    spend_model = None
    if int(np.sum(repeaters)) < MIN_REPEATERS_FOR_FIT:
        result.notes.append("Gamma-Gamma not fitted: too few members with repeat transactions of positive value")
    else:
        index = np.flatnonzero(repeaters)
        if len(index) > fit_sample:
            index = rng.choice(index, size=fit_sample, replace=False)
        try:
            (un, um), gweights, _ = clv.compress(x[index], np.round(mean[index], 2))
            spend_model = clv.gamma_gamma_fit(un, um, gweights)
            result.gamma_gamma = spend_model
            if spend_model.q <= 1:
                raise clv.FitError("Gamma-Gamma with q <= 1 has no finite mean spend")
        except clv.FitError as exc:
            result.notes.append(f"Gamma-Gamma not usable: {exc}")
            spend_model = None

    if result.degenerate or spend_model is None:
        for name, model_fit in (("BG/NBD", result.bgnbd), ("Gamma-Gamma", result.gamma_gamma)):
            if model_fit is not None and model_fit.at_bound:
                result.notes.append(f"{name} degenerate: {', '.join(model_fit.at_bound)} at the bound")
            if model_fit is not None and not model_fit.converged:
                result.notes.append(f"{name} degenerate: the fit did not converge")
        purchases, value = historic_estimate(summary, horizon_days=horizon_days)
        frame["predicted_purchases"] = purchases
        frame["expected_spend"] = summary["spend_total"].to_numpy(dtype="float64") / np.maximum(
            summary["transactions"].to_numpy(dtype="float64"), 1
        )
        frame["predicted_clv"] = value * margin
        result.basis = BASIS_HISTORIC
        result.notes.append(
            "Predicted value is the historic value per day over the next "
            f"{horizon_days} days (a stated fallback), not the model"
        )
        return result

    horizon = horizon_days / 7.0
    purchases = clv.expected_purchases(model, horizon, x, t_x, T)
    spend = clv.expected_spend(spend_model, x, mean)
    frame["predicted_purchases"] = purchases
    frame["probability_alive"] = np.clip(clv.probability_alive(model, x, t_x, T), 0.0, 1.0)
    frame["expected_spend"] = spend
    frame["predicted_clv"] = purchases * spend * margin
    result.basis = BASIS_MODEL
    return result
