"""RFM scores: recency, frequency and monetary value scored 1-5 by quintile, and named segments.

Pure functions over a pandas DataFrame (no database).

Quintile score
--------------
Each measure is ranked over the scored members so that a higher rank is better (recency:
fewer days since the last purchase is better; frequency and monetary: more is better).
Members with equal values share their average rank. With ``n`` members and average rank
``k`` (1 = worst), the score is::

    score = min(5, floor(5 * (k - 0.5) / n) + 1)

so distinct values fall into five equal bands (two members per band among ten) and ties
always get the same score.

Score map
---------
The named segment comes from the recency score R and the frequency-monetary score
FM = round half up of (F + M) / 2, by this table (rows R, columns FM):

    R\\FM  1                 2                   3                4               5
    5      New               Potential loyalist  Loyal            Champions       Champions
    4      Promising         Potential loyalist  Loyal            Champions       Champions
    3      About to sleep    About to sleep      Need attention   Loyal           Loyal
    2      Hibernating       Hibernating         At risk          At risk         Can't lose them
    1      Lost              Lost                At risk          Can't lose them Can't lose them
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CHAMPIONS = "champions"
LOYAL = "loyal"
POTENTIAL_LOYALIST = "potential_loyalist"
NEW = "new"
PROMISING = "promising"
NEED_ATTENTION = "need_attention"
ABOUT_TO_SLEEP = "about_to_sleep"
AT_RISK = "at_risk"
CANT_LOSE = "cant_lose"
HIBERNATING = "hibernating"
LOST = "lost"

# SEGMENT_MAP[R][FM], R and FM in 1..5
SEGMENT_MAP: dict[int, dict[int, str]] = {
    5: {1: NEW, 2: POTENTIAL_LOYALIST, 3: LOYAL, 4: CHAMPIONS, 5: CHAMPIONS},
    4: {1: PROMISING, 2: POTENTIAL_LOYALIST, 3: LOYAL, 4: CHAMPIONS, 5: CHAMPIONS},
    3: {1: ABOUT_TO_SLEEP, 2: ABOUT_TO_SLEEP, 3: NEED_ATTENTION, 4: LOYAL, 5: LOYAL},
    2: {1: HIBERNATING, 2: HIBERNATING, 3: AT_RISK, 4: AT_RISK, 5: CANT_LOSE},
    1: {1: LOST, 2: LOST, 3: AT_RISK, 4: CANT_LOSE, 5: CANT_LOSE},
}


def quintile_scores(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """Scores 1-5 by quintile of the average rank (ties share a score)."""
    n = len(values)
    if n == 0:
        return pd.Series([], dtype="int64", index=values.index)
    ranks = values.astype("float64").rank(method="average", ascending=higher_is_better)
    scores = np.floor(5 * (ranks.to_numpy() - 0.5) / n).astype("int64") + 1
    return pd.Series(np.minimum(scores, 5), index=values.index, dtype="int64")


def fm_score(f: int, m: int) -> int:
    return (f + m + 1) // 2


def segment_name(r: int, f: int, m: int) -> str:
    return SEGMENT_MAP[r][fm_score(f, m)]


def rfm_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` and ``rfm_segment`` to a frame with columns
    ``recency_days``, ``frequency`` and ``monetary`` (one row per member)."""
    out = frame.copy()
    out["r_score"] = quintile_scores(frame["recency_days"], higher_is_better=False)
    out["f_score"] = quintile_scores(frame["frequency"])
    out["m_score"] = quintile_scores(frame["monetary"])
    fm = (out["f_score"] + out["m_score"] + 1) // 2
    table = np.empty((6, 6), dtype=object)
    for r, row in SEGMENT_MAP.items():
        for f, name in row.items():
            table[r, f] = name
    out["rfm_segment"] = table[out["r_score"].to_numpy(), fm.to_numpy()] if len(out) else []
    return out
