"""Reads of referrals: the referrer behind a code, a member's invites, a program's settings."""

from __future__ import annotations

from dataclasses import dataclass

from loyalty.engagement.models import Referral, ReferralSettings, ReferralStatus
from loyalty.ledger.models import Program
from members.models import Member, MemberStatus

REFERRAL_CODE_MAX = 12


def referral_code_clean(code: str) -> str:
    return "".join((code or "").split()).upper()[:REFERRAL_CODE_MAX]


def referrer_by_code(*, code: str) -> Member | None:
    """The active member whose referral code this is (case and spaces ignored), else None."""
    code = referral_code_clean(code)
    if not code:
        return None
    return Member.objects.filter(referral_code__iexact=code, status=MemberStatus.ACTIVE).first()


def referral_settings_of(*, program: Program) -> ReferralSettings | None:
    return ReferralSettings.objects.filter(program=program).first()


@dataclass(frozen=True)
class Invite:
    """One friend as the referrer sees them: a first name only, the status in words, the points."""

    first_name: str
    joined_on: object
    status: str
    status_label: str
    points: int
    note: str


STATUS_WORDS = {
    ReferralStatus.JOINED: "Joined: waiting for a first purchase",
    ReferralStatus.QUALIFIED: "Qualified (no reward this time)",
    ReferralStatus.REWARDED: "Rewarded",
    ReferralStatus.REVERSED: "Reversed (the purchase was returned)",
}


def referral_invites(*, member: Member, limit: int = 50) -> list[Invite]:
    """The friends this member brought in, newest first, with what each gave the member. Only the
    friend's first name is shown (nothing else of another member's data)."""
    rows = (
        Referral.objects.filter(referrer=member)
        .select_related("referee")
        .only("status", "note", "joined_at", "referrer_points", "referee__first_name")
        .order_by("-joined_at", "-id")[:limit]
    )
    return [
        Invite(
            first_name=r.referee.first_name or "A friend",
            joined_on=r.joined_at,
            status=r.status,
            status_label=STATUS_WORDS.get(r.status, r.status),
            points=r.referrer_points if r.status == ReferralStatus.REWARDED else 0,
            note=r.note,
        )
        for r in rows
    ]
