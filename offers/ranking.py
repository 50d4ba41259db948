"""Personalized ranking of offers and rewards: pure scoring over plain data.

One scoring, two callers: ``offers.selectors.ranking.offers_for_member`` scores one member (a
1-row matrix) and ``offers.services.ranking.member_offer_ranks_compute`` scores the whole base in
chunks of members. Both build the same ``Items`` (what is ranked) and ``Members`` (what is known
about whom) and call ``score`` here, so the order is the same in every channel and in the batch.

Each factor adds points to the score and, for one member, a reason in plain words:

- affinity: share of the member's spend (last ``HISTORY_DAYS``) in the item's categories or SKUs,
  x ``W_AFFINITY`` ("You buy a lot of Dairy");
- value: what the item is worth to the member in money at their typical basket, saturating
  (``W_VALUE`` x v / (v + ``VALUE_HALF``)) ("Worth about 4.00 USD to you");
- tier: an offer only the member's tier gets, ``W_TIER`` ("For Gold members");
- novelty: not shown in ``NOVELTY_SHOWN_DAYS`` and not used in ``NOVELTY_USED_DAYS``,
  ``W_NOVELTY`` ("New for you");
- distance to a reward: affordable ``W_DISTANCE``, else ``W_DISTANCE`` x balance / cost
  ("Only 120 points to go" when at most ``NEAR_SHARE`` of the cost is missing);
- priority set by staff, ``W_PRIORITY`` per step ("Recommended by the program");
- popularity: redemptions of the offer, log-scaled against the most redeemed live offer,
  ``W_POPULARITY`` ("Popular with members").

Without personalization consent only value (at the default basket), priority and popularity
count: no purchase history, tier, balance or impressions move the order, and the first reason
says so. Ties are broken by kind (offers first) then id, so the order is total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HISTORY_DAYS = 365
NOVELTY_SHOWN_DAYS = 14
NOVELTY_USED_DAYS = 30
DEFAULT_BASKET = 40.0  # money: the typical basket of a member whose history we may not use
UNKNOWN_SCOPE_SHARE = 0.25  # share of a basket a scoped bonus is assumed to touch without history
W_AFFINITY = 40.0
W_VALUE = 30.0
VALUE_HALF = 5.0
W_TIER = 10.0
W_NOVELTY = 8.0
W_DISTANCE = 20.0
NEAR_SHARE = 0.25
W_PRIORITY = 5.0
PRIORITY_CAP = 10
W_POPULARITY = 6.0
AFFINITY_REASON = 0.15  # affinity from which "You buy a lot of ..." is said
POPULAR_REASON = 0.5
DECIMALS = 4  # scores are rounded once, so both callers order ties the same way

NO_CONSENT_REASON = "Ranked without your purchase history (no personalization consent)"

KIND_OFFER = "offer"
KIND_REWARD = "reward"


@dataclass(frozen=True, slots=True)
class Item:
    """One offer or reward as scoring sees it (plain data)."""

    kind: str  # KIND_OFFER or KIND_REWARD
    pk: int
    categories: tuple[str, ...] = ()  # what affinity is measured on (condition and scope)
    skus: tuple[str, ...] = ()
    scoped: bool = False  # a bonus only on those categories / SKUs: its value depends on the share
    value_fixed: float = 0.0  # money given whatever the basket
    value_basket_rate: float = 0.0  # share of the (scoped) basket given in money
    priority: int = 0
    tier_only: bool = False
    popularity: float = 0.0  # 0..1
    points_cost: int = 0  # rewards


@dataclass(frozen=True, slots=True)
class Items:
    """Column arrays of ``items`` (length K) for vectorized scoring."""

    items: tuple[Item, ...]
    is_reward: np.ndarray
    scoped: np.ndarray
    value_fixed: np.ndarray
    value_basket_rate: np.ndarray
    priority: np.ndarray
    tier_only: np.ndarray
    popularity: np.ndarray
    points_cost: np.ndarray
    kind_order: np.ndarray  # 0 offers, 1 rewards
    pks: np.ndarray
    categories: tuple[str, ...]  # every category named by an item, sorted
    skus: tuple[str, ...]
    category_matrix: np.ndarray  # (len(categories), K) 1 where the item names the category
    sku_matrix: np.ndarray

    @classmethod
    def of(cls, items: list[Item] | tuple[Item, ...]) -> Items:
        items = tuple(items)
        categories = tuple(sorted({c for item in items for c in item.categories}))
        skus = tuple(sorted({s for item in items for s in item.skus}))
        cat_index = {c: i for i, c in enumerate(categories)}
        sku_index = {s: i for i, s in enumerate(skus)}
        category_matrix = np.zeros((len(categories), len(items)))
        sku_matrix = np.zeros((len(skus), len(items)))
        for k, item in enumerate(items):
            for c in set(item.categories):
                category_matrix[cat_index[c], k] = 1.0
            for s in set(item.skus):
                sku_matrix[sku_index[s], k] = 1.0

        def column(name: str, dtype=float) -> np.ndarray:
            return np.array([getattr(item, name) for item in items], dtype=dtype)

        built = cls(
            items=items,
            is_reward=np.array([item.kind == KIND_REWARD for item in items], dtype=bool),
            scoped=column("scoped", bool),
            value_fixed=column("value_fixed"),
            value_basket_rate=column("value_basket_rate"),
            priority=np.clip(column("priority"), -PRIORITY_CAP, PRIORITY_CAP),
            tier_only=column("tier_only", bool),
            popularity=column("popularity"),
            points_cost=column("points_cost"),
            kind_order=np.array([item.kind == KIND_REWARD for item in items], dtype=np.int64),
            pks=column("pk", np.int64),
            categories=categories,
            skus=skus,
            category_matrix=category_matrix,
            sku_matrix=sku_matrix,
        )
        for name in built.__slots__:
            value = getattr(built, name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # cached and shared: read-only
        return built


@dataclass(frozen=True, slots=True)
class Members:
    """What scoring knows about M members, as arrays (row i is one member).

    ``category_share`` (M, len(items.categories)) and ``sku_share`` (M, len(items.skus)): share of
    the member's spend in each category / SKU the items name (0 without consent). ``eligible``
    (M, K): what eligibility allows; ``fresh`` (M, K): novelty (not shown or used recently)."""

    personal: np.ndarray  # (M,) personalization consent on record
    basket: np.ndarray  # (M,) typical basket in money (DEFAULT_BASKET without consent or history)
    balance: np.ndarray  # (M,) available points
    category_share: np.ndarray
    sku_share: np.ndarray
    eligible: np.ndarray
    fresh: np.ndarray


@dataclass(frozen=True, slots=True)
class Scores:
    """Each factor's contribution (M, K) and the total (rounded, -inf where not eligible)."""

    affinity: np.ndarray  # the share itself (0..1), before its weight
    value: np.ndarray  # money
    affinity_points: np.ndarray
    value_points: np.ndarray
    tier_points: np.ndarray
    novelty_points: np.ndarray
    distance_points: np.ndarray
    priority_points: np.ndarray
    popularity_points: np.ndarray
    total: np.ndarray

    def row(self, i: int) -> dict[str, list[float]]:
        """Member ``i``'s figures as plain lists (what the reasons read)."""
        names = ("affinity", "value", "tier_points", "novelty_points", "priority_points", "popularity_points")
        return {name: getattr(self, name)[i].tolist() for name in names}


def score(*, items: Items, members: Members, point_value: float, earn_rate: float) -> Scores:
    """Score every (member, item) pair. ``point_value`` (money per point) and ``earn_rate`` (points
    per unit of money) turn bonus points into money."""
    personal = members.personal[:, None]
    affinity = members.category_share @ items.category_matrix + members.sku_share @ items.sku_matrix
    affinity = np.where(personal, np.minimum(affinity, 1.0), 0.0)
    # a scoped bonus touches the share of the basket spent in its scope (a guess without history)
    scope_share = np.where(items.scoped[None, :], np.where(personal, affinity, UNKNOWN_SCOPE_SHARE), 1.0)
    basket = np.where(members.personal, members.basket, DEFAULT_BASKET)[:, None]
    value = items.value_fixed[None, :] + basket * items.value_basket_rate[None, :] * scope_share
    value_points = W_VALUE * value / (value + VALUE_HALF)
    affinity_points = W_AFFINITY * affinity
    tier_points = np.where(personal & items.tier_only[None, :], W_TIER, 0.0)
    novelty_points = np.where(personal & members.fresh, W_NOVELTY, 0.0)
    cost = np.maximum(items.points_cost, 1.0)[None, :]
    reach = np.minimum(members.balance[:, None] / cost, 1.0)
    distance_points = np.where(personal & items.is_reward[None, :], W_DISTANCE * np.maximum(reach, 0.0), 0.0)
    shape = affinity.shape
    priority_points = np.broadcast_to(W_PRIORITY * items.priority[None, :], shape)
    popularity_points = np.broadcast_to(W_POPULARITY * items.popularity[None, :], shape)
    total = (
        affinity_points
        + value_points
        + tier_points
        + novelty_points
        + distance_points
        + priority_points
        + popularity_points
    )
    total = np.where(members.eligible, np.round(total, DECIMALS), -np.inf)
    return Scores(
        affinity=affinity,
        value=value,
        affinity_points=affinity_points,
        value_points=value_points,
        tier_points=tier_points,
        novelty_points=novelty_points,
        distance_points=distance_points,
        priority_points=priority_points,
        popularity_points=popularity_points,
        total=total,
    )


FACTORS = (
    ("Affinity", "affinity_points"),
    ("Value", "value_points"),
    ("Tier", "tier_points"),
    ("Novelty", "novelty_points"),
    ("Reward distance", "distance_points"),
    ("Priority", "priority_points"),
    ("Popularity", "popularity_points"),
)


def factor_table(scores: Scores, row: int = 0) -> list[tuple[tuple[str, float], ...]]:
    """Per item, the points each factor added for member ``row`` (for staff)."""
    table = np.round(np.stack([getattr(scores, attr)[row] for _, attr in FACTORS], axis=1), 2).tolist()
    return [tuple(zip((name for name, _ in FACTORS), points, strict=True)) for points in table]


def order(*, items: Items, total: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Item positions of each member's eligible items, best first: (M, n) with -1 padding.
    Score descending, then offers before rewards, then id ascending. One integer key per pair
    (the score in units of 10^-DECIMALS, then the tie rank), so the best ``limit`` are an
    ``argpartition`` away; only those are sorted."""
    m, k = total.shape
    n = k if limit is None else min(limit, k)
    if n == 0:
        return np.zeros((m, 0), dtype=np.int64)
    ties = np.empty(k, dtype=np.int64)  # 0 for the first offer by id ... k-1 for the last reward
    ties[np.lexsort((items.pks, items.kind_order))] = np.arange(k)
    eligible = np.isfinite(total)
    units = np.rint(np.where(eligible, total, 0.0) * 10**DECIMALS).astype(np.int64)
    key = np.where(eligible, units * (k + 1) + (k - ties)[None, :], np.iinfo(np.int64).min + 1)  # negatable
    best = np.argpartition(-key, n - 1, axis=1)[:, :n] if n < k else np.broadcast_to(np.arange(k), (m, k))
    ranked = np.take_along_axis(best, np.argsort(-np.take_along_axis(key, best, axis=1), axis=1, kind="stable"), axis=1)
    return np.where(np.take_along_axis(eligible, ranked, axis=1), ranked, -1)


def popularity(counts: list[int] | np.ndarray) -> np.ndarray:
    """Redemption counts -> 0..1: log1p(count) / log1p(the largest count)."""
    counts = np.asarray(counts, dtype=float)
    top = counts.max() if counts.size else 0.0
    return np.log1p(counts) / np.log1p(top) if top > 0 else np.zeros_like(counts)


def shares(spend: dict[str, float], total: float, names: tuple[str, ...]) -> np.ndarray:
    """Share of ``total`` spent on each of ``names`` (0 when nothing was spent)."""
    if total <= 0:
        return np.zeros(len(names))
    return np.array([spend.get(name, 0.0) / total for name in names])


def money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def reasons(
    *,
    item: Item,
    row: dict[str, list[float]],
    k: int,
    personal: bool,
    category_share: dict[str, float],
    balance: int,
    currency: str,
    tier_name: str | None,
) -> list[str]:
    """Why item ``k`` ranks where it does for one member (``row``: ``Scores.row``), in plain
    words, in the order of the factors; only factors that added points are named."""
    said: list[str] = [] if personal else [NO_CONSENT_REASON]
    if row["affinity"][k] >= AFFINITY_REASON:
        named = [c for c in item.categories if category_share.get(c, 0.0) > 0]
        if named:
            top = max(named, key=lambda c: (category_share[c], c))
            said.append(f"You buy a lot of {top}")
        else:
            said.append("You often buy these products")
    if row["value"][k] >= 0.01:
        said.append(f"Worth about {money(row['value'][k], currency)} to you")
    if row["tier_points"][k] > 0:
        said.append(f"For {tier_name} members" if tier_name else "For your tier")
    if item.kind == KIND_REWARD and personal:
        missing = max(0, item.points_cost - balance)
        if missing == 0:
            said.append("You have enough points for this")
        elif missing <= NEAR_SHARE * item.points_cost:
            said.append(f"Only {missing:,} points to go")
    if row["novelty_points"][k] > 0:
        said.append("New for you")
    if row["priority_points"][k] > 0:
        said.append("Recommended by the program")
    if row["popularity_points"][k] >= POPULAR_REASON * W_POPULARITY:
        said.append("Popular with members")
    return said
