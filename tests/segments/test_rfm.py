"""RFM scores and names against a hand-computed table (pure, no database)."""

import pandas as pd
import pytest

from segments.models import RfmSegment
from segments.scoring import rfm

# member: (recency_days, frequency, monetary) -> (R, F, M, segment), worked out by hand with
# score = floor(5 * (average rank - 0.5) / 10) + 1 and FM = (F + M + 1) // 2.
TABLE = {
    "A": ((1, 1, 15), (5, 1, 1, "new")),  # ranks: R 10, F 1.5 (tie with J), M 2
    "B": ((3, 20, 2000), (5, 5, 5, "champions")),
    "C": ((8, 2, 40), (4, 2, 2, "potential_loyalist")),
    "D": ((15, 9, 700), (4, 4, 4, "champions")),
    "E": ((25, 6, 250), (3, 3, 3, "need_attention")),
    "F": ((40, 3, 90), (3, 2, 2, "about_to_sleep")),
    "G": ((70, 14, 1200), (2, 5, 5, "cant_lose")),
    "H": ((120, 4, 150), (2, 3, 3, "at_risk")),
    "I": ((250, 12, 900), (1, 4, 4, "cant_lose")),
    "J": ((500, 1, 10), (1, 1, 1, "lost")),
}


def test_scores_and_names_match_the_hand_computed_table():
    frame = pd.DataFrame(
        [{"member": k, "recency_days": r, "frequency": f, "monetary": m} for k, ((r, f, m), _) in TABLE.items()]
    )
    scored = rfm.rfm_scores(frame).set_index("member")
    for key, (_, (r, f, m, name)) in TABLE.items():
        row = scored.loc[key]
        assert (row.r_score, row.f_score, row.m_score, row.rfm_segment) == (r, f, m, name), key


@pytest.mark.parametrize(
    ("r", "f", "m", "name"),
    [
        (5, 5, 4, "champions"),
        (5, 3, 3, "loyal"),
        (3, 4, 5, "loyal"),
        (4, 1, 2, "potential_loyalist"),
        (5, 1, 1, "new"),
        (4, 1, 1, "promising"),
        (3, 3, 3, "need_attention"),
        (3, 1, 2, "about_to_sleep"),
        (2, 3, 4, "at_risk"),
        (1, 5, 3, "cant_lose"),
        (2, 1, 2, "hibernating"),
        (1, 2, 1, "lost"),
    ],
)
def test_score_map(r, f, m, name):
    assert rfm.segment_name(r, f, m) == name


def test_the_map_covers_every_cell_with_the_eleven_named_segments():
    names = {rfm.SEGMENT_MAP[r][fm] for r in range(1, 6) for fm in range(1, 6)}
    assert names == set(RfmSegment.values)
    assert len(names) == 11


def test_equal_values_share_a_score():
    assert rfm.quintile_scores(pd.Series([7, 7, 7, 7])).tolist() == [3, 3, 3, 3]
    assert rfm.quintile_scores(pd.Series([1, 2, 3, 4, 5])).tolist() == [1, 2, 3, 4, 5]
    assert rfm.quintile_scores(pd.Series([1, 2, 3, 4, 5]), higher_is_better=False).tolist() == [5, 4, 3, 2, 1]
    assert rfm.quintile_scores(pd.Series([], dtype="float64")).tolist() == []


def test_scores_are_quintiles_for_a_large_base():
    scores = rfm.quintile_scores(pd.Series(range(1000)))
    assert scores.value_counts().sort_index().tolist() == [200, 200, 200, 200, 200]
