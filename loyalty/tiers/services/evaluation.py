"""Nightly evaluation, set-based: period closes, downgrades after their grace period and the
end of manual tiers, for every member whose date has come.

Members are taken in batches by member id (keyset); each batch is one transaction that locks
its due status rows and runs a fixed number of SQL statements over the whole batch: metrics
per member by GROUP BY, target tiers and the downgrade policy as CASE expressions built from
the program's rules (``qualification``), then UPDATE ... FROM / INSERT ... SELECT for status
rows, history rows and outbox events. No Python loop over members. A run repeated at the same
time finds nothing due and changes nothing. Works on PostgreSQL and SQLite (>= 3.33).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.db import connection, transaction
from django.db.models import Q

from loyalty.core import clock
from loyalty.ledger.models import Account, Entry, Program, Purchase
from loyalty.partners.models import OutboxEvent
from loyalty.tiers.models import MemberTier, QualificationWindow, Tier, TierChange
from loyalty.tiers.qualification import NO_RANK, PURCHASES, SPEND, TierRule
from loyalty.tiers.selectors import ProgramTiers, program_tiers

BATCH_MEMBERS = 10_000
MAX_PASSES = 100  # periods caught up per member in one run (after a long stop of the job)

STATUS = MemberTier._meta.db_table
CHANGE = TierChange._meta.db_table
TIER = Tier._meta.db_table
PURCHASE = Purchase._meta.db_table
ENTRY = Entry._meta.db_table
ACCOUNT = Account._meta.db_table
OUTBOX = OutboxEvent._meta.db_table
MEMBER = MemberTier._meta.get_field("member").related_model._meta.db_table

EVAL = "tmp_tiers_eval"
MOVE = "tmp_tiers_move"


def due(now: dt.datetime) -> Q:
    return Q(period_end__lte=now) | Q(downgrade_at__lte=now) | Q(manual_until__lte=now)


# --- SQL pieces built from the program's rules (integers only are inlined) -------------------


def _cents(value) -> int:
    return int((value * 100).to_integral_value())


def qualified_rank_sql(rules: list[TierRule], spend: str, points: str, purchases: str) -> str:
    """Rank of the highest tier the metrics qualify for (spend in cents), -1 for none."""
    columns = {SPEND: spend, "points": points, PURCHASES: purchases}
    whens = []
    for rule in sorted(rules, key=lambda r: r.rank, reverse=True):
        tests = [
            f"{columns[metric]} >= {_cents(minimum) if metric == SPEND else int(minimum)}"
            for metric, minimum in sorted(rule.thresholds.items())
        ]
        condition = f" {'AND' if rule.combine == 'all' else 'OR'} ".join(tests) if tests else "1 = 1"
        whens.append(f"WHEN ({condition}) THEN {int(rule.rank)}")
    return f"(CASE {' '.join(whens)} ELSE {NO_RANK} END)"


def rank_of_sql(rules: list[TierRule], tier_id: str) -> str:
    whens = " ".join(f"WHEN {int(r.id)} THEN {int(r.rank)}" for r in rules)
    return f"(CASE {tier_id} {whens} ELSE {NO_RANK} END)"


def tier_of_rank_sql(rules: list[TierRule], rank: str) -> str:
    whens = " ".join(f"WHEN {int(r.rank)} THEN {int(r.id)}" for r in rules)
    return f"(CASE {rank} {whens} ELSE NULL END)"


def policy_rank_sql(policy: str, rules: list[TierRule], earned: str, target: str) -> str:
    """``qualification.apply_policy`` in SQL, on ranks."""
    if policy == "never":
        return f"(CASE WHEN {target} >= {earned} THEN {target} ELSE {earned} END)"
    if policy == "one_step":
        ranks = sorted(r.rank for r in rules)
        below = " ".join(f"WHEN {int(r)} THEN {int(ranks[i - 1]) if i else NO_RANK}" for i, r in enumerate(ranks))
        below_sql = f"(CASE {earned} {below} ELSE {NO_RANK} END)"
        return f"(CASE WHEN {target} >= {earned} THEN {target} WHEN {target} > {below_sql} THEN {target} ELSE {below_sql} END)"
    return target


# --- vendor differences: date arithmetic and JSON ---------------------------------------------


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _year_sql(expr: str) -> str:
    return f"CAST(EXTRACT(YEAR FROM {expr}) AS INTEGER)" if _pg() else f"CAST(substr({expr}, 1, 4) AS INTEGER)"


def add_years_sql(expr: str, years: str) -> str:
    """``qualification.add_years`` in SQL: same month, day and time; 29 Feb -> 28 Feb."""
    if _pg():
        return f"({expr} + make_interval(years => CAST({years} AS INTEGER)))"
    # SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text (UTC): rewrite the year.
    year = f"(CAST(substr({expr}, 1, 4) AS INTEGER) + ({years}))"
    leap = f"({year} %% 4 = 0 AND ({year} %% 100 <> 0 OR {year} %% 400 = 0))"
    return (
        f"(CASE WHEN substr({expr}, 6, 5) = '02-29' AND NOT {leap} "
        f"THEN printf('%%04d', {year}) || '-02-28' || substr({expr}, 11) "
        f"ELSE printf('%%04d', {year}) || substr({expr}, 5) END)"
    )


def add_days_sql(expr: str, days: int) -> str:
    days = int(days)
    if not days:
        return expr
    if _pg():
        return f"({expr} + make_interval(days => {days}))"
    return f"datetime({expr}, '+{days} days')"


def _json_object_sql(pairs: list[tuple[str, str]]) -> str:
    function = "jsonb_build_object" if _pg() else "json_object"
    arguments = ", ".join(f"'{key}', {value}" for key, value in pairs)
    return f"{function}({arguments})"


def _dt(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


# --- one range of members --------------------------------------------------------------------


def _temp_tables(cursor) -> None:
    cursor.execute(
        f"""CREATE TEMPORARY TABLE IF NOT EXISTS {EVAL} (
            status_id bigint PRIMARY KEY, spend bigint, points bigint, purchases bigint,
            earned_rank integer, target_rank integer, new_rank integer)"""
    )
    cursor.execute(
        f"""CREATE TEMPORARY TABLE IF NOT EXISTS {MOVE} (
            status_id bigint PRIMARY KEY, member_id bigint, from_id bigint, to_id bigint,
            from_rank integer, to_rank integer, reason varchar(16), clear_manual integer)"""
    )
    cursor.execute(f"DELETE FROM {EVAL}", [])  # noqa: S608 - constant table name
    cursor.execute(f"DELETE FROM {MOVE}", [])  # noqa: S608


def _close_periods(cursor, pt: ProgramTiers, low: int, high: int, now) -> dict[str, int]:
    """Close every period that has ended: metrics over it, the policy's tier, then the next period."""
    rules, policy = pt.rules, pt.policy
    in_range = "{t}.program_id = %s AND {t}.member_id > %s AND {t}.member_id <= %s AND {t}.period_end <= %s"
    args = [pt.program.pk, low, high, _dt(now)]
    kinds = "e.kind = 'earn'" + (" OR (e.kind = 'adjust' AND e.points > 0)" if policy.adjustments_count else "")
    cursor.execute(
        f"""INSERT INTO {EVAL} (status_id, spend, points, purchases, earned_rank)
            SELECT s.id, COALESCE(ps.spend, 0), COALESCE(es.points, 0), COALESCE(ps.purchases, 0),
                   {rank_of_sql(rules, "s.earned_tier_id")}
            FROM {STATUS} s
            LEFT JOIN (
                SELECT d.id AS status_id,
                       CAST(ROUND(SUM(p.eligible_amount - p.returned_amount) * 100) AS BIGINT) AS spend,
                       SUM(CASE WHEN p.eligible_amount > p.returned_amount THEN 1 ELSE 0 END) AS purchases
                FROM {STATUS} d
                JOIN {PURCHASE} p ON p.member_id = d.member_id AND p.program_id = d.program_id
                     AND p.occurred_at >= d.period_start AND p.occurred_at < d.period_end
                WHERE {in_range.format(t="d")}
                GROUP BY d.id
            ) ps ON ps.status_id = s.id
            LEFT JOIN (
                SELECT d.id AS status_id, SUM(e.points) AS points
                FROM {STATUS} d
                JOIN {ACCOUNT} a ON a.member_id = d.member_id AND a.program_id = d.program_id AND a.kind = 'member'
                JOIN {ENTRY} e ON e.account_id = a.id AND e.created_at >= d.period_start AND e.created_at < d.period_end
                WHERE {in_range.format(t="d")} AND ({kinds})
                GROUP BY d.id
            ) es ON es.status_id = s.id
            WHERE {in_range.format(t="s")}""",  # noqa: S608 - table names and integers only
        args * 3,
    )
    closed = cursor.rowcount
    if not closed:
        return {"periods_closed": 0, "downgrades_pending": 0}
    cursor.execute(
        f"UPDATE {EVAL} SET target_rank = {qualified_rank_sql(rules, 'spend', 'points', 'purchases')}",  # noqa: S608
        [],
    )
    cursor.execute(
        f"UPDATE {EVAL} SET new_rank = {policy_rank_sql(policy.downgrade_policy, rules, 'earned_rank', 'target_rank')}",  # noqa: S608
        [],
    )
    new_tier = tier_of_rank_sql(rules, "t.new_rank")
    old_end = f"{STATUS}.period_end"
    member_join, member_where = "", ""
    if policy.window == QualificationWindow.LIFETIME:
        next_start, next_end = "NULL", "NULL"
    elif policy.window == QualificationWindow.MEMBERSHIP_YEAR:
        member_join, member_where = f", {MEMBER} m", f" AND m.id = {STATUS}.member_id"
        next_start = old_end
        next_end = add_years_sql("m.enrolled_at", f"{_year_sql(old_end)} - {_year_sql('m.enrolled_at')} + 1")
    else:  # calendar year, and rolling 12 months (the next review is 12 months after this one)
        next_start, next_end = old_end, add_years_sql(old_end, "1")
    cursor.execute(
        f"""UPDATE {STATUS} SET
                earned_tier_id = CASE WHEN t.new_rank >= t.earned_rank THEN {new_tier} ELSE {STATUS}.earned_tier_id END,
                downgrade_to_id = CASE WHEN t.new_rank >= t.earned_rank THEN NULL ELSE {new_tier} END,
                downgrade_at = CASE WHEN t.new_rank >= t.earned_rank THEN NULL
                                    ELSE {add_days_sql(old_end, pt.policy.grace_days)} END,
                period_start = {next_start},
                period_end = {next_end}
            FROM {EVAL} t{member_join}
            WHERE {STATUS}.id = t.status_id{member_where}""",  # noqa: S608
        [],
    )
    cursor.execute(f"SELECT COUNT(*) FROM {EVAL} WHERE new_rank < earned_rank", [])  # noqa: S608
    return {"periods_closed": closed, "downgrades_pending": cursor.fetchone()[0]}


def _apply_due_downgrades(cursor, pt: ProgramTiers, low: int, high: int, now) -> None:
    cursor.execute(
        f"""UPDATE {STATUS} SET earned_tier_id = downgrade_to_id, downgrade_to_id = NULL, downgrade_at = NULL
            WHERE program_id = %s AND member_id > %s AND member_id <= %s AND downgrade_at <= %s""",  # noqa: S608
        [pt.program.pk, low, high, _dt(now)],
    )


def _move_tiers(cursor, pt: ProgramTiers, low: int, high: int, now) -> dict[str, int]:
    """Bring each member's tier in line with the earned tier; a manual tier stays until its end.
    History rows and outbox events for every change."""
    rules = pt.rules
    stamp = _dt(now)
    cursor.execute(
        f"""INSERT INTO {MOVE} (status_id, member_id, from_id, to_id, from_rank, to_rank, reason, clear_manual)
            SELECT x.id, x.member_id, x.tier_id, x.earned_tier_id, x.from_rank, x.earned_rank,
                   CASE WHEN x.expired = 1 THEN 'manual_expired'
                        WHEN x.earned_rank > x.from_rank THEN 'upgrade' ELSE 'downgrade' END,
                   CASE WHEN x.manual_until IS NULL THEN 0 ELSE 1 END
            FROM (
                SELECT s.id, s.member_id, s.tier_id, s.earned_tier_id, s.manual_until,
                       {rank_of_sql(rules, "s.tier_id")} AS from_rank,
                       {rank_of_sql(rules, "s.earned_tier_id")} AS earned_rank,
                       CASE WHEN s.manual_until IS NOT NULL AND s.manual_until <= %s THEN 1 ELSE 0 END AS expired,
                       CASE WHEN s.manual_until IS NOT NULL AND s.manual_until > %s THEN 1 ELSE 0 END AS manual
                FROM {STATUS} s
                WHERE s.program_id = %s AND s.member_id > %s AND s.member_id <= %s
            ) x
            WHERE x.expired = 1 OR (x.manual = 0 AND x.earned_rank <> x.from_rank)""",  # noqa: S608
        [stamp, stamp, pt.program.pk, low, high],
    )
    if not cursor.rowcount:
        return {}
    cursor.execute(
        f"""INSERT INTO {CHANGE} (status_id, member_id, program_id, from_tier_id, to_tier_id, reason, note, actor_id, changed_at)
            SELECT c.status_id, c.member_id, %s, c.from_id, c.to_id, c.reason, '', NULL, %s
            FROM {MOVE} c WHERE c.from_rank <> c.to_rank""",  # noqa: S608
        [pt.program.pk, stamp],
    )
    payload = _json_object_sql(
        [
            ("program_id", "%s"),
            ("member_id", "c.member_id"),
            ("from_tier_id", "c.from_id"),
            ("from_tier", "ft.name"),
            ("from_rank", "ft.rank"),
            ("to_tier_id", "c.to_id"),
            ("to_tier", "tt.name"),
            ("to_rank", "tt.rank"),
            ("reason", "c.reason"),
            ("changed_at", "CAST(%s AS TEXT)"),
        ]
    )
    cursor.execute(
        f"""INSERT INTO {OUTBOX} (event_type, member_id, payload, created_at, published_at)
            SELECT CASE WHEN c.to_rank > c.from_rank THEN 'tier.upgraded' ELSE 'tier.downgraded' END,
                   c.member_id, {payload}, %s, NULL
            FROM {MOVE} c
            LEFT JOIN {TIER} ft ON ft.id = c.from_id
            LEFT JOIN {TIER} tt ON tt.id = c.to_id
            WHERE c.from_rank <> c.to_rank""",  # noqa: S608
        [pt.program.pk, now.isoformat(), stamp],
    )
    cursor.execute(
        f"""UPDATE {STATUS} SET
                tier_id = c.to_id,
                tier_since = CASE WHEN c.from_rank <> c.to_rank THEN %s ELSE {STATUS}.tier_since END,
                manual_until = CASE WHEN c.clear_manual = 1 THEN NULL ELSE {STATUS}.manual_until END,
                manual_reason = CASE WHEN c.clear_manual = 1 THEN '' ELSE {STATUS}.manual_reason END
            FROM {MOVE} c
            WHERE {STATUS}.id = c.status_id""",  # noqa: S608
        [stamp],
    )
    cursor.execute(
        f"""SELECT SUM(CASE WHEN to_rank > from_rank THEN 1 ELSE 0 END),
                   SUM(CASE WHEN to_rank < from_rank THEN 1 ELSE 0 END),
                   SUM(CASE WHEN reason = 'manual_expired' THEN 1 ELSE 0 END)
            FROM {MOVE}""",  # noqa: S608
        [],
    )
    upgrades, downgrades, manual_ended = cursor.fetchone()
    return {"upgrades": upgrades or 0, "downgrades": downgrades or 0, "manual_expired": manual_ended or 0}


def evaluate_range(*, pt: ProgramTiers, low: int, high: int, now: dt.datetime) -> Counter:
    """Evaluate members with ``low < member_id <= high`` in the program, inside the caller's
    transaction (the caller holds the row locks). Repeats while a member still has an
    ended period (the job stopped for longer than a period)."""
    totals: Counter = Counter()
    rows = MemberTier.objects.filter(program=pt.program, member_id__gt=low, member_id__lte=high)
    with connection.cursor() as cursor:
        for _ in range(MAX_PASSES):
            _temp_tables(cursor)
            totals.update(_close_periods(cursor, pt, low, high, now))
            _apply_due_downgrades(cursor, pt, low, high, now)
            totals.update(_move_tiers(cursor, pt, low, high, now))
            if not rows.filter(due(now)).exists():
                break
    return totals


def tiers_evaluate(
    *, now: dt.datetime | None = None, program: Program | None = None, batch: int = BATCH_MEMBERS
) -> dict[str, int]:
    """The nightly job: every program with tiers (or one), every member whose period closed,
    whose downgrade grace ended or whose manual tier ended. Returns counts."""
    now = now or clock.now()
    programs = [program] if program is not None else list(Program.objects.filter(tiers__isnull=False).distinct())
    totals: Counter = Counter()
    for current in programs:
        pt = program_tiers(program=current)
        if not pt.rules:
            continue
        last = 0
        while True:
            with transaction.atomic():
                ids = list(
                    MemberTier.objects.select_for_update()
                    .filter(due(now), program=current, member_id__gt=last)
                    .order_by("member_id")
                    .values_list("member_id", flat=True)[:batch]
                )
                if not ids:
                    break
                totals.update(evaluate_range(pt=pt, low=last, high=ids[-1], now=now))
            totals["members"] += len(ids)
            totals["batches"] += 1
            last = ids[-1]
    for key in (
        "members",
        "batches",
        "periods_closed",
        "downgrades_pending",
        "upgrades",
        "downgrades",
        "manual_expired",
    ):
        totals.setdefault(key, 0)
    return dict(totals)
