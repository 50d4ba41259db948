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

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from loyalty.core import clock
from loyalty.core.parallel import job_workers, parallel_drain
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


def _temp_table(cursor) -> None:
    cursor.execute(
        f"""CREATE TEMPORARY TABLE IF NOT EXISTS {EVAL} (
            status_id bigint, member_id bigint, from_id bigint, from_rank integer, to_rank integer,
            earned_rank integer, pend_rank integer, pend_at timestamptz, closing integer, expired integer)"""
    )
    cursor.execute(f"DELETE FROM {EVAL}", [])  # noqa: S608 - constant table name


def _decide(cursor, pt: ProgramTiers, low: int, high: int, now) -> int:
    """One row per due status in the range with what becomes of it, in one INSERT ... SELECT:
    metrics of the closed period (GROUP BY per member), the tier they qualify for, the policy,
    a downgrade whose grace ended, a manual tier that ended, and the tier to show."""
    rules, policy = pt.rules, pt.policy
    stamp = _dt(now)
    in_range = "{t}.program_id = %s AND {t}.member_id > %s AND {t}.member_id <= %s"
    closing = in_range + " AND {t}.period_end <= %s"
    range_args, closing_args = [pt.program.pk, low, high], [pt.program.pk, low, high, stamp]
    kinds = "e.kind = 'earn'" + (" OR (e.kind = 'adjust' AND e.points > 0)" if policy.adjustments_count else "")
    qualified = qualified_rank_sql(
        rules, "COALESCE(ps.spend, 0)", "COALESCE(es.points, 0)", "COALESCE(ps.purchases, 0)"
    )
    grace_end = add_days_sql("x.period_end", policy.grace_days)
    # Lifetime windows never close a period: their rows are here only for downgrades and manual ends.
    cursor.execute(
        f"""INSERT INTO {EVAL} (status_id, member_id, from_id, from_rank, to_rank, earned_rank, pend_rank, pend_at,
                                closing, expired)
            SELECT z.id, z.member_id, z.tier_id, z.from_rank,
                   CASE WHEN z.manual = 1 THEN z.from_rank ELSE z.earned2 END,
                   z.earned2, z.pend2_rank, z.pend2_at, z.closing, z.expired
            FROM (
                SELECT y.*,
                       CASE WHEN y.pend_at <= %s THEN y.pend_rank ELSE y.earned1 END AS earned2,
                       CASE WHEN y.pend_at <= %s THEN NULL ELSE y.pend_rank END AS pend2_rank,
                       CASE WHEN y.pend_at <= %s THEN NULL ELSE y.pend_at END AS pend2_at
                FROM (
                    SELECT x.*,
                           CASE WHEN x.closing = 1 AND x.new_rank >= x.earned_rank THEN x.new_rank
                                ELSE x.earned_rank END AS earned1,
                           CASE WHEN x.closing = 0 THEN x.old_pend_rank
                                WHEN x.new_rank < x.earned_rank THEN x.new_rank END AS pend_rank,
                           CASE WHEN x.closing = 0 THEN x.downgrade_at
                                WHEN x.new_rank < x.earned_rank THEN {grace_end} END AS pend_at
                    FROM (
                        SELECT w.*, {policy_rank_sql(policy.downgrade_policy, rules, "w.earned_rank", "w.target_rank")}
                               AS new_rank
                        FROM (
                            SELECT s.id, s.member_id, s.tier_id, s.period_end, s.downgrade_at,
                                   {rank_of_sql(rules, "s.tier_id")} AS from_rank,
                                   {rank_of_sql(rules, "s.earned_tier_id")} AS earned_rank,
                                   {rank_of_sql(rules, "s.downgrade_to_id")} AS old_pend_rank,
                                   CASE WHEN s.period_end <= %s THEN 1 ELSE 0 END AS closing,
                                   CASE WHEN s.manual_until <= %s THEN 1 ELSE 0 END AS expired,
                                   CASE WHEN s.manual_until > %s THEN 1 ELSE 0 END AS manual,
                                   {qualified} AS target_rank
                            FROM {STATUS} s
                            LEFT JOIN (
                                SELECT d.member_id,
                                       CAST(ROUND(SUM(p.eligible_amount - p.returned_amount) * 100) AS BIGINT) AS spend,
                                       SUM(CASE WHEN p.eligible_amount > p.returned_amount THEN 1 ELSE 0 END)
                                           AS purchases
                                FROM {STATUS} d
                                JOIN {PURCHASE} p ON p.member_id = d.member_id AND p.program_id = d.program_id
                                     AND p.occurred_at >= d.period_start AND p.occurred_at < d.period_end
                                WHERE {closing.format(t="d")} AND {in_range.format(t="p")}
                                GROUP BY d.member_id
                            ) ps ON ps.member_id = s.member_id
                            LEFT JOIN (
                                SELECT d.member_id, SUM(e.points) AS points
                                FROM {STATUS} d
                                JOIN {ACCOUNT} a ON a.member_id = d.member_id AND a.program_id = d.program_id
                                     AND a.kind = 'member'
                                JOIN {ENTRY} e ON e.account_id = a.id
                                     AND e.created_at >= d.period_start AND e.created_at < d.period_end
                                WHERE {closing.format(t="d")} AND {in_range.format(t="a")} AND ({kinds})
                                GROUP BY d.member_id
                            ) es ON es.member_id = s.member_id
                            WHERE {in_range.format(t="s")}
                              AND (s.period_end <= %s OR s.downgrade_at <= %s OR s.manual_until <= %s)
                        ) w
                    ) x
                ) y
            ) z""",  # noqa: S608 - table names and integers only
        [stamp] * 6 + closing_args + range_args + closing_args + range_args + range_args + [stamp] * 3,
    )
    return cursor.rowcount


def _write(cursor, pt: ProgramTiers, low: int, high: int, now) -> dict[str, int]:
    """Apply the decisions: one UPDATE of the status rows, then history rows and outbox events
    for every change of tier (INSERT ... SELECT)."""
    rules, policy = pt.rules, pt.policy
    stamp = _dt(now)
    old_end = f"{STATUS}.period_end"
    member_table, member_join = "", ""
    if policy.window == QualificationWindow.LIFETIME:
        next_start, next_end = "NULL", "NULL"
    elif policy.window == QualificationWindow.MEMBERSHIP_YEAR:
        member_table, member_join = f", {MEMBER} m", f" AND m.id = {STATUS}.member_id"
        next_start = old_end
        next_end = add_years_sql("m.enrolled_at", f"{_year_sql(old_end)} - {_year_sql('m.enrolled_at')} + 1")
    else:  # calendar year, and rolling 12 months (the next review is 12 months after this one)
        next_start, next_end = old_end, add_years_sql(old_end, "1")
    cursor.execute(
        f"""UPDATE {STATUS} SET
                tier_id = CASE WHEN t.to_rank = t.from_rank THEN {STATUS}.tier_id
                               ELSE {tier_of_rank_sql(rules, "t.to_rank")} END,
                tier_since = CASE WHEN t.to_rank = t.from_rank THEN {STATUS}.tier_since ELSE %s END,
                earned_tier_id = {tier_of_rank_sql(rules, "t.earned_rank")},
                downgrade_to_id = CASE WHEN t.pend_at IS NULL THEN NULL ELSE {tier_of_rank_sql(rules, "t.pend_rank")} END,
                downgrade_at = t.pend_at,
                manual_until = CASE WHEN t.expired = 1 THEN NULL ELSE {STATUS}.manual_until END,
                manual_reason = CASE WHEN t.expired = 1 THEN '' ELSE {STATUS}.manual_reason END,
                period_start = CASE WHEN t.closing = 1 THEN {next_start} ELSE {STATUS}.period_start END,
                period_end = CASE WHEN t.closing = 1 THEN {next_end} ELSE {STATUS}.period_end END
            FROM {EVAL} t{member_table}
            WHERE {STATUS}.id = t.status_id{member_join}
              AND {STATUS}.program_id = %s AND {STATUS}.member_id > %s AND {STATUS}.member_id <= %s""",  # noqa: S608
        [stamp, pt.program.pk, low, high],  # the range lets the join use the (member, program) index
    )
    to_id = tier_of_rank_sql(rules, "c.to_rank")
    reason = (
        "CASE WHEN c.expired = 1 THEN 'manual_expired' WHEN c.to_rank > c.from_rank THEN 'upgrade' ELSE 'downgrade' END"
    )
    cursor.execute(
        f"""INSERT INTO {CHANGE} (status_id, member_id, program_id, from_tier_id, to_tier_id, reason, note, actor_id,
                                  changed_at)
            SELECT c.status_id, c.member_id, %s, c.from_id, {to_id}, {reason}, '', NULL, %s
            FROM {EVAL} c WHERE c.from_rank <> c.to_rank""",  # noqa: S608
        [pt.program.pk, stamp],
    )
    names = {r.rank: r.name for r in rules}
    name_of = "(CASE {rank} " + " ".join(f"WHEN {int(rank)} THEN %s" for rank in names) + " ELSE NULL END)"
    rank_or_null = "(CASE WHEN {rank} < 0 THEN NULL ELSE {rank} END)"
    payload = _json_object_sql(
        [
            ("program_id", "%s"),
            ("member_id", "c.member_id"),
            ("from_tier_id", "c.from_id"),
            ("from_tier", name_of.format(rank="c.from_rank")),
            ("from_rank", rank_or_null.format(rank="c.from_rank")),
            ("to_tier_id", to_id),
            ("to_tier", name_of.format(rank="c.to_rank")),
            ("to_rank", rank_or_null.format(rank="c.to_rank")),
            ("reason", reason),
            ("changed_at", "CAST(%s AS TEXT)"),
        ]
    )
    cursor.execute(
        f"""INSERT INTO {OUTBOX} (event_type, member_id, payload, created_at, published_at)
            SELECT CASE WHEN c.to_rank > c.from_rank THEN 'tier.upgraded' ELSE 'tier.downgraded' END,
                   c.member_id, {payload}, %s, NULL
            FROM {EVAL} c WHERE c.from_rank <> c.to_rank""",  # noqa: S608
        [pt.program.pk, *names.values(), *names.values(), now.isoformat(), stamp],
    )
    cursor.execute(
        f"""SELECT SUM(closing), SUM(CASE WHEN to_rank > from_rank THEN 1 ELSE 0 END),
                   SUM(CASE WHEN to_rank < from_rank THEN 1 ELSE 0 END), SUM(expired),
                   SUM(CASE WHEN closing = 1 AND pend_at > %s THEN 1 ELSE 0 END)
            FROM {EVAL}""",  # noqa: S608
        [stamp],
    )
    closed, upgrades, downgrades, expired, pending = (value or 0 for value in cursor.fetchone())
    return {
        "periods_closed": closed,
        "upgrades": upgrades,
        "downgrades": downgrades,
        "manual_expired": expired,
        "downgrades_pending": pending,
    }


def evaluate_range(*, pt: ProgramTiers, low: int, high: int, now: dt.datetime) -> Counter:
    """Evaluate the due members with ``low < member_id <= high`` in the program, inside the
    caller's transaction (the caller holds the row locks). Repeats while a member still has an
    ended period (the job stopped for longer than a period)."""
    totals: Counter = Counter()
    rows = MemberTier.objects.filter(program=pt.program, member_id__gt=low, member_id__lte=high)
    with connection.cursor() as cursor:
        for _ in range(MAX_PASSES):
            _temp_table(cursor)
            if not _decide(cursor, pt, low, high, now):
                break
            totals.update(_write(cursor, pt, low, high, now))
            if not rows.filter(due(now)).exists():
                break
    return totals


def _walk(pt: ProgramTiers, now: dt.datetime, batch: int, low: int, high: int | None) -> Counter:
    """Keyset walk over the due members with ``low < member_id <= high``: one transaction per
    batch, which locks its rows (in member order, like every service) and evaluates them."""
    totals: Counter = Counter()
    last = low
    while True:
        with transaction.atomic():
            due_rows = MemberTier.objects.select_for_update().filter(due(now), program=pt.program, member_id__gt=last)
            if high is not None:
                due_rows = due_rows.filter(member_id__lte=high)
            ids = list(due_rows.order_by("member_id").values_list("member_id", flat=True)[:batch])
            if not ids:
                return totals
            totals.update(evaluate_range(pt=pt, low=last, high=ids[-1], now=now))
        totals["members"] += len(ids)
        totals["batches"] += 1
        last = ids[-1]


def _slices(pt: ProgramTiers, now: dt.datetime, workers: int) -> list[tuple[int, int | None]]:
    """Contiguous member-id ranges with about the same number of due members each."""
    due_ids = MemberTier.objects.filter(due(now), program=pt.program).order_by("member_id")
    count = due_ids.count()
    if count < workers * 2:
        return [(0, None)]
    cuts = [due_ids.values_list("member_id", flat=True)[count * k // workers] for k in range(1, workers)]
    bounds = [0, *cuts]
    return [(bounds[k], bounds[k + 1] if k + 1 < len(bounds) else None) for k in range(len(bounds))]


def tiers_evaluate(
    *,
    now: dt.datetime | None = None,
    program: Program | None = None,
    batch: int = BATCH_MEMBERS,
    workers: int | None = None,
) -> dict[str, int]:
    """The nightly job: every program with tiers (or one), every member whose period closed,
    whose downgrade grace ended or whose manual tier ended. Returns counts.

    ``workers`` > 1 (default: settings.TIERS_EVALUATION_WORKERS; PostgreSQL only) walks
    that many disjoint member-id ranges at once, each on its own connection, to use more cores."""
    now = now or clock.now()
    workers = job_workers(workers if workers is not None else settings.TIERS_EVALUATION_WORKERS)
    programs = [program] if program is not None else list(Program.objects.filter(tiers__isnull=False).distinct())
    totals: Counter = Counter()
    for current in programs:
        pt = program_tiers(program=current)
        if not pt.rules:
            continue
        slices = _slices(pt, now, workers) if workers > 1 else [(0, None)]
        for counts in parallel_drain(slices, lambda piece, pt=pt: _walk(pt, now, batch, *piece), workers=len(slices)):
            totals.update(counts)
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
