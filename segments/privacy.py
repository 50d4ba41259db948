"""The segments app's part of data export and erasure (registered in SegmentsConfig.ready).

Segment memberships and scores are profiling of the member: exported, and deleted on
erasure (with the member's entry/leave events and any place in uploaded lists' reports)."""

from __future__ import annotations

from typing import Any

from segments.models import MemberScore, SegmentEvent, SegmentMembership


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def export_member(member) -> dict[str, Any]:
    score = MemberScore.objects.filter(member=member).first()
    return {
        "memberships": [
            {"segment": m.segment.name, "entered_at": _iso(m.entered_at), "left_at": _iso(m.left_at)}
            for m in SegmentMembership.objects.filter(member=member)
            .select_related("segment")
            .order_by("entered_at", "id")
        ],
        "scores": None
        if score is None
        else {
            "computed_on": _iso(score.computed_on),
            "recency_days": score.recency_days,
            "frequency": score.frequency,
            "monetary": str(score.monetary),
            "rfm": f"{score.r_score}{score.f_score}{score.m_score}",
            "rfm_segment": score.rfm_segment,
            "predicted_purchases": score.predicted_purchases,
            "probability_alive": score.probability_alive,
            "predicted_clv": None if score.predicted_clv is None else str(score.predicted_clv),
        },
    }


def erase_member(member) -> None:
    SegmentEvent.objects.filter(member=member).delete()
    SegmentMembership.objects.filter(member=member).delete()
    MemberScore.objects.filter(member=member).delete()
