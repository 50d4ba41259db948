"""From per-member purchase summaries to stored scores: RFM, BG/NBD and Gamma-Gamma.

Pure function over a pandas DataFrame (no database); ``segments.services.scores`` reads the
summaries and writes the result.

Input columns (one row per member with at least one purchase up to the as-of time):
``member_id``, ``first_age_days`` (days from the first purchase to as-of), ``last_age_days``
(days from the last purchase to as-of), ``purchases_total``, ``spend_total``,
``purchases_window``, ``spend_window``.

BG/NBD works in weeks: x = purchases − 1 (repeat purchases), t_x = weeks from the first to
the last purchase, T = weeks from the first purchase to as-of. Gamma-Gamma uses each member's
mean spend per purchase over all their purchases. Both are fitted on at most ``fit_sample``
members drawn at random (fixed seed), with identical rows compressed to weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segments.scoring import clv, rfm

MIN_MEMBERS_FOR_FIT = 20
MIN_REPEATERS_FOR_FIT = 5


@dataclass
class Scored:
    frame: pd.DataFrame
    bgnbd: clv.BgNbd | None = None
    gamma_gamma: clv.GammaGamma | None = None
    notes: list[str] = field(default_factory=list)


def score_members(
    summary: pd.DataFrame,
    *,
    horizon_days: int = 365,
    margin: float = 1.0,
    fit_sample: int = 200_000,
    seed: int = 0,
) -> Scored:
    frame = pd.DataFrame(
        {
            "member_id": summary["member_id"].to_numpy(),
            "recency_days": np.floor(summary["last_age_days"].to_numpy(dtype="float64")).astype("int64"),
            "frequency": summary["purchases_window"].to_numpy(dtype="int64"),
            "monetary": summary["spend_window"].to_numpy(dtype="float64"),
            "purchases_total": summary["purchases_total"].to_numpy(dtype="int64"),
            "historic_clv": summary["spend_total"].to_numpy(dtype="float64"),
        }
    )
    frame = rfm.rfm_scores(frame)
    result = Scored(frame=frame)
    frame["predicted_purchases"] = np.nan
    frame["probability_alive"] = np.nan
    frame["expected_spend"] = np.nan
    frame["predicted_clv"] = np.nan
    if len(frame) < MIN_MEMBERS_FOR_FIT:
        result.notes.append(f"CLV not computed: {len(frame)} members with purchases (needs {MIN_MEMBERS_FOR_FIT})")
        return result

    first = summary["first_age_days"].to_numpy(dtype="float64")
    last = summary["last_age_days"].to_numpy(dtype="float64")
    x = frame["purchases_total"].to_numpy(dtype="float64") - 1
    T = np.round(first) / 7.0
    t_x = np.clip(np.round(first - last), 0, None) / 7.0
    t_x = np.minimum(t_x, T)
    if int(np.sum(x > 0)) < MIN_REPEATERS_FOR_FIT:
        result.notes.append(f"CLV not computed: fewer than {MIN_REPEATERS_FOR_FIT} members bought twice")
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
    horizon = horizon_days / 7.0
    purchases = clv.expected_purchases(model, horizon, x, t_x, T)
    frame["predicted_purchases"] = purchases
    frame["probability_alive"] = np.clip(clv.probability_alive(model, x, t_x, T), 0.0, 1.0)

    n = frame["purchases_total"].to_numpy(dtype="float64")
    mean = frame["historic_clv"].to_numpy(dtype="float64") / np.maximum(n, 1)
    repeaters = (n >= 2) & (mean > 0)
    if int(np.sum(repeaters)) < MIN_REPEATERS_FOR_FIT:
        result.notes.append("Gamma-Gamma not fitted: too few members with two purchases and positive spend")
        return result
    index = np.flatnonzero(repeaters)
    if len(index) > fit_sample:
        index = rng.choice(index, size=fit_sample, replace=False)
    try:
        (un, um), gweights, _ = clv.compress(n[index], np.round(mean[index], 2))
        spend_model = clv.gamma_gamma_fit(un, um, gweights)
        spend = clv.expected_spend(spend_model, n, mean)
    except clv.FitError as exc:
        result.notes.append(f"Gamma-Gamma not usable: {exc}")
        return result
    result.gamma_gamma = spend_model
    frame["expected_spend"] = spend
    frame["predicted_clv"] = purchases * spend * margin
    return result
