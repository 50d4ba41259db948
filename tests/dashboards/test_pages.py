"""The dashboards' pages: each renders its charts and tables, exports every table as CSV, refuses
bad filters with a clear error (400, nothing computed), and keeps its query count pinned."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client

from tests.dashboards.conftest import staff_user

pytestmark = pytest.mark.django_db

RANGE = "start=2030-01-01&end=2030-03-31"
# the most queries each dashboard may make (session and user included); they do not grow with data
QUERIES = {
    "health": 18,
    "tiers": 15,
    "segments": 20,
    "offers": 10,
    "profitability": 12,
}  # offers, profitability: +1 campaigns of the range


@pytest.fixture
def analyst(story):
    client = Client()
    client.force_login(staff_user("Analyst"))
    return client


def program_query(story) -> str:
    return f"program={story['program'].pk}&{RANGE}"


@pytest.mark.parametrize("board", list(QUERIES))
def test_dashboard_renders_every_chart_with_its_table(analyst, story, board):
    response = analyst.get(f"/staff/{board}/?{program_query(story)}")
    assert response.status_code == 200
    html = response.content.decode()
    charts = html.count("<svg")
    assert charts >= 1
    assert html.count("<table") >= charts  # every chart is followed by its table
    assert html.count('role="img"') == charts and html.count("<title id=") == charts
    assert "<script" not in html


@pytest.mark.parametrize("board", list(QUERIES))
def test_query_count_is_pinned_per_dashboard(analyst, story, board, django_assert_max_num_queries):
    with django_assert_max_num_queries(QUERIES[board]):
        assert analyst.get(f"/staff/{board}/?{program_query(story)}").status_code == 200


def test_every_table_exports_as_csv_with_the_page_filters(analyst, story):
    page = analyst.get(f"/staff/profitability/?{program_query(story)}").content.decode()
    assert "export=settlement" in page
    response = analyst.get(f"/staff/profitability/?{program_query(story)}&export=settlement")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "Partner"
    coffee = next(r for r in rows if r[0] == "Coffee")
    assert coffee[1:4] == ["130", "0.0080", "1.04"]


@pytest.mark.parametrize("board", list(QUERIES))
def test_each_table_of_each_dashboard_exports(analyst, story, board):
    import re

    html = analyst.get(f"/staff/{board}/?{program_query(story)}").content.decode()
    ids = set(re.findall(r"export=([a-z_]+)", html))
    assert ids
    for table_id in ids:
        response = analyst.get(f"/staff/{board}/?{program_query(story)}&export={table_id}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), table_id


def test_an_unknown_table_is_404(analyst, story):
    assert analyst.get(f"/staff/health/?{RANGE}&export=nope").status_code == 404


@pytest.mark.parametrize(
    "query,message",
    [
        ("start=2030-03-01&end=2030-01-01", "must not be before its start"),
        ("start=2020-01-01&end=2030-01-01", "at most three years"),
        ("start=yesterday", "Enter a valid date"),
        ("program=999999", "Choose one of the programs"),
        ("partner=abc", "Choose one of the partners"),
    ],
)
def test_bad_filters_are_a_clear_error_and_nothing_is_computed(analyst, story, query, message):
    response = analyst.get(f"/staff/health/?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "<svg" not in html


def test_segments_refuses_more_than_four_segments(analyst, story):
    from segments.services import segment_create

    ids = [
        segment_create(name=f"S{i}", rules={"all": [{"field": "member.status", "op": "eq", "value": "active"}]}).pk
        for i in range(5)
    ]
    query = "&".join(f"segments={i}" for i in ids)
    response = analyst.get(f"/staff/segments/?{query}")
    assert response.status_code == 400
    assert "at most four" in response.content.decode()


def test_partner_filter_narrows_the_profitability_audit(analyst, story):
    response = analyst.get(
        f"/staff/profitability/?{program_query(story)}&partner={story['store'].pk}&export=profit_partners"
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [r[0] for r in rows[1:]] == ["Store"]


def test_segments_query_count_with_four_segments_chosen_does_not_grow_with_members(
    analyst, story, django_assert_max_num_queries
):
    from segments.services import segment_create, segment_refresh

    rules = {"all": [{"field": "member.status", "op": "eq", "value": "active"}]}
    ids = []
    for i in range(4):
        segment = segment_create(name=f"All {i}", rules=rules)
        segment_refresh(segment=segment)
        ids.append(segment.pk)
    query = "&".join(f"segments={i}" for i in ids)
    with django_assert_max_num_queries(SEGMENTS_WITH_FOUR):
        assert analyst.get(f"/staff/segments/?{program_query(story)}&{query}").status_code == 200


SEGMENTS_WITH_FOUR = 50  # the 18 above, about 6 per segment (size, tier mix, RFM mix, CLV, score run) and 6 overlaps


def test_a_page_without_a_range_shows_the_default_twelve_months_in_its_date_inputs(analyst, story):
    from loyalty.core import clock

    clock.set_now(dt.datetime(2030, 3, 31, 12, tzinfo=dt.UTC))
    html = analyst.get(f"/staff/health/?program={story['program'].pk}").content.decode()
    assert 'name="start" value="2029-04-01"' in html and 'name="end" value="2030-03-31"' in html
