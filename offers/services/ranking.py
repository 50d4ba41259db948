"""Batch ranking: the top N offers and rewards of every member, set-based.

``member_offer_ranks_compute`` scores the whole base with the scoring of ``offers_for_member``
(``offers.ranking.score`` over the same ``Items``) and replaces the program's ``MemberOfferRank``
rows. No query per member:

- what eligibility needs is read in a few grouped queries (tier statuses, segment memberships of
  the segments offers or rewards name, activations, uses of offers with a per-member limit);
  members with the same facts share one *profile*, and ``offer_eligibility`` /
  ``reward_eligibility`` (the one eligibility) are asked once per profile, not per member;
- purchase history (spend in the window per category and SKU the items name, total, typical
  basket), balances and recent impressions or uses are grouped reads, only for members with
  personalization consent (PostgreSQL streams them with COPY);
- scores are numpy matrices for ``chunk`` members at a time; the top N per member are written
  with COPY on PostgreSQL (``bulk_create`` elsewhere), in one transaction with the removal of the
  previous run's rows.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import F, Q

from loyalty.core import clock
from loyalty.ledger.models import Account, AccountKind, Purchase, PurchaseLine
from loyalty.ledger.selectors import program_default, purchase_counts
from loyalty.tiers import qualification
from loyalty.tiers.models import MemberTier
from loyalty.tiers.selectors import program_tiers
from members.models import Consent, ConsentPurpose, Member, MemberStatus
from offers import ranking
from offers.models import (
    MemberOfferRank,
    Offer,
    OfferActivation,
    OfferImpression,
    OfferRedemption,
    RedemptionState,
    RewardRedemption,
)
from offers.selectors.eligibility import (
    MemberFacts,
    early_access_reward_ids,
    offer_eligibility,
    offers_live,
    reward_eligibility,
)
from offers.selectors.ranking import history_since, money_value, ranking_items, rewards_active
from segments.models import SegmentMembership

if TYPE_CHECKING:
    from loyalty.ledger.models import Program

TOP_DEFAULT = 5
CHUNK = 2_000  # members scored at once: (CHUNK x items) matrices stay in the CPU's caches
COPY_BATCH = 100_000


@dataclass
class RankRun:
    members: int = 0  # members ranked (active)
    personalized: int = 0
    profiles: int = 0  # distinct eligibility profiles asked
    items: int = 0
    rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _frame(sql: str, params: list, columns: list[str]) -> pd.DataFrame:
    """Rows of ``sql`` as a DataFrame (PostgreSQL: COPY ... TO STDOUT as CSV)."""
    if _pg():
        buffer = io.BytesIO()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy,
        ):
            for data in copy:
                buffer.write(data)
        buffer.seek(0)
        if not buffer.getbuffer().nbytes:
            return pd.DataFrame({c: [] for c in columns})
        return pd.read_csv(buffer, names=columns, header=None, keep_default_na=False, na_values=[""])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)


def _query_sql(queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def _members(program: Program) -> pd.DataFrame:
    """Active members with their tier (as ``member_tier``: the status row, else the base tier)."""
    pt = program_tiers(program=program)
    base = qualification.base_tier(pt.rules) if pt.tier_rows else None
    members = _frame(
        *_query_sql(Member.objects.filter(status=MemberStatus.ACTIVE).order_by("pk").values_list("pk")),
        ["member_id"],
    )
    members["tier_id"] = -1
    if pt.tier_rows:
        statuses = _frame(
            *_query_sql(MemberTier.objects.filter(program=program).values_list("member_id", "tier_id")),
            ["member_id", "tier_id"],
        )
        tiers = pd.Series(statuses["tier_id"].fillna(-1).astype("int64").to_numpy(), index=statuses["member_id"])
        has = members["member_id"].isin(tiers.index)
        members["tier_id"] = np.where(
            has, members["member_id"].map(tiers).fillna(-1).astype("int64"), base.id if base else -1
        )
    return members


def _grouped(pairs: pd.DataFrame, key: str, value: str) -> dict[int, frozenset[int]]:
    if pairs.empty:
        return {}
    return {int(k): frozenset(int(v) for v in vs) for k, vs in pairs.groupby(key)[value]}


def _profiles(program: Program, members: pd.DataFrame, offers, rewards, now: dt.datetime):
    """Per member, the index of its eligibility profile, and per profile the eligible mask over
    the items (offers then rewards): the one eligibility asked once per distinct profile."""
    pt = program_tiers(program=program)
    referenced = frozenset().union(
        *(o.segments_include | o.segments_exclude for o in offers),
        *({s.pk for s in r.segments_include.all()} | {s.pk for s in r.segments_exclude.all()} for r in rewards),
    )
    segments: dict[int, frozenset[int]] = {}
    if referenced:
        pairs = _frame(
            *_query_sql(
                SegmentMembership.objects.filter(segment_id__in=referenced, left_at__isnull=True).values_list(
                    "member_id", "segment_id"
                )
            ),
            ["member_id", "segment_id"],
        )
        segments = _grouped(pairs, "member_id", "segment_id")
    activated: dict[int, frozenset[int]] = {}
    clip = [o.pk for o in offers if o.requires_activation]
    if clip:
        pairs = _frame(
            *_query_sql(OfferActivation.objects.filter(offer_id__in=clip).values_list("member_id", "offer_id")),
            ["member_id", "offer_id"],
        )
        activated = _grouped(pairs, "member_id", "offer_id")
    used: dict[int, tuple[tuple[int, int], ...]] = {}
    per_member = [o.pk for o in offers if o.max_per_member is not None]
    if per_member:
        counts = _frame(
            *_query_sql(
                OfferRedemption.objects.filter(offer_id__in=per_member, status=RedemptionState.COMPLETED)
                .values_list("member_id", "offer_id")
                .order_by()
            ),
            ["member_id", "offer_id"],
        )
        if not counts.empty:
            grouped = counts.groupby(["member_id", "offer_id"]).size()
            for (member_id, offer_id), n in grouped.items():
                used[int(member_id)] = (*used.get(int(member_id), ()), (int(offer_id), int(n)))
    limited = [o.pk for o in offers if o.limited]
    exhausted: frozenset[int] = frozenset()
    if limited:
        exhausted = frozenset(
            Offer.objects.filter(pk__in=limited)
            .filter(
                Q(max_redemptions__isnull=False, redemptions_count__gte=F("max_redemptions"))
                | Q(points_budget__isnull=False, points_issued__gte=F("points_budget"))
            )
            .values_list("pk", flat=True)
        )

    tier_ids = members["tier_id"].to_numpy()
    member_ids = members["member_id"].to_numpy()
    # members without personal extras share a profile per tier; the few with extras get theirs
    keys: dict[tuple, int] = {}
    facts_of: list[MemberFacts] = []

    def profile(tier_id: int, member_id: int | None) -> int:
        seg = segments.get(member_id, frozenset()) if member_id is not None else frozenset()
        act = activated.get(member_id, frozenset()) if member_id is not None else frozenset()
        use = tuple(sorted(used.get(member_id, ()))) if member_id is not None else ()
        key = (tier_id, seg, act, use)
        if key not in keys:
            tier = pt.tier(tier_id) if tier_id >= 0 else None
            keys[key] = len(facts_of)
            facts_of.append(
                MemberFacts(
                    member_id=0,
                    active=True,
                    tier_id=tier.pk if tier else None,
                    tier_early_access=bool(tier and tier.early_access),
                    tier_exclusive_rewards=bool(tier and tier.exclusive_rewards),
                    segment_ids=seg,
                    activated=act,
                    used=use,
                    exhausted=exhausted,
                    birth_month=None,
                    personalization=False,
                )
            )
        return keys[key]

    unique_tiers, inverse = np.unique(tier_ids, return_inverse=True)
    per_tier = np.array([profile(int(t), None) for t in unique_tiers], dtype=np.int64)
    index = per_tier[inverse].astype(np.int64) if len(members) else np.zeros(0, dtype=np.int64)
    special = set(segments) | set(activated) | set(used)
    if special:
        position = pd.Series(np.arange(len(members)), index=member_ids)
        for member_id in special & set(position.index):
            at = int(position[member_id])
            index[at] = profile(int(tier_ids[at]), member_id)
    masks = np.zeros((len(facts_of), len(offers) + len(rewards)), dtype=bool)
    needs = np.zeros_like(masks)
    for p, facts in enumerate(facts_of):
        early = early_access_reward_ids(offers=offers, facts=facts, now=now)
        for k, offer in enumerate(offers):
            answer = offer_eligibility(offer=offer, facts=facts, now=now)
            masks[p, k], needs[p, k] = answer.ok, answer.needs_activation
        for j, reward in enumerate(rewards):
            masks[p, len(offers) + j] = reward_eligibility(reward=reward, facts=facts, now=now, early_access=early).ok
    return index, masks


def _personal(program: Program, members: pd.DataFrame, items: ranking.Items, now: dt.datetime) -> dict:
    """History, balance and novelty of the consenting members, as arrays aligned with ``members``."""
    m = len(members)
    position = pd.Series(np.arange(m), index=members["member_id"].to_numpy())
    consenting = _frame(
        *_query_sql(
            Consent.objects.filter(purpose=ConsentPurpose.PERSONALIZATION, channel="", granted=True).values_list(
                "member_id"
            )
        ),
        ["member_id"],
    )
    at = position.reindex(consenting["member_id"].to_numpy()).dropna().astype("int64").to_numpy()
    personal = np.zeros(m, dtype=bool)
    personal[at] = True
    out = {
        "personal": personal,
        "basket": np.full(m, ranking.DEFAULT_BASKET),
        "balance": np.zeros(m),
        "category_share": np.zeros((m, len(items.categories))),
        "sku_share": np.zeros((m, len(items.skus))),
        "fresh": None,
        "recent": [],
    }
    if not personal.any():
        return out
    since = history_since(now)
    consent_sql, consent_params = _query_sql(
        Consent.objects.filter(purpose=ConsentPurpose.PERSONALIZATION, channel="", granted=True).values("member_id")
    )
    line, purchase = PurchaseLine._meta.db_table, Purchase._meta.db_table
    float_type = "DOUBLE PRECISION" if _pg() else "REAL"
    # whole cents as floats: sums of integers are exact in any order, as in ``member_history``
    cents = f"CAST(ROUND((l.amount - l.discount) * 100) AS {float_type})"
    joined = (
        f"FROM {line} l JOIN {purchase} p ON p.id = l.purchase_id "
        f"WHERE p.program_id = %s AND p.occurred_at >= %s AND p.member_id IN ({consent_sql})"
    )
    spend = _frame(
        f"SELECT p.member_id, l.category, SUM({cents}) {joined} GROUP BY p.member_id, l.category",  # noqa: S608
        [program.pk, since, *consent_params],
        ["member_id", "name", "cents"],
    )
    sku_spend = pd.DataFrame({"member_id": [], "name": [], "cents": []})
    if items.skus and not spend.empty:
        marks = ", ".join(["%s"] * len(items.skus))
        sku_spend = _frame(
            f"SELECT p.member_id, l.sku, SUM({cents}) {joined} AND l.sku IN ({marks}) GROUP BY p.member_id, l.sku",  # noqa: S608
            [program.pk, since, *consent_params, *items.skus],
            ["member_id", "name", "cents"],
        )
    if not spend.empty:
        spend["name"] = spend["name"].fillna("").astype(str)
        totals = spend.groupby("member_id", sort=False)["cents"].sum()
        for frame, names, target in (
            (spend, items.categories, out["category_share"]),
            (sku_spend, items.skus, out["sku_share"]),
        ):
            if frame.empty or not names:
                continue
            column = frame["name"].astype(str).map({name: i for i, name in enumerate(names)})
            row = position.reindex(frame["member_id"].to_numpy()).to_numpy()
            total = totals.reindex(frame["member_id"].to_numpy()).to_numpy(dtype=float)
            keep = column.notna().to_numpy() & ~np.isnan(row) & (total > 0)
            target[row[keep].astype(np.int64), column.to_numpy()[keep].astype(np.int64)] = (
                frame["cents"].to_numpy(dtype=float)[keep] / total[keep]
            )
    kept_sql, kept_params = _query_sql(
        Purchase.objects.filter(program_id=program.pk, occurred_at__gte=since)
        .filter(purchase_counts())
        .values("member_id", "eligible_amount", "returned_amount")
    )
    baskets = _frame(
        f"SELECT k.member_id, SUM(CAST(ROUND((k.eligible_amount - k.returned_amount) * 100) AS {float_type})), "  # noqa: S608
        f"COUNT(*) FROM ({kept_sql}) k WHERE k.member_id IN ({consent_sql}) GROUP BY k.member_id",
        [*kept_params, *consent_params],
        ["member_id", "cents", "n"],
    )
    if not baskets.empty:
        rows = position.reindex(baskets["member_id"].to_numpy())
        keep = rows.notna().to_numpy()
        n = baskets["n"].to_numpy(float)[keep]
        out["basket"][rows.dropna().astype("int64").to_numpy()] = baskets["cents"].to_numpy(float)[keep] / 100 / n
    balances = _frame(
        *_query_sql(
            Account.objects.filter(program_id=program.pk, kind=AccountKind.MEMBER).values_list("member_id", "available")
        ),
        ["member_id", "available"],
    )
    if not balances.empty:
        rows = position.reindex(balances["member_id"].to_numpy())
        keep = rows.notna().to_numpy()
        out["balance"][rows.dropna().astype("int64").to_numpy()] = balances["available"].to_numpy(float)[keep]
    shown_since = now - dt.timedelta(days=ranking.NOVELTY_SHOWN_DAYS)
    used_since = now - dt.timedelta(days=ranking.NOVELTY_USED_DAYS)
    recent = [
        _frame(
            *_query_sql(
                OfferImpression.objects.filter(last_shown_at__gte=shown_since, offer__isnull=False).values_list(
                    "member_id", "offer_id"
                )
            ),
            ["member_id", "pk"],
        ).assign(kind=0),
        _frame(
            *_query_sql(
                OfferImpression.objects.filter(last_shown_at__gte=shown_since, reward__isnull=False).values_list(
                    "member_id", "reward_id"
                )
            ),
            ["member_id", "pk"],
        ).assign(kind=1),
        _frame(
            *_query_sql(
                OfferRedemption.objects.filter(
                    created_at__gte=used_since, status=RedemptionState.COMPLETED
                ).values_list("member_id", "offer_id")
            ),
            ["member_id", "pk"],
        ).assign(kind=0),
        _frame(
            *_query_sql(
                RewardRedemption.objects.filter(
                    created_at__gte=used_since, status=RedemptionState.COMPLETED
                ).values_list("member_id", "reward_id")
            ),
            ["member_id", "pk"],
        ).assign(kind=1),
    ]
    out["recent"] = [frame for frame in recent if not frame.empty]
    return out


def _stale(recent: list[pd.DataFrame], items: ranking.Items, position: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(member row, item column) pairs shown or used recently."""
    if not recent:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    frame = pd.concat(recent, ignore_index=True)
    column = pd.Series(np.arange(len(items.items)), index=pd.MultiIndex.from_arrays([items.kind_order, items.pks]))
    cols = column.reindex(pd.MultiIndex.from_arrays([frame["kind"].to_numpy(), frame["pk"].to_numpy()]))
    rows = position.reindex(frame["member_id"].to_numpy())
    keep = cols.notna().to_numpy() & rows.notna().to_numpy()
    return rows.to_numpy()[keep].astype(np.int64), cols.to_numpy()[keep].astype(np.int64)


@dataclass(frozen=True, slots=True)
class Ranked:
    """The rows to store, as parallel arrays: member, rank (from 1), item position, score."""

    member_ids: np.ndarray
    ranks: np.ndarray
    positions: np.ndarray
    scores: np.ndarray


def _copy_text(program: Program, items: ranking.Items, rows: Ranked, now: dt.datetime, start: int, stop: int) -> str:
    """CSV lines (member_id, rank, score, kind, offer_id, reward_id, program_id, computed_at) of
    rows ``start:stop``: each item's constant tail is formatted once; scores in Python's shortest
    round-trip form, so PostgreSQL stores exactly the float that was computed."""
    stamp = now.isoformat()
    tails = [
        f"{item.kind},{'' if item.kind == ranking.KIND_REWARD else item.pk},"
        f"{item.pk if item.kind == ranking.KIND_REWARD else ''},{program.pk},{stamp}"
        for item in items.items
    ]
    return "".join(
        f"{member},{rank},{score!r},{tails[k]}\n"
        for member, rank, score, k in zip(
            rows.member_ids[start:stop].tolist(),
            rows.ranks[start:stop].tolist(),
            rows.scores[start:stop].tolist(),
            rows.positions[start:stop].tolist(),
            strict=True,
        )
    )


def _write(program: Program, items: ranking.Items, rows: Ranked, now: dt.datetime) -> None:
    table = connection.ops.quote_name(MemberOfferRank._meta.db_table)
    with transaction.atomic():
        if _pg():  # one writer at a time (readers go on); a concurrent run waits, then replaces these rows
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        others = MemberOfferRank.objects.exclude(program_id=program.pk).exists()
        if _pg() and not others:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {table}")
        else:
            MemberOfferRank.objects.filter(program_id=program.pk).delete()
        if not len(rows.member_ids):
            return
        if _pg():
            columns = "member_id, rank, score, kind, offer_id, reward_id, program_id, computed_at"
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
            ):
                for start in range(0, len(rows.member_ids), COPY_BATCH):
                    copy.write(_copy_text(program, items, rows, now, start, start + COPY_BATCH))
            return
        kinds = [item.kind for item in items.items]
        MemberOfferRank.objects.bulk_create(
            [
                MemberOfferRank(
                    program_id=program.pk,
                    member_id=member,
                    rank=rank,
                    kind=kinds[k],
                    offer_id=None if kinds[k] == ranking.KIND_REWARD else items.items[k].pk,
                    reward_id=items.items[k].pk if kinds[k] == ranking.KIND_REWARD else None,
                    score=score,
                    computed_at=now,
                )
                for member, rank, score, k in zip(
                    rows.member_ids.tolist(),
                    rows.ranks.tolist(),
                    rows.scores.tolist(),
                    rows.positions.tolist(),
                    strict=True,
                )
            ],
            batch_size=1000,
        )


def member_offer_ranks_compute(
    *, program: Program | None = None, top: int = TOP_DEFAULT, chunk: int = CHUNK, now: dt.datetime | None = None
) -> RankRun:
    """Rank the live offers and rewards for every active member of ``program`` (default program)
    and store each member's top ``top`` as ``MemberOfferRank`` rows (replacing the last run's).
    Scores and order are those of ``offers_for_member`` without a partner."""
    program = program or program_default()
    now = now or clock.now()
    run = RankRun()
    started = time.perf_counter()
    offers = offers_live(program=program, now=now)
    rewards = rewards_active(program=program)
    items, _ = ranking_items(program=program, offers=offers, rewards=rewards)
    members = _members(program)
    run.members, run.items = len(members), len(items.items)
    index, masks = _profiles(program, members, offers, rewards, now)
    run.profiles = len(masks)
    run.timings["eligibility_s"] = time.perf_counter() - started
    t = time.perf_counter()
    personal = _personal(program, members, items, now)
    run.personalized = int(personal["personal"].sum())
    position = pd.Series(np.arange(len(members)), index=members["member_id"].to_numpy())
    stale_rows, stale_cols = _stale(personal["recent"], items, position)
    run.timings["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    member_ids = members["member_id"].to_numpy()
    point_value, earn_rate = money_value(program.point_value), money_value(program.earn_rate)
    parts: list[tuple[np.ndarray, ...]] = []
    order_stale = np.argsort(stale_rows, kind="stable")
    stale_rows, stale_cols = stale_rows[order_stale], stale_cols[order_stale]
    for low in range(0, len(members), chunk):
        high = min(low + chunk, len(members))
        fresh = np.ones((high - low, len(items.items)), dtype=bool)
        a, b = np.searchsorted(stale_rows, [low, high])
        fresh[stale_rows[a:b] - low, stale_cols[a:b]] = False
        block = ranking.Members(
            personal=personal["personal"][low:high],
            basket=personal["basket"][low:high],
            balance=personal["balance"][low:high],
            category_share=personal["category_share"][low:high],
            sku_share=personal["sku_share"][low:high],
            eligible=masks[index[low:high]],
            fresh=fresh,
        )
        scores = ranking.score(items=items, members=block, point_value=point_value, earn_rate=earn_rate)
        best = ranking.order(items=items, total=scores.total, limit=top)
        row, rank = np.nonzero(best >= 0)
        cols = best[row, rank]
        parts.append((member_ids[low + row], rank + 1, cols, scores.total[row, cols]))
    rows = Ranked(
        *(np.concatenate([part[i] for part in parts]) if parts else np.zeros(0, dtype=np.int64) for i in range(4))
    )
    run.timings["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    _write(program, items, rows, now)
    run.rows = len(rows.member_ids)
    run.timings["write_s"] = time.perf_counter() - t
    run.timings["total_s"] = time.perf_counter() - started
    return run
