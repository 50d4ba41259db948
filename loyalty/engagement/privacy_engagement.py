"""Engagement's part of a member's data export: challenges (progress, completions), badges,
community-event registrations, birthday and anniversary awards. These records hold no personal
data beyond the member link: they are kept on erasure (the member row is pseudonymized)."""

from __future__ import annotations

from typing import Any

from loyalty.engagement.models import (
    CelebrationAward,
    ChallengeCompletion,
    ChallengeProgress,
    EventRegistration,
    MemberBadge,
)


def export_member(member) -> dict[str, Any]:
    return {
        "challenges": [
            {
                "challenge": p.challenge.name,
                "progress": str(p.value),
                "joined_at": p.opted_in_at and p.opted_in_at.isoformat(),
            }
            for p in ChallengeProgress.objects.filter(member=member).select_related("challenge").order_by("id")
        ],
        "challenges_completed": [
            {"challenge": c.challenge.name, "at": c.completed_at.isoformat(), "points": c.points}
            for c in ChallengeCompletion.objects.filter(member=member).select_related("challenge").order_by("id")
        ],
        "badges": [
            {"badge": b.badge.name, "earned_at": b.earned_at.isoformat()}
            for b in MemberBadge.objects.filter(member=member).select_related("badge").order_by("id")
        ],
        "community_events": [
            {
                "event": r.event.title,
                "starts_at": r.event.starts_at.isoformat(),
                "status": r.status,
                "attended_at": r.attended_at and r.attended_at.isoformat(),
            }
            for r in EventRegistration.objects.filter(member=member).select_related("event").order_by("id")
        ],
        "birthday_and_anniversary_rewards": [
            {"kind": a.kind, "year": a.year, "points": a.points}
            for a in CelebrationAward.objects.filter(member=member).order_by("id")
        ],
    }


def erase_member(member) -> None:
    """Nothing to erase: these records carry no personal data of their own."""
