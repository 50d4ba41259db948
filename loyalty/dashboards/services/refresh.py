"""The nightly refresh of the dashboards' summary tables: one DELETE and one INSERT ... SELECT per
table over the days being rewritten, each table in its own transaction, set-based on PostgreSQL and
SQLite alike (the SQL differs only in how a timestamp becomes a day or a month).

Days are UTC dates (``TIME_ZONE``). A nightly run rewrites the last ``DASHBOARDS_REFRESH_DAYS``
days (purchases may arrive up to ``PURCHASE_MAX_AGE_DAYS`` late); ``full=True`` rewrites all.
Two runs at once take turns on an advisory lock (PostgreSQL; SQLite serializes writers itself),
so the second deletes what the first wrote and no row is counted twice.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from loyalty.core import clock
from loyalty.dashboards.models import (
    ActiveSnapshot,
    DailyFact,
    DailyMessages,
    MonthlyActivity,
    RefreshRun,
    SegmentMix,
    SegmentSpendDaily,
    TierFlowDaily,
    TierSpendDaily,
)

LOCK_KEY = 702_010  # pg_advisory_xact_lock key of the refresh
SHORT_WINDOW_DAYS = 8  # the ledger part over fewer days looks its entries up by index
EPOCH = dt.date(1970, 1, 1)
EXCLUDED_STATUSES = ("closed", "erased")


@dataclass(frozen=True)
class Window:
    since: dt.date
    until: dt.date  # inclusive

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.since, dt.time(), tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _pg() -> bool:
    return connection.vendor == "postgresql"


def day_of(column: str) -> str:
    return f"(({column}) AT TIME ZONE 'UTC')::date" if _pg() else f"date({column})"


def month_of(column: str) -> str:
    if _pg():
        return f"date_trunc('month', ({column}) AT TIME ZONE 'UTC')::date"
    return f"date({column}, 'start of month')"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_ends(since: dt.date, until: dt.date) -> list[dt.date]:
    """The last day of every month in [since, until], and ``until`` itself."""
    days = []
    first = month_start(since)
    while first <= until:
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        last = nxt - dt.timedelta(days=1)
        if last <= until:
            days.append(last)
        first = nxt
    if until not in days:
        days.append(until)
    return days


def _lock(cursor) -> None:
    if _pg():
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _table(model) -> str:
    return model._meta.db_table


def _daily_activity(cursor, w: Window) -> None:
    """DailyFact's activity part: purchases, returns and events by the day they happened."""
    day_p, day_r, day_e = day_of("p.occurred_at"), day_of("r.occurred_at"), day_of("e.occurred_at")
    cursor.execute(
        f"DELETE FROM {_table(DailyFact)} WHERE part = %s AND day >= %s AND day <= %s",  # noqa: S608 - names from code
        [DailyFact.ACTIVITY, w.since, w.until],
    )
    cursor.execute(
        f"""
        INSERT INTO {_table(DailyFact)} (day, part, program_id, partner_id, purchases, revenue, returns_amount, events,
            new_members, points_earned, points_redeemed, points_refunded, points_expired, points_reversed,
            points_adjusted, points_net, points_funded, reward_redemptions, reward_cost)
        SELECT day, %(part)s, program_id, partner_id, SUM(purchases), SUM(revenue), SUM(returns_amount), SUM(events),
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        FROM (
            SELECT {day_p} AS day, p.program_id, p.partner_id, COUNT(*) AS purchases,
                SUM(p.eligible_amount) AS revenue, 0 AS returns_amount, 0 AS events
            FROM ledger_purchase p WHERE p.occurred_at >= %(start)s AND p.occurred_at < %(end)s
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT {day_r}, p.program_id, r.partner_id, 0, 0, SUM(r.amount), 0
            FROM ledger_return r JOIN ledger_purchase p ON p.id = r.purchase_id
            WHERE r.occurred_at >= %(start)s AND r.occurred_at < %(end)s
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT {day_e}, a.program_id, e.partner_id, 0, 0, 0, COUNT(*)
            FROM activity_memberevent e JOIN ledger_account a ON a.member_id = e.member_id AND a.kind = 'member'
            WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
            GROUP BY 1, 2, 3
        ) AS facts
        GROUP BY day, program_id, partner_id
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        {"start": w.start, "end": w.end, "part": DailyFact.ACTIVITY},
    )


def _daily_ledger(cursor, w: Window) -> None:
    """DailyFact's ledger part: new accounts, points by entry kind and reward redemptions, by the day
    they were written (ledger rows are stamped when written, never dated back)."""
    day_a, day_t, day_rr = day_of("a.opened_at"), day_of("t.created_at"), day_of("rr.created_at")
    cursor.execute(
        f"DELETE FROM {_table(DailyFact)} WHERE part = %s AND day >= %s AND day <= %s",  # noqa: S608 - names from code
        [DailyFact.LEDGER, w.since, w.until],
    )
    if _pg() and (w.until - w.since).days < SHORT_WINDOW_DAYS:
        # A few days' transactions: their entries are found by index. The planner's estimate prefers a hash
        # join that reads every entry ever written (40M rows at 1M members), for the nightly's 3 days.
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
    cursor.execute(
        f"""
        INSERT INTO {_table(DailyFact)} (day, part, program_id, partner_id, purchases, revenue, returns_amount, events,
            new_members, points_earned, points_redeemed, points_refunded, points_expired, points_reversed,
            points_adjusted, points_net, points_funded, reward_redemptions, reward_cost)
        SELECT day, %(part)s, program_id, partner_id, 0, 0, 0, 0,
            SUM(new_members), SUM(earned), SUM(redeemed), SUM(refunded), SUM(expired), SUM(reversed), SUM(adjusted),
            SUM(net), SUM(funded), SUM(rewards), SUM(reward_cost)
        FROM (
            SELECT {day_a} AS day, a.program_id, pm.partner_id, 1 AS new_members, 0 AS earned, 0 AS redeemed,
                0 AS refunded, 0 AS expired, 0 AS reversed, 0 AS adjusted, 0 AS net, 0 AS funded, 0 AS rewards,
                0 AS reward_cost
            FROM ledger_account a
            LEFT JOIN partners_partnermember pm ON pm.member_id = a.member_id AND pm.via = 'enrolled'
            WHERE a.kind = 'member' AND a.opened_at >= %(start)s AND a.opened_at < %(end)s
            UNION ALL
            SELECT {day_t}, a.program_id, CASE WHEN a.kind = 'issued' THEN a.partner_id ELSE t.partner_id END, 0,
                SUM(CASE WHEN a.kind = 'member' AND en.kind = 'earn' THEN en.points ELSE 0 END),
                -SUM(CASE WHEN a.kind = 'member' AND en.kind = 'redeem' THEN en.points ELSE 0 END),
                SUM(CASE WHEN a.kind = 'member' AND en.kind = 'refund' THEN en.points ELSE 0 END),
                -SUM(CASE WHEN a.kind = 'member' AND en.kind = 'expire' THEN en.points ELSE 0 END),
                -SUM(CASE WHEN a.kind = 'member' AND en.kind = 'reverse' THEN en.points ELSE 0 END),
                SUM(CASE WHEN a.kind = 'member' AND en.kind = 'adjust' THEN en.points ELSE 0 END),
                SUM(CASE WHEN a.kind = 'member' THEN en.points ELSE 0 END),
                -SUM(CASE WHEN a.kind = 'issued' THEN en.points ELSE 0 END), 0, 0
            FROM ledger_ledgertransaction t
            JOIN ledger_entry en ON en.transaction_id = t.id
            JOIN ledger_account a ON a.id = en.account_id AND a.kind IN ('member', 'issued')
            WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
            GROUP BY 1, 2, 3
            UNION ALL
            SELECT {day_rr}, rw.program_id, rr.partner_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, rw.cost_to_business
            FROM offers_rewardredemption rr JOIN offers_reward rw ON rw.id = rr.reward_id
            WHERE rr.status = 'completed' AND rr.created_at >= %(start)s AND rr.created_at < %(end)s
        ) AS facts
        GROUP BY day, program_id, partner_id
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        {"start": w.start, "end": w.end, "part": DailyFact.LEDGER},
    )


def _daily_facts_before_parts(cursor) -> bool:
    """Rows written before DailyFact had parts hold both: delete them, and say the whole history must
    be rewritten (once, by the first refresh after the upgrade)."""
    cursor.execute(f"DELETE FROM {_table(DailyFact)} WHERE part = ''")  # noqa: S608 - names from code
    return cursor.rowcount > 0


def _daily_messages(cursor, w: Window) -> None:
    cursor.execute(f"DELETE FROM {_table(DailyMessages)} WHERE day >= %s AND day <= %s", [w.since, w.until])  # noqa: S608 - names from code
    cursor.execute(
        f"""
        INSERT INTO {_table(DailyMessages)} (day, program_id, channel, sent)
        SELECT {day_of("m.sent_at")}, m.program_id, m.channel, COUNT(*)
        FROM messaging_message m
        WHERE m.status = 'sent' AND m.sent_at >= %s AND m.sent_at < %s
        GROUP BY 1, 2, 3
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        [w.start, w.end],
    )


def _monthly_activity(cursor, w: Window) -> None:
    since = month_start(w.since)
    start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    month_p, month_e, cohort = month_of("p.occurred_at"), month_of("e.occurred_at"), month_of("mb.enrolled_at")
    cursor.execute(f"DELETE FROM {_table(MonthlyActivity)} WHERE month >= %s AND month <= %s", [since, w.until])  # noqa: S608 - names from code
    cursor.execute(
        f"""
        INSERT INTO {_table(MonthlyActivity)} (month, program_id, partner_key, cohort, active_members, purchasers,
            repeat_purchasers)
        WITH act AS (
            SELECT p.member_id, p.program_id, {month_p} AS month, COALESCE(p.partner_id, -1) AS partner_key,
                1 AS purchase
            FROM ledger_purchase p WHERE p.occurred_at >= %(start)s AND p.occurred_at < %(end)s
            UNION ALL
            SELECT e.member_id, a.program_id, {month_e}, COALESCE(e.partner_id, -1), 0
            FROM activity_memberevent e JOIN ledger_account a ON a.member_id = e.member_id AND a.kind = 'member'
            WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
        ),
        per_member AS (
            SELECT member_id, program_id, month, partner_key, SUM(purchase) AS purchases
            FROM act WHERE partner_key > 0 GROUP BY member_id, program_id, month, partner_key
            UNION ALL
            SELECT member_id, program_id, month, 0, SUM(purchase) FROM act GROUP BY member_id, program_id, month
        )
        SELECT pm.month, pm.program_id, pm.partner_key, {cohort}, COUNT(*),
            SUM(CASE WHEN pm.purchases >= 1 THEN 1 ELSE 0 END), SUM(CASE WHEN pm.purchases >= 2 THEN 1 ELSE 0 END)
        FROM per_member pm JOIN members_member mb ON mb.id = pm.member_id
        GROUP BY pm.month, pm.program_id, pm.partner_key, {cohort}
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        {"start": start, "end": w.end},
    )


def _active_snapshots(cursor, w: Window, days: list[dt.date]) -> None:
    """One statement per snapshot day (month ends and the last day): enrolled and 90-day active
    members, for every partner (0) and per partner (members linked to it, activity at it)."""
    first = min(days)
    cursor.execute(f"DELETE FROM {_table(ActiveSnapshot)} WHERE day >= %s AND day <= %s", [first, w.until])  # noqa: S608 - names from code
    for day in days:
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        start = end - dt.timedelta(days=90)
        cursor.execute(
            f"""
            INSERT INTO {_table(ActiveSnapshot)} (day, program_id, partner_key, enrolled, active_90d)
            WITH enrolled AS (
                SELECT a.program_id, a.member_id FROM ledger_account a JOIN members_member mb ON mb.id = a.member_id
                WHERE a.kind = 'member' AND a.opened_at < %(end)s AND mb.status NOT IN ('closed', 'erased')
            ),
            act AS (
                SELECT p.program_id, p.member_id, p.partner_id FROM ledger_purchase p
                WHERE p.occurred_at >= %(start)s AND p.occurred_at < %(end)s
                UNION ALL
                SELECT a.program_id, e.member_id, e.partner_id FROM activity_memberevent e
                JOIN ledger_account a ON a.member_id = e.member_id AND a.kind = 'member'
                WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
            ),
            figures AS (
                SELECT program_id, 0 AS partner_key, COUNT(*) AS enrolled, 0 AS active FROM enrolled
                GROUP BY program_id
                UNION ALL
                SELECT en.program_id, pl.partner_id, COUNT(DISTINCT en.member_id), 0 FROM enrolled en
                JOIN partners_partnermember pl ON pl.member_id = en.member_id GROUP BY en.program_id, pl.partner_id
                UNION ALL
                SELECT program_id, 0, 0, COUNT(DISTINCT member_id) FROM act GROUP BY program_id
                UNION ALL
                SELECT program_id, partner_id, 0, COUNT(DISTINCT member_id) FROM act
                WHERE partner_id IS NOT NULL GROUP BY program_id, partner_id
            )
            SELECT %(day)s, program_id, partner_key, SUM(enrolled), SUM(active) FROM figures
            GROUP BY program_id, partner_key
            """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
            {"start": start, "end": end, "day": day},
        )


def _tier_flows(cursor, w: Window) -> None:
    cursor.execute(f"DELETE FROM {_table(TierFlowDaily)} WHERE day >= %s AND day <= %s", [w.since, w.until])  # noqa: S608 - names from code
    cursor.execute(
        f"""
        INSERT INTO {_table(TierFlowDaily)} (day, program_id, from_tier_id, to_tier_id, reason, members)
        SELECT {day_of("c.changed_at")}, c.program_id, c.from_tier_id, c.to_tier_id, c.reason, COUNT(*)
        FROM tiers_tierchange c WHERE c.changed_at >= %s AND c.changed_at < %s
        GROUP BY 1, 2, 3, 4, 5
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        [w.start, w.end],
    )


def _tier_spend(cursor, w: Window) -> None:
    """Spend per day by the members' tier now (see ``TierSpendDaily``)."""
    cursor.execute(f"DELETE FROM {_table(TierSpendDaily)} WHERE day >= %s AND day <= %s", [w.since, w.until])  # noqa: S608 - names from code
    cursor.execute(
        f"""
        INSERT INTO {_table(TierSpendDaily)} (day, program_id, partner_id, tier_id, purchases, spend)
        SELECT {day_of("p.occurred_at")}, p.program_id, p.partner_id, mt.tier_id, COUNT(*),
            SUM(p.eligible_amount - p.returned_amount)
        FROM ledger_purchase p
        LEFT JOIN tiers_membertier mt ON mt.member_id = p.member_id AND mt.program_id = p.program_id
        WHERE p.occurred_at >= %s AND p.occurred_at < %s
        GROUP BY 1, 2, 3, 4
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        [w.start, w.end],
    )


def _segment_spend(cursor, w: Window) -> None:
    """Spend per day of the members now in each segment (see ``SegmentSpendDaily``): the window's
    purchases joined to the open memberships."""
    cursor.execute(f"DELETE FROM {_table(SegmentSpendDaily)} WHERE day >= %s AND day <= %s", [w.since, w.until])  # noqa: S608 - names from code
    cursor.execute(
        f"""
        INSERT INTO {_table(SegmentSpendDaily)} (day, program_id, partner_id, segment_id, purchases, spend)
        SELECT {day_of("p.occurred_at")}, p.program_id, p.partner_id, sm.segment_id, COUNT(*),
            SUM(p.eligible_amount - p.returned_amount)
        FROM ledger_purchase p
        JOIN segments_segmentmembership sm ON sm.member_id = p.member_id AND sm.left_at IS NULL
        WHERE p.occurred_at >= %s AND p.occurred_at < %s
        GROUP BY 1, 2, 3, 4
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        [w.start, w.end],
    )


def _segment_mix(cursor, w: Window) -> None:
    """Today's make-up of every segment (see ``SegmentMix``): one pass over the open memberships."""
    cursor.execute(f"DELETE FROM {_table(SegmentMix)}")  # noqa: S608 - names from code
    cursor.execute(
        f"""
        INSERT INTO {_table(SegmentMix)} (day, segment_id, program_id, tier_id, rfm_segment, members, clv_members,
            clv_total)
        SELECT %s, sm.segment_id, a.program_id, mt.tier_id, COALESCE(ms.rfm_segment, ''), COUNT(*),
            COUNT(ms.predicted_clv), COALESCE(SUM(ms.predicted_clv), 0)
        FROM segments_segmentmembership sm
        LEFT JOIN ledger_account a ON a.member_id = sm.member_id AND a.kind = 'member'
        LEFT JOIN tiers_membertier mt ON mt.member_id = sm.member_id AND mt.program_id = a.program_id
        LEFT JOIN segments_memberscore ms ON ms.member_id = sm.member_id
        WHERE sm.left_at IS NULL
        GROUP BY 2, 3, 4, 5
        """,  # noqa: S608 - table names and SQL fragments from code, values as parameters
        [w.until],
    )


def _earliest_day() -> dt.date:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT MIN(d) FROM (
                SELECT MIN(occurred_at) AS d FROM ledger_purchase
                UNION ALL SELECT MIN(created_at) FROM ledger_entry
                UNION ALL SELECT MIN(opened_at) FROM ledger_account
                UNION ALL SELECT MIN(changed_at) FROM tiers_tierchange
                UNION ALL SELECT MIN(occurred_at) FROM activity_memberevent
                UNION ALL SELECT MIN(sent_at) FROM messaging_message
            ) AS firsts"""
        )
        value = cursor.fetchone()[0]
    if value is None:
        return clock.today()
    if isinstance(value, str):  # SQLite
        value = dt.datetime.fromisoformat(value)
    return value.date() if isinstance(value, dt.datetime) else value


def dashboards_refresh(*, full: bool = False, days: int | None = None, until: dt.date | None = None) -> RefreshRun:
    """Rewrite the summary tables for the last ``days`` days up to ``until`` (today), or for
    every day with data when ``full``. Each table: one DELETE and one INSERT ... SELECT in one
    transaction (the active-member snapshots: one INSERT per month end). Without ``days`` (the
    nightly run) the ledger part of the daily facts covers only the last
    ``DASHBOARDS_LEDGER_REFRESH_DAYS``: ledger rows are stamped when written."""
    until = until or clock.today()
    if full:
        since = min(_earliest_day(), until)
    else:
        since = until - dt.timedelta(days=(days or settings.DASHBOARDS_REFRESH_DAYS) - 1)
    window = Window(since=since, until=until)
    ledger_window = window  # a full run, or days asked for: both parts over the same days
    if not full and days is None:
        ledger_days = min(settings.DASHBOARDS_LEDGER_REFRESH_DAYS, (until - since).days + 1)
        ledger_window = Window(since=until - dt.timedelta(days=ledger_days - 1), until=until)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        if _daily_facts_before_parts(cursor) and not full:
            everything = Window(since=min(_earliest_day(), until), until=until)
            _daily_activity(cursor, everything)
            _daily_ledger(cursor, everything)
    # every month end of a full run; nightly the last month end and today (older month ends are final)
    snapshot_days = month_ends(since if full else max(since, until - dt.timedelta(days=31)), until)
    run = RefreshRun.objects.create(started_at=clock.now(), since=since, until=until, full=full)
    timings: dict[str, float] = {}
    steps = (
        ("daily_activity", lambda c: _daily_activity(c, window)),
        ("daily_ledger", lambda c: _daily_ledger(c, ledger_window)),
        ("daily_messages", lambda c: _daily_messages(c, window)),
        ("monthly_activity", lambda c: _monthly_activity(c, window)),
        ("active_snapshots", lambda c: _active_snapshots(c, window, snapshot_days)),
        ("tier_flows", lambda c: _tier_flows(c, window)),
        ("tier_spend", lambda c: _tier_spend(c, window)),
        ("segment_spend", lambda c: _segment_spend(c, window)),
        ("segment_mix", lambda c: _segment_mix(c, window)),
    )
    for name, step in steps:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            step(cursor)
        timings[name] = round(time.perf_counter() - started, 3)
    run.timings = timings
    run.finished_at = clock.now()
    run.save(update_fields=["timings", "finished_at"])
    return run
