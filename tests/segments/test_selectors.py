"""Selectors other apps use: members of a segment, segments of a member, overlap, composition."""

from decimal import Decimal

import pytest

from loyalty.tiers import services as tiers
from members import services as members
from segments import selectors, services
from tests.segments.conftest import buy, dynamic, ids, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_segments(program):
    a, b, c, d = (
        member(age_band="25-34", kids_count=2),
        member(age_band="25-34"),
        member(age_band="45-54"),
        member(),
    )
    buy(a, amount=300), buy(b, amount=100), buy(c, amount=50)
    young = dynamic("Young", {"field": "member.age_band", "op": "eq", "value": "25-34"})
    big = dynamic("Big spenders", {"field": "purchase.spend", "op": "gte", "value": 80})
    services.segment_refresh(segment=young)
    services.segment_refresh(segment=big)
    return {"a": a, "b": b, "c": c, "d": d, "young": young, "big": big}


def test_segment_members_and_member_segments(two_segments):
    s = two_segments
    assert set(selectors.segment_members(segment=s["young"]).values_list("pk", flat=True)) == ids(s["a"], s["b"])
    assert list(selectors.member_segments(member=s["a"])) == [s["big"], s["young"]]
    assert list(selectors.member_segments(member=s["d"])) == []
    assert selectors.member_in_segment(member=s["b"], segment=s["young"])
    assert not selectors.member_in_segment(member=s["c"], segment=s["young"])


def test_overlap_of_two_segments(two_segments):
    overlap = selectors.segment_overlap(first=two_segments["young"], second=two_segments["big"])
    assert overlap == {"first": 2, "second": 2, "both": 2, "only_first": 0, "only_second": 0, "jaccard": 1.0}
    services.segment_update(segment=two_segments["big"], rules={"field": "purchase.spend", "op": "gte", "value": 200})
    services.segment_refresh(segment=two_segments["big"])
    overlap = selectors.segment_overlap(first=two_segments["young"], second=two_segments["big"])
    assert overlap == {"first": 2, "second": 1, "both": 1, "only_first": 1, "only_second": 0, "jaccard": 0.5}


def test_composition_shows_tiers_demographics_and_spend_share(two_segments, program):
    tiers.tier_create(program=program, name="Base", rank=0)
    tiers.tier_create(program=program, name="Silver", rank=1, thresholds={"spend": "250"})
    tiers.tier_upgrade_check(member=two_segments["a"], program=program)
    composition = selectors.segment_composition(segment=two_segments["young"])
    assert composition["size"] == 2
    assert composition["tiers"] == [
        {"tier": "Base", "rank": 0, "members": 1, "share": 0.5},
        {"tier": "Silver", "rank": 1, "members": 1, "share": 0.5},
    ]
    assert composition["demographics"]["age_band"] == [{"value": "25-34", "members": 2}]
    assert {"value": None, "members": 1} in composition["demographics"]["kids_count"]
    assert composition["spend"]["segment"] == Decimal("400.00")
    assert composition["spend"]["total"] == Decimal("450.00")
    assert composition["spend"]["share"] == pytest.approx(0.8889, abs=1e-4)
    assert composition["spend"]["per_member"] == Decimal("200.00")
    assert composition["predicted_clv"] == {
        "average": None,
        "total": None,
        "basis": None,
        "degenerate": False,
        "explanation": "",
    }


def test_preview_counts_and_samples_matches_without_writing(two_segments, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        preview = selectors.segment_preview(rules={"field": "member.age_band", "op": "is_set", "value": True})
    assert preview["count"] == 3
    assert {row["id"] for row in preview["sample"]} == ids(two_segments["a"], two_segments["b"], two_segments["c"])
    assert preview["description"] == "age band is filled in"


def test_members_data_export_and_erasure_cover_segments(two_segments):
    a = two_segments["a"]
    exported = members.member_export(member=a)["segments"]
    assert {m["segment"] for m in exported["memberships"]} == {"Young", "Big spenders"}
    members.member_erase(member=a, actor=None, reason="request")
    assert members.member_export(member=a)["segments"] == {"memberships": [], "scores": None}
    services.segment_refresh(segment=two_segments["big"])
    assert not selectors.member_in_segment(member=a, segment=two_segments["big"])
