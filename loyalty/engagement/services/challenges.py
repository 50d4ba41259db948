"""Challenges: progress from the purchase and event workflows (under the member's account lock),
completion awarded exactly once (points, a reward issued free, a badge), opting in, and the
nightly set-based recomputation (one SQL statement per challenge over all members)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q

from loyalty.core import clock
from loyalty.core.errors import Conflict, NotFound
from loyalty.core.services import model_delete_audited, model_save_audited
from loyalty.engagement.models import (
    Badge,
    Challenge,
    ChallengeCompletion,
    ChallengeKind,
    ChallengeProgress,
    MemberBadge,
)
from loyalty.engagement.selectors.challenges import (
    PURCHASE_KINDS,
    ChallengeConfig,
    challenge_targets_member,
    challenges_active,
)
from loyalty.engagement.services.referrals import bonus_take_back
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, AccountKind, Purchase, PurchaseLine, Return
from loyalty.partners.services import NewEvent, outbox_record, outbox_record_many
from loyalty.tiers import qualification
from loyalty.tiers.selectors import program_tiers
from offers.models import CouponSource, Reward
from offers.services.coupons import coupon_issue

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from members.models import Member

ZERO = Decimal("0")


def _award_key(challenge_id: int, member_id: int) -> str:
    """The ledger idempotency key of a challenge's points: the same from every path that awards."""
    return f"challenge:{challenge_id}:{member_id}"


# --- progress from the workflows (hot path) --------------------------------------------------------


def _line_amount(line: dict[str, Any]) -> Decimal:
    return Decimal(str(line.get("amount", 0) or 0)) - Decimal(str(line.get("discount", 0) or 0))


def _purchase_contribution(
    c: ChallengeConfig, *, purchase: Purchase, lines: Sequence[dict[str, Any]], since: dt.datetime
) -> Decimal:
    """What one purchase adds to a challenge (0: nothing)."""
    in_category = [line for line in lines if str(line.get("category", "")) == c.category] if c.category else lines
    if c.kind == ChallengeKind.PURCHASE_COUNT:
        return Decimal(1) if in_category else ZERO
    if c.kind == ChallengeKind.SPEND:
        if c.category:
            return max(sum((_line_amount(line) for line in in_category), ZERO), ZERO)
        return max(purchase.total, ZERO)
    if purchase.partner_id is None:
        return ZERO
    earlier = Purchase.objects.filter(
        member_id=purchase.member_id,
        program_id=purchase.program_id,
        partner_id=purchase.partner_id,
        occurred_at__gte=since,
        occurred_at__lt=c.ends_at,
    ).exclude(pk=purchase.pk)
    if c.kind == ChallengeKind.STORES_VISITED:
        if not purchase.store_code:
            return ZERO
        earlier = earlier.filter(store_code=purchase.store_code)
    return ZERO if earlier.exists() else Decimal(1)


def _advance(
    *,
    locked: ledger.LockedAccount,
    contributions: list[tuple[ChallengeConfig, Any]],
    at: dt.datetime,
    now: dt.datetime,
    amount_of: Any,
    purchase: Purchase | None = None,
) -> list[ChallengeCompletion]:
    """Add to the member's progress on each candidate challenge of their audience (after their
    opt-in where it is required) and award those that reach their target. The caller holds the
    member's account lock: every workflow writing this member's progress waits for it."""
    member = locked.member
    program = locked.program
    progress = {
        p.challenge_id: p
        for p in ChallengeProgress.objects.filter(member=member, challenge_id__in=[c.pk for c, _ in contributions])
    }
    completed = []
    for c, context in contributions:
        row = progress.get(c.pk)
        since = c.starts_at
        if c.requires_opt_in:
            if row is None or row.opted_in_at is None or row.opted_in_at > at:
                continue
            since = max(since, row.opted_in_at)
        amount = amount_of(c, context, since)
        if amount <= 0:
            continue
        if not challenge_targets_member(challenge=c, member=member, program=program):
            continue
        created = False
        if row is None:
            try:
                with transaction.atomic():
                    ChallengeProgress.objects.create(challenge_id=c.pk, member=member, value=amount, updated_at=now)
                created, value = True, amount
            except IntegrityError:  # the nightly run inserted it meanwhile: add to its row
                pass
        if not created:
            mine = ChallengeProgress.objects.filter(challenge_id=c.pk, member=member)
            mine.update(value=F("value") + amount, updated_at=now)
            value = mine.values_list("value", flat=True)[0]
        if (
            value >= c.target
            and (done := challenge_complete_locked(locked=locked, challenge=c, now=now, purchase=purchase)) is not None
        ):
            completed.append(done)
    return completed


def challenges_on_purchase(
    *, locked: ledger.LockedAccount, purchase: Purchase, lines: Sequence[dict[str, Any]]
) -> list[ChallengeCompletion]:
    """The purchase workflow's one call (under the account lock, in its transaction): progress on
    the running purchase challenges, awards on completion. No statement when no challenge of the
    program is running at the purchase's time (the challenges are cached configuration)."""
    live = [
        c
        for c in challenges_active(program=locked.program)
        if c.kind in PURCHASE_KINDS and c.open_at(purchase.occurred_at)
    ]
    if not live:
        return []
    return _advance(
        locked=locked,
        contributions=[(c, None) for c in live],
        at=purchase.occurred_at,
        now=clock.now(),
        amount_of=lambda c, _ctx, since: _purchase_contribution(c, purchase=purchase, lines=lines, since=since),
        purchase=purchase,
    )


def challenges_on_event(
    *, locked: ledger.LockedAccount, event_type: str, occurred_at: dt.datetime
) -> list[ChallengeCompletion]:
    """The event workflow's one call: one more event of ``event_type`` for the running event-count
    challenges that count it."""
    live = [
        c
        for c in challenges_active(program=locked.program)
        if c.kind == ChallengeKind.EVENT_COUNT and c.event_type_code == event_type and c.open_at(occurred_at)
    ]
    if not live:
        return []
    return _advance(
        locked=locked,
        contributions=[(c, None) for c in live],
        at=occurred_at,
        now=clock.now(),
        amount_of=lambda c, _ctx, since: Decimal(1),
    )


def _reward_issue(*, reward_id: int, program: Program, member: Member) -> tuple[Any, str]:
    """A reward of the catalogue issued free: one from its stock (conditional UPDATE), its coupon.
    Out of stock or no longer active: no coupon, and the note says so."""
    reward = Reward.objects.filter(pk=reward_id).first()
    if reward is None or not reward.is_active:
        return None, "reward no longer offered"
    if reward.stock is not None and not Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1):
        return None, f"{reward.name} out of stock"
    coupon = coupon_issue(
        program=program, source=CouponSource.REWARD, member=member, reward=reward, valid_days=reward.coupon_valid_days
    )
    return coupon, ""


def _completed_payload(c: ChallengeConfig | Challenge, member: Member, completion: ChallengeCompletion) -> dict:
    return {
        "member_number": member.member_number,
        "challenge_id": c.pk,
        "challenge": c.name,
        "points": completion.points,
        "coupon_id": completion.coupon_id,
        "badge_id": c.badge_id,
    }


def challenge_complete_locked(
    *, locked: ledger.LockedAccount, challenge: ChallengeConfig, now: dt.datetime, purchase: Purchase | None = None
) -> ChallengeCompletion | None:
    """Award a completed challenge to the locked account's member, once: the completion row's
    unique key decides (a second call, or a nightly run that got there first, awards nothing and
    returns None). Points (ledger key ``challenge:<id>:<member>``), the reward's coupon, the
    badge and the event ``challenge.completed``, all in the caller's transaction. ``purchase``: the
    purchase that completed it (its full return takes the points back: ``challenges_return_check``)."""
    member = locked.member
    if ChallengeCompletion.objects.filter(challenge_id=challenge.pk, member=member).exists():
        return None
    try:
        with transaction.atomic():
            completion = ChallengeCompletion.objects.create(
                challenge_id=challenge.pk,
                member=member,
                completed_at=now,
                points=challenge.reward_points,
                purchase=purchase,
            )
    except IntegrityError:
        return None
    if challenge.reward_points:
        completion.ledger_transaction = ledger.points_credit_locked(
            locked=locked,
            points=challenge.reward_points,
            reason=f"challenge completed: {challenge.name}"[:255],
            idempotency_key=_award_key(challenge.pk, member.pk),
            explanation=[
                {"rule": challenge.name, "detail": "challenge completed", "points": str(challenge.reward_points)}
            ],
        )
    if challenge.reward_id:
        completion.coupon, completion.note = _reward_issue(
            reward_id=challenge.reward_id, program=locked.program, member=member
        )
    if challenge.badge_id:
        MemberBadge.objects.get_or_create(
            member=member, badge_id=challenge.badge_id, defaults={"challenge_id": challenge.pk, "earned_at": now}
        )
    completion.save(update_fields=["ledger_transaction", "coupon", "note"])
    outbox_record(
        event_type="challenge.completed", member=member, payload=_completed_payload(challenge, member, completion)
    )
    return completion


def challenges_return_check(*, purchase: Purchase, ret: Return) -> list[ChallengeCompletion]:
    """Called by the return workflow under the buyer's account lock (as ``referral_return_check``): when
    the purchase that completed a challenge is now fully returned within the program's return window,
    the challenge's points are taken back (what is still available: points already spent stay spent, and
    the completion's note says how many), the completion is marked reversed and ``challenge.reversed`` is
    written, once. The completion stays (it is not awarded again) and progress is not taken back; the
    free reward's coupon and the badge stay. One statement when the purchase completed nothing."""
    completions = list(
        ChallengeCompletion.objects.filter(purchase=purchase, reversed_at__isnull=True).select_related("challenge")
    )
    if not completions:
        return []
    purchase.refresh_from_db(fields=["returned_amount", "eligible_amount"])
    if purchase.returned_amount < purchase.eligible_amount:
        return []
    program = purchase.program
    if (ret.occurred_at or clock.now()) > purchase.occurred_at + dt.timedelta(days=program.pending_days):
        return []
    member, now = purchase.member, clock.now()
    for completion in completions:
        taken = bonus_take_back(
            member,
            program,
            completion.points if completion.ledger_transaction_id else 0,
            f"{_award_key(completion.challenge_id, member.pk)}:reverse",
            f"challenge reversed: {completion.challenge.name}: the purchase that completed it was returned"[:255],
        )
        short = (completion.points if completion.ledger_transaction_id else 0) - taken
        completion.reversed_at = now
        if short:
            completion.note = f"{short} points already spent were not taken back"[:200]
        completion.save(update_fields=["reversed_at", "note"])
        outbox_record(
            event_type="challenge.reversed",
            member=member,
            payload={
                "member_number": member.member_number,
                "challenge_id": completion.challenge_id,
                "purchase_id": purchase.pk,
                "points_reversed": taken,
            },
        )
    return completions


# --- the member's actions --------------------------------------------------------------------------


def challenge_opt_in(*, member: Member, challenge_id: int) -> tuple[ChallengeProgress, bool]:
    """The member joins a running challenge that asks for it; what they do from now on counts.
    Idempotent (``created`` False the second time). Unknown, ended or not-opt-in: 404 / 409."""
    now = clock.now()
    challenge = Challenge.objects.filter(pk=challenge_id, is_active=True, starts_at__lte=now, ends_at__gt=now).first()
    if challenge is None:
        raise NotFound("No running challenge with this id", code="challenge_not_found")
    if not challenge.requires_opt_in:
        raise Conflict("This challenge counts without joining", code="challenge_opt_in_not_required")
    if not challenge_targets_member(challenge=ChallengeConfig.of(challenge), member=member, program=challenge.program):
        raise NotFound("No running challenge with this id", code="challenge_not_found")
    with transaction.atomic():
        row, created = ChallengeProgress.objects.get_or_create(
            challenge=challenge, member=member, defaults={"opted_in_at": now, "updated_at": now}
        )
        if not created and row.opted_in_at is None:
            ChallengeProgress.objects.filter(pk=row.pk, opted_in_at__isnull=True).update(opted_in_at=now)
            row.opted_in_at, created = now, True
    return row, created


# --- staff -----------------------------------------------------------------------------------------


CHALLENGE_AUDIT_FIELDS = (
    "program",
    "name",
    "kind",
    "category",
    "event_type",
    "target",
    "starts_at",
    "ends_at",
    "requires_opt_in",
    "reward_points",
    "reward",
    "badge",
    "is_active",
)


def challenge_save(*, challenge: Challenge, actor: Any, created: bool, reason: str = "") -> Challenge:
    """Staff create or change a challenge (audited: ``challenge.created`` / ``challenge.changed``)."""
    if challenge.created_at is None:
        challenge.created_at = clock.now()
    return model_save_audited(
        instance=challenge,
        actor=actor,
        created=created,
        fields=CHALLENGE_AUDIT_FIELDS,
        action="challenge",
        reason=reason,
    )


def challenge_delete(*, challenge: Challenge, actor: Any, reason: str = "") -> None:
    """Delete a challenge nobody completed (completions protect it: make it inactive instead)."""
    if ChallengeCompletion.objects.filter(challenge=challenge).exists():
        raise Conflict(
            "Members completed this challenge: make it inactive instead", code="challenge_completed_by_members"
        )
    model_delete_audited(
        instance=challenge, actor=actor, fields=CHALLENGE_AUDIT_FIELDS, action="challenge", reason=reason
    )


def badge_save(*, badge: Badge, actor: Any, created: bool, reason: str = "") -> Badge:
    if badge.created_at is None:
        badge.created_at = clock.now()
    return model_save_audited(
        instance=badge,
        actor=actor,
        created=created,
        fields=("name", "description", "icon", "image"),
        action="badge",
        reason=reason,
    )


# --- the nightly recomputation ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputeReport:
    challenge_id: int
    progress_rows: int
    completed: int


def _audience_sql(challenge: Challenge, params: dict[str, Any]) -> str:
    """SQL conditions on ``src.member_id`` for the challenge's tiers and segments (PostgreSQL)."""
    sql = ""
    tier_ids = [t.pk for t in challenge.tiers.all()]
    if tier_ids:
        params["tiers"] = tier_ids
        base = qualification.base_tier(program_tiers(program=challenge.program).rules)
        in_tiers = (
            "SELECT 1 FROM tiers_membertier mt WHERE mt.member_id = src.member_id "
            "AND mt.program_id = %(program)s AND mt.tier_id = ANY(%(tiers)s)"
        )
        if base is not None and base.id in tier_ids:
            sql += (
                f" AND (EXISTS ({in_tiers}) OR NOT EXISTS (SELECT 1 FROM tiers_membertier mt "  # noqa: S608 - constant fragments, values as parameters
                "WHERE mt.member_id = src.member_id AND mt.program_id = %(program)s))"
            )
        else:
            sql += f" AND EXISTS ({in_tiers})"
    segment_ids = [s.pk for s in challenge.segments.all()]
    if segment_ids:
        params["segments"] = segment_ids
        sql += (
            " AND EXISTS (SELECT 1 FROM segments_segmentmembership sm WHERE sm.member_id = src.member_id "
            "AND sm.segment_id = ANY(%(segments)s) AND sm.left_at IS NULL)"
        )
    return sql


def _source_sql(challenge: Challenge, params: dict[str, Any]) -> str:
    """One row per member: (member_id, value) over the challenge's window (PostgreSQL)."""
    opt_in_join = ""
    opt_in_where = ""
    if challenge.requires_opt_in:
        opt_in_join = (
            " JOIN engagement_challengeprogress cp ON cp.challenge_id = %(challenge)s "
            "AND cp.member_id = src.member_id AND cp.opted_in_at IS NOT NULL"
        )
        opt_in_where = " AND src.occurred_at >= cp.opted_in_at"
    audience = _audience_sql(challenge, params)
    window = " AND src.occurred_at >= %(starts)s AND src.occurred_at < %(ends)s"
    if challenge.kind == ChallengeKind.EVENT_COUNT:
        params["event_type"] = challenge.event_type_id
        # the events table is the workflows' (activity): read by name here, never imported
        return (
            "SELECT src.member_id, COUNT(*)::numeric AS value FROM activity_memberevent src"  # noqa: S608
            f"{opt_in_join} WHERE src.event_type_id = %(event_type)s{window}{opt_in_where}{audience} "
            "GROUP BY src.member_id"
        )
    base = f"FROM ledger_purchase src{opt_in_join} WHERE src.program_id = %(program)s{window}{opt_in_where}{audience}"
    if challenge.category:
        params["category"] = challenge.category
    in_category = (
        " AND EXISTS (SELECT 1 FROM ledger_purchaseline l WHERE l.purchase_id = src.id AND l.category = %(category)s)"
    )
    if challenge.kind == ChallengeKind.PURCHASE_COUNT:
        cond = in_category if challenge.category else ""
        return f"SELECT src.member_id, COUNT(*)::numeric AS value {base}{cond} GROUP BY src.member_id"
    if challenge.kind == ChallengeKind.SPEND:
        if challenge.category:
            return (
                "SELECT src.member_id, GREATEST(SUM(l.amount - l.discount), 0) AS value "  # noqa: S608
                f"FROM ledger_purchase src JOIN ledger_purchaseline l ON l.purchase_id = src.id "
                f"AND l.category = %(category)s{opt_in_join} WHERE src.program_id = %(program)s{window}"
                f"{opt_in_where}{audience} GROUP BY src.member_id"
            )
        return f"SELECT src.member_id, GREATEST(SUM(src.total), 0) AS value {base} GROUP BY src.member_id"
    if challenge.kind == ChallengeKind.PARTNERS_VISITED:
        return (
            f"SELECT src.member_id, COUNT(DISTINCT src.partner_id)::numeric AS value {base} "
            "AND src.partner_id IS NOT NULL GROUP BY src.member_id"
        )
    return (
        f"SELECT src.member_id, COUNT(DISTINCT (src.partner_id, src.store_code))::numeric AS value {base} "
        "AND src.partner_id IS NOT NULL AND src.store_code <> '' GROUP BY src.member_id"
    )


RECOMPUTE_WORK_MEM = "256MB"


def _recompute_postgresql(challenge: Challenge, now: dt.datetime) -> int:
    params: dict[str, Any] = {
        "challenge": challenge.pk,
        "program": challenge.program_id,
        "starts": challenge.starts_at,
        "ends": challenge.ends_at,
        "now": now,
    }
    source = _source_sql(challenge, params)
    # The rows the run raises are picked by a join with the current progress (one hash join, not an
    # index probe per member), so a night with little new writes little; the ON CONFLICT clause is
    # for a workflow that inserts a member's first row meanwhile.
    sql = (
        "INSERT INTO engagement_challengeprogress (challenge_id, member_id, value, opted_in_at, updated_at) "  # noqa: S608
        f"SELECT %(challenge)s, s.member_id, s.value, NULL, %(now)s FROM ({source}) s "
        "LEFT JOIN engagement_challengeprogress cur ON cur.challenge_id = %(challenge)s AND cur.member_id = s.member_id "
        "WHERE s.value > 0 AND (cur.id IS NULL OR cur.value < s.value) "
        "ON CONFLICT (challenge_id, member_id) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at "
        # never down: a purchase that commits while the statement runs is in the row (its workflow
        # added it) but not in the statement's snapshot; progress only grows (returns do not count)
        "WHERE engagement_challengeprogress.value < EXCLUDED.value"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET LOCAL work_mem = '{RECOMPUTE_WORK_MEM}'"
        )  # its hash aggregate spans the window's purchases
        cursor.execute(sql, params)
        return cursor.rowcount


def _recompute_orm(challenge: Challenge, now: dt.datetime) -> int:
    """The same figures through the ORM (SQLite, the embedded demo): grouped reads, one upsert."""
    from loyalty.engagement.selectors.challenges import challenge_targets_member as targets

    opted = {}
    if challenge.requires_opt_in:
        opted = dict(
            ChallengeProgress.objects.filter(challenge=challenge, opted_in_at__isnull=False).values_list(
                "member_id", "opted_in_at"
            )
        )
    window = Q(occurred_at__gte=challenge.starts_at, occurred_at__lt=challenge.ends_at)
    if challenge.kind == ChallengeKind.EVENT_COUNT:
        from django.apps import apps

        rows = apps.get_model("activity", "MemberEvent").objects.filter(window, event_type_id=challenge.event_type_id)
    else:
        rows = Purchase.objects.filter(window, program_id=challenge.program_id)
        if challenge.category and challenge.kind != ChallengeKind.SPEND:
            rows = rows.filter(pk__in=PurchaseLine.objects.filter(category=challenge.category).values("purchase_id"))
        if challenge.kind in (ChallengeKind.PARTNERS_VISITED, ChallengeKind.STORES_VISITED):
            rows = rows.filter(partner__isnull=False)
        if challenge.kind == ChallengeKind.STORES_VISITED:
            rows = rows.exclude(store_code="")
    per_member: dict[int, set | Decimal] = {}
    fields = ["member_id", "occurred_at"]
    if challenge.kind == ChallengeKind.SPEND:
        if challenge.category:
            values = Purchase.objects.filter(
                window, program_id=challenge.program_id, lines__category=challenge.category
            )
            data = values.values_list("member_id", "occurred_at", "lines__amount", "lines__discount")
            data = [(m, at, a - d) for m, at, a, d in data]
        else:
            data = rows.values_list("member_id", "occurred_at", "total")
    elif challenge.kind == ChallengeKind.PARTNERS_VISITED:
        data = [(m, at, p) for m, at, p in rows.values_list(*fields, "partner_id")]
    elif challenge.kind == ChallengeKind.STORES_VISITED:
        data = [(m, at, (p, s)) for m, at, p, s in rows.values_list(*fields, "partner_id", "store_code")]
    else:
        data = [(m, at, None) for m, at in rows.values_list(*fields)]
    for member_id, at, item in data:
        if challenge.requires_opt_in and (member_id not in opted or at < opted[member_id]):
            continue
        if challenge.kind in (ChallengeKind.PARTNERS_VISITED, ChallengeKind.STORES_VISITED):
            per_member.setdefault(member_id, set()).add(item)
        elif challenge.kind == ChallengeKind.SPEND:
            per_member[member_id] = per_member.get(member_id, ZERO) + item
        else:
            per_member[member_id] = per_member.get(member_id, ZERO) + 1
    config = ChallengeConfig.of(challenge)
    if config.tier_ids or config.segment_ids:
        from members.models import Member as MemberModel

        members = {m.pk: m for m in MemberModel.objects.filter(pk__in=list(per_member))}
        per_member = {
            k: v
            for k, v in per_member.items()
            if targets(challenge=config, member=members[k], program=challenge.program)
        }
    values = {k: Decimal(len(v)) if isinstance(v, set) else max(Decimal(v), ZERO) for k, v in per_member.items()}
    held = dict(
        ChallengeProgress.objects.filter(challenge=challenge, member_id__in=list(values)).values_list(
            "member_id", "value"
        )
    )
    values = {k: v for k, v in values.items() if k not in held or v > held[k]}  # never down, as on PostgreSQL
    ChallengeProgress.objects.bulk_create(
        [
            ChallengeProgress(challenge=challenge, member_id=k, value=v, updated_at=now)
            for k, v in values.items()
            if v > 0
        ],
        update_conflicts=True,
        unique_fields=["challenge", "member"],
        update_fields=["value", "updated_at"],
    )
    return len(values)


AWARD_BATCH = 5000


def _awards_due(challenge: Challenge) -> list[int]:
    return list(
        ChallengeProgress.objects.filter(challenge=challenge, value__gte=challenge.target)
        .exclude(member_id__in=ChallengeCompletion.objects.filter(challenge=challenge).values("member_id"))
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )


def _award_batch(challenge: Challenge, member_ids: list[int], now: dt.datetime) -> int:
    """Award the completions the nightly run found, set-based: the members' accounts locked in
    primary-key order first (as the workflows lock them before writing a completion, so the two
    never wait on each other in opposite orders), completion rows inserted ignoring those a
    workflow wrote meanwhile, points by ``points_credit_many`` under the same ledger keys."""
    with transaction.atomic():
        accounts = {
            a.member_id: a
            for a in Account.objects.select_for_update()
            .filter(program_id=challenge.program_id, kind=AccountKind.MEMBER, member_id__in=member_ids)
            .order_by("pk")
        }
        done = set(
            ChallengeCompletion.objects.filter(challenge=challenge, member_id__in=member_ids).values_list(
                "member_id", flat=True
            )
        )
        new_ids = [m for m in member_ids if m not in done and m in accounts]
        if not new_ids:
            return 0
        completions = ChallengeCompletion.objects.bulk_create(
            [
                ChallengeCompletion(challenge=challenge, member_id=m, completed_at=now, points=challenge.reward_points)
                for m in new_ids
            ]
        )
        by_member = {c.member_id: c for c in completions}
        changed = []
        if challenge.reward_points:
            result = ledger.points_credit_many(
                credits=[
                    ledger.Credit(
                        account=accounts[m],
                        points=challenge.reward_points,
                        reason=f"challenge completed: {challenge.name}"[:255],
                        at=now,
                        idempotency_key=_award_key(challenge.pk, m),
                        explanation=[
                            {
                                "rule": challenge.name,
                                "detail": "challenge completed",
                                "points": str(challenge.reward_points),
                            }
                        ],
                    )
                    for m in new_ids
                ]
            )
            for m, tx_id in zip(new_ids, result.transaction_ids, strict=True):
                by_member[m].ledger_transaction_id = tx_id
            changed.append("ledger_transaction")
        if challenge.reward_id:
            # one coupon per completion (a random code each): only the newly completed, not the base
            from members.models import Member as MemberModel

            for member in MemberModel.objects.filter(pk__in=new_ids):
                by_member[member.pk].coupon, by_member[member.pk].note = _reward_issue(
                    reward_id=challenge.reward_id, program=challenge.program, member=member
                )
            changed += ["coupon", "note"]
        if changed:
            _completions_update(completions, changed)
        if challenge.badge_id:
            MemberBadge.objects.bulk_create(
                [
                    MemberBadge(member_id=m, badge_id=challenge.badge_id, challenge=challenge, earned_at=now)
                    for m in new_ids
                ],
                ignore_conflicts=True,
            )
        numbers = dict(
            Account.objects.filter(pk__in=[accounts[m].pk for m in new_ids]).values_list(
                "member_id", "member__member_number"
            )
        )
        outbox_record_many(
            events=[
                NewEvent(
                    event_type="challenge.completed",
                    member_id=m,
                    payload={
                        "member_number": numbers.get(m, ""),
                        "challenge_id": challenge.pk,
                        "challenge": challenge.name,
                        "points": challenge.reward_points,
                        "coupon_id": by_member[m].coupon_id,
                        "badge_id": challenge.badge_id,
                    },
                    at=now,
                )
                for m in new_ids
            ]
        )
        return len(new_ids)


def _completions_update(completions: list[ChallengeCompletion], fields: list[str]) -> None:
    """Write what the awards gave back onto the completion rows: on PostgreSQL one UPDATE ... FROM
    unnest(...) (``bulk_update``'s CASE per row costs seconds per thousand rows), else ``bulk_update``."""
    if connection.vendor != "postgresql":
        ChallengeCompletion.objects.bulk_update(completions, fields)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE engagement_challengecompletion c SET ledger_transaction_id = v.tx, coupon_id = v.coupon, note = v.note "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) AS v(id, tx, coupon, note) WHERE c.id = v.id",
            [
                [c.pk for c in completions],
                [c.ledger_transaction_id for c in completions],
                [c.coupon_id for c in completions],
                [c.note for c in completions],
            ],
        )


def challenge_progress_recompute(*, challenge: Challenge, now: dt.datetime | None = None) -> RecomputeReport:
    """Recompute every member's progress on one challenge from the purchases (or events) of its
    window: one SQL statement over all members on PostgreSQL (an upsert that writes only the rows
    it raises: progress never goes down, so a purchase committed during the statement, counted by
    its workflow, is not lost), grouped ORM reads on SQLite. Then award the completions found (``_award_batch``)."""
    now = now or clock.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            rows = _recompute_postgresql(challenge, now)
        else:
            rows = _recompute_orm(challenge, now)
        Challenge.objects.filter(pk=challenge.pk).update(recomputed_at=now)
    due = _awards_due(challenge)
    completed = 0
    for start in range(0, len(due), AWARD_BATCH):
        completed += _award_batch(challenge, due[start : start + AWARD_BATCH], now)
    return RecomputeReport(challenge_id=challenge.pk, progress_rows=rows, completed=completed)


def challenges_recompute(*, now: dt.datetime | None = None) -> list[RecomputeReport]:
    """The nightly safety net: every active challenge whose window has begun and that ended less
    than a day ago (its last day's purchases are counted once more)."""
    now = now or clock.now()
    challenges = (
        Challenge.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now - dt.timedelta(days=1))
        .select_related("program", "event_type")
        .prefetch_related("tiers", "segments")
        .order_by("pk")
    )
    return [challenge_progress_recompute(challenge=c, now=now) for c in challenges]


__all__ = [
    "RecomputeReport",
    "badge_save",
    "challenge_delete",
    "challenge_complete_locked",
    "challenge_opt_in",
    "challenge_progress_recompute",
    "challenge_save",
    "challenges_on_event",
    "challenges_on_purchase",
    "challenges_recompute",
]
