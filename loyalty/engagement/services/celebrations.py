"""Birthday and enrollment-anniversary rewards: a daily (hourly-safe) set-based job.

"Today" is the program's calendar day in its celebration time zone (``CelebrationPolicy``); a
birthday on 29 February is celebrated on 28 February in other years. Once per member, kind and
year: the award row's unique key (``INSERT ... ON CONFLICT DO NOTHING``), and the ledger
idempotency key of its points, so running the job again the same day gives nothing twice.
Members without a birth date, inactive members and members without an account in the program
are skipped."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.core.services import model_save_audited
from loyalty.engagement.models import CelebrationAward, CelebrationKind, CelebrationPolicy, CelebrationReward
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, AccountKind
from loyalty.partners.services import NewEvent, outbox_record_many
from loyalty.tiers import qualification
from loyalty.tiers.models import MemberTier
from loyalty.tiers.selectors import program_tiers
from members.models import Member, MemberStatus
from offers.services.offers import offer_activations_record_many


@dataclass(frozen=True)
class CelebrationReport:
    program_id: int
    kind: str
    day: dt.date
    awarded: int
    points: int


def celebration_days(today: dt.date) -> list[str]:
    """The birth (or enrollment) days, as 'MM-DD', celebrated on ``today``: today's, and 29 February
    on 28 February of a year without one."""
    days = [today.strftime("%m-%d")]
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        days.append("02-29")
    return days


def _rewards_by_tier(
    policy: CelebrationPolicy, kind: str
) -> tuple[dict[int, CelebrationReward], CelebrationReward | None]:
    rows = list(policy.rewards.filter(kind=kind))
    return {r.tier_id: r for r in rows if r.tier_id is not None}, next((r for r in rows if r.tier_id is None), None)


def _award_key(program_id: int, kind: str, year: int, member_id: int) -> str:
    return f"celebration:{program_id}:{kind}:{year}:{member_id}"


def _insert_postgresql(
    *, policy, kind, today, tz_name, now, by_tier, default, base_tier_id
) -> list[tuple[int, int, int | None]]:
    params: dict[str, Any] = {
        "program": policy.program_id,
        "kind": kind,
        "year": today.year,
        "day": today,
        "days": celebration_days(today),
        "tz": tz_name,
        "now": now,
        "tiers": list(by_tier),
        "tier_points": [r.points for r in by_tier.values()],
        "tier_offers": [r.offer_id for r in by_tier.values()],
        "base": base_tier_id,
        "default_points": default.points if default else 0,
        "default_offer": default.offer_id if default else None,
        "has_default": default is not None,
        "active": MemberStatus.ACTIVE,
        "account_kind": AccountKind.MEMBER,
    }
    if kind == CelebrationKind.BIRTHDAY:
        day_match = "to_char(m.birth_date, 'MM-DD') = ANY(%(days)s)"
    else:
        day_match = (
            "to_char(m.enrolled_at AT TIME ZONE %(tz)s, 'MM-DD') = ANY(%(days)s) "
            "AND EXTRACT(YEAR FROM m.enrolled_at AT TIME ZONE %(tz)s) < %(year)s"
        )
    sql = f"""
        INSERT INTO engagement_celebrationaward (member_id, program_id, kind, year, day, points, offer_id, awarded_at)
        SELECT m.id, %(program)s, %(kind)s, %(year)s, %(day)s,
               CASE WHEN r.tier_id IS NULL THEN %(default_points)s ELSE r.points END,
               CASE WHEN r.tier_id IS NULL THEN %(default_offer)s::bigint ELSE r.offer_id END,
               %(now)s
        FROM members_member m
        JOIN ledger_account a ON a.member_id = m.id AND a.program_id = %(program)s AND a.kind = %(account_kind)s
        LEFT JOIN tiers_membertier mt ON mt.member_id = m.id AND mt.program_id = %(program)s
        LEFT JOIN unnest(%(tiers)s::bigint[], %(tier_points)s::int[], %(tier_offers)s::bigint[])
             AS r(tier_id, points, offer_id) ON r.tier_id = COALESCE(mt.tier_id, %(base)s::bigint)
        WHERE m.status = %(active)s AND {day_match} AND (r.tier_id IS NOT NULL OR %(has_default)s)
        ON CONFLICT (member_id, program_id, kind, year) DO NOTHING
        RETURNING member_id, points, offer_id
    """  # noqa: S608 - constant fragments, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def _insert_orm(
    *, policy, kind, today, tz_name, now, by_tier, default, base_tier_id
) -> list[tuple[int, int, int | None]]:
    """The embedded demo's fallback (SQLite): candidates read with the ORM, the same rows written."""
    days = celebration_days(today)
    members = Member.objects.filter(status=MemberStatus.ACTIVE)
    if kind == CelebrationKind.BIRTHDAY:
        candidates = [
            m.pk
            for m in members.filter(birth_date__isnull=False).only("pk", "birth_date")
            if m.birth_date.strftime("%m-%d") in days
        ]
    else:
        tz = ZoneInfo(tz_name)
        candidates = [
            m.pk
            for m in members.only("pk", "enrolled_at")
            if (local := m.enrolled_at.astimezone(tz)).strftime("%m-%d") in days and local.year < today.year
        ]
    with_account = set(
        Account.objects.filter(
            program_id=policy.program_id, kind=AccountKind.MEMBER, member_id__in=candidates
        ).values_list("member_id", flat=True)
    )
    tiers = dict(
        MemberTier.objects.filter(program_id=policy.program_id, member_id__in=with_account).values_list(
            "member_id", "tier_id"
        )
    )
    done = set(
        CelebrationAward.objects.filter(
            program_id=policy.program_id, kind=kind, year=today.year, member_id__in=with_account
        ).values_list("member_id", flat=True)
    )
    rows = []
    for member_id in sorted(with_account - done):
        reward = by_tier.get(tiers.get(member_id, base_tier_id)) or default
        if reward is not None:
            rows.append((member_id, reward.points, reward.offer_id))
    CelebrationAward.objects.bulk_create(
        [
            CelebrationAward(
                member_id=m,
                program_id=policy.program_id,
                kind=kind,
                year=today.year,
                day=today,
                points=p,
                offer_id=o,
                awarded_at=now,
            )
            for m, p, o in rows
        ]
    )
    return rows


def celebrations_award(*, policy: CelebrationPolicy, kind: str, now: dt.datetime | None = None) -> CelebrationReport:
    """Reward today's birthdays (or anniversaries) of one program, in one transaction: the award
    rows (one statement over all members on PostgreSQL), their points (``points_credit_many``),
    their offers activated (``offer_activations_record_many``), one event each (``celebration.rewarded``)."""
    now = now or clock.now()
    tz_name = policy.time_zone or "UTC"
    today = timezone.localtime(now, ZoneInfo(tz_name)).date()
    by_tier, default = _rewards_by_tier(policy, kind)
    if not by_tier and default is None:
        return CelebrationReport(program_id=policy.program_id, kind=kind, day=today, awarded=0, points=0)
    base = qualification.base_tier(program_tiers(program=policy.program).rules)
    args = {
        "policy": policy,
        "kind": kind,
        "today": today,
        "tz_name": tz_name,
        "now": now,
        "by_tier": by_tier,
        "default": default,
        "base_tier_id": base.id if base else None,
    }
    with transaction.atomic():
        rows = (_insert_postgresql if connection.vendor == "postgresql" else _insert_orm)(**args)
        paid = [(m, p) for m, p, _ in rows if p]
        if paid:
            accounts = {
                a.member_id: a
                for a in Account.objects.filter(
                    program_id=policy.program_id, kind=AccountKind.MEMBER, member_id__in=[m for m, _ in paid]
                )
            }
            label = "birthday" if kind == CelebrationKind.BIRTHDAY else "enrollment anniversary"
            ledger.points_credit_many(
                credits=[
                    ledger.Credit(
                        account=accounts[m],
                        points=p,
                        reason=f"{label} {today.year}",
                        at=now,
                        idempotency_key=_award_key(policy.program_id, kind, today.year, m),
                        explanation=[{"rule": label.capitalize(), "detail": f"{label} {today.year}", "points": str(p)}],
                    )
                    for m, p in paid
                ]
            )
        offers: dict[int, list[int]] = defaultdict(list)
        for m, _, offer_id in rows:
            if offer_id:
                offers[offer_id].append(m)
        for offer_id, member_ids in offers.items():
            offer_activations_record_many(offer_id=offer_id, member_ids=member_ids, channel=kind)
        outbox_record_many(
            events=[
                NewEvent(
                    event_type="celebration.rewarded",
                    member_id=m,
                    at=now,
                    payload={"kind": kind, "year": today.year, "points": p, "offer_id": o},
                )
                for m, p, o in rows
            ]
        )
    return CelebrationReport(
        program_id=policy.program_id, kind=kind, day=today, awarded=len(rows), points=sum(p for _, p, _ in rows)
    )


def celebration_policy_save(
    *, policy: CelebrationPolicy, actor: Any, created: bool, reason: str = ""
) -> CelebrationPolicy:
    """Staff set a program's birthday and anniversary policy (audited). The time zone must be an IANA name."""
    try:
        ZoneInfo(policy.time_zone)
    except (ValueError, KeyError, OSError):
        raise ValidationFailed(
            f"Unknown time zone '{policy.time_zone}'", code="invalid_time_zone", fields={"time_zone": ["Unknown."]}
        ) from None
    return model_save_audited(
        instance=policy,
        actor=actor,
        created=created,
        fields=("program", "time_zone", "is_active"),
        action="celebration_policy",
        reason=reason,
    )


def celebrations_run(*, now: dt.datetime | None = None) -> list[CelebrationReport]:
    """Every active program's birthdays and anniversaries of its local today. Safe to run hourly
    (each program's midnight comes at its own hour) and again: nothing is given twice."""
    now = now or clock.now()
    return [
        celebrations_award(policy=policy, kind=kind, now=now)
        for policy in CelebrationPolicy.objects.filter(is_active=True).select_related("program").order_by("pk")
        for kind in CelebrationKind.values
    ]
