"""Import of The Complete Journey on a slice of the package's files (see data/README.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command
from django.db import transaction

from loyalty.activity.models import EarningRule, RuleAward
from loyalty.imports.complete_journey import complete_journey_import, dataset_load
from loyalty.ledger.models import Account, AccountKind, Entry, LedgerTransaction, Lot, Purchase, PurchaseLine
from loyalty.ledger.services import program_create
from loyalty.partners.models import OutboxEvent, Partner, PartnerMember
from loyalty.tiers.models import MemberTier, TierChange
from loyalty.tiers.services import tier_create, tier_policy_set
from members.models import Member
from offers.models import CouponUse
from segments.models import SegmentMembership

from .conftest import DATA

pytestmark = pytest.mark.django_db


@pytest.fixture
def plain(db):
    return program_create(name="CJ plain", earn_rate=Decimal("1"), earn_rounding="ROUND_DOWN")


@pytest.fixture
def rich_program(db):
    """Tiers (rolling 12 months), multipliers, a capped bonus, excluded categories, a return
    window and expiry: everything the batch path must reproduce."""
    program = program_create(
        name="CJ rich", pending_days=14, expiry_policy="fixed_months", expiry_months=12, earn_rate=Decimal("1")
    )
    tier_policy_set(program=program, window="rolling_12_months", downgrade_policy="requalify")
    tier_create(program=program, name="Member", rank=0)
    tier_create(program=program, name="Silver", rank=1, thresholds={"spend": 300}, earn_multiplier="1.25")
    tier_create(program=program, name="Gold", rank=2, thresholds={"points": 900}, earn_multiplier="1.5")
    EarningRule.objects.create(
        program=program,
        name="Produce x2",
        kind="category_multiplier",
        categories=["PRODUCE / TROPICAL FRUIT"],
        multiplier=Decimal("2"),
    )
    EarningRule.objects.create(
        program=program,
        name="Big basket",
        kind="min_spend_bonus",
        min_spend=Decimal("40"),
        bonus_points=25,
        cap_per_month=50,
    )
    EarningRule.objects.create(
        program=program, name="No tobacco", kind="exclude_categories", categories=["DRUG GM / CIGARETTES"]
    )
    return program


def test_households_become_members_with_demographics(plain, cj_dataset):
    complete_journey_import(dataset=cj_dataset, program=plain)

    member = Member.objects.get(external_id="cj-1")
    demo = pd.read_parquet(DATA / "demographics.parquet").set_index("household_id").loc[1]
    assert member.enrollment_source == "import" and member.email is None
    assert (member.age_band, member.income_band) == (demo["age"], demo["income"])
    assert member.household_size == int(demo["household_size"].rstrip("+"))
    assert member.household_composition == demo["household_comp"]
    assert member.home_ownership == demo["home_ownership"] and member.marital_status == demo["marital_status"]
    assert Member.objects.get(external_id="cj-2").age_band == ""  # no demographics for household 2
    assert Member.objects.filter(external_id__startswith="cj-").count() == 6


def test_baskets_become_purchases_and_lines(plain, cj_dataset):
    complete_journey_import(dataset=cj_dataset, program=plain)

    tx = pd.read_parquet(DATA / "transactions.parquet")
    products = pd.read_parquet(DATA / "products.parquet").set_index("product_id")
    first = tx.iloc[0]
    purchase = Purchase.objects.get(external_id=str(first["basket_id"]))
    basket = tx[tx["basket_id"] == first["basket_id"]]
    assert purchase.partner.name == "Complete Journey Stores"
    assert purchase.member.external_id == f"cj-{first['household_id']}"
    assert purchase.store_code == str(first["store_id"])
    assert purchase.occurred_at == first["transaction_timestamp"].to_pydatetime().replace(tzinfo=dt.UTC)
    assert purchase.eligible_amount == Decimal(str(round(basket["sales_value"].sum(), 2)))
    line = purchase.lines.get(sku=str(first["product_id"]))
    discount = first["retail_disc"] + first["coupon_disc"] + first["coupon_match_disc"]
    assert line.discount == Decimal(str(round(discount, 2)))
    assert line.amount - line.discount == Decimal(str(round(first["sales_value"], 2)))
    product = products.loc[first["product_id"]]
    assert line.category == f"{product['department']} / {product['product_category']}"
    assert Purchase.objects.count() == tx["basket_id"].nunique()
    assert PurchaseLine.objects.count() == len(tx)


def test_plain_points_equal_sums_computed_with_pandas(plain, cj_dataset):
    complete_journey_import(dataset=cj_dataset, program=plain)

    tx = pd.read_parquet(DATA / "transactions.parquet")
    cents = (tx.groupby("basket_id")["sales_value"].sum() * 100).round().astype(int)
    expected = (cents // 100).to_dict()  # 1 point per 1.00, rounded down per purchase
    got = dict(Purchase.objects.values_list("external_id", "points_earned"))
    assert got == {str(k): v for k, v in expected.items()}
    per_household = tx.assign(points=tx["basket_id"].map(expected)).drop_duplicates("basket_id")
    for household, points in per_household.groupby("household_id")["points"].sum().items():
        account = Account.objects.get(member__external_id=f"cj-{household}", program=plain)
        assert account.available == account.earned == points
    assert sum(Entry.objects.filter(account__kind=AccountKind.MEMBER).values_list("points", flat=True)) == sum(
        expected.values()
    )


def test_second_import_adds_nothing(plain, cj_dataset):
    complete_journey_import(dataset=cj_dataset, program=plain)
    counts = [m.objects.count() for m in (Member, Purchase, PurchaseLine, Entry, Lot, CouponUse, SegmentMembership)]

    report = complete_journey_import(dataset=cj_dataset, program=plain)

    assert report.new_purchases == 0 and report.new_members == 0 and report.skipped_purchases == 200
    assert [
        m.objects.count() for m in (Member, Purchase, PurchaseLine, Entry, Lot, CouponUse, SegmentMembership)
    ] == counts


def test_interrupted_import_is_completed_without_duplicates(plain, cj_dataset):
    """A first run that stopped after some households (and, for one member, after some baskets
    recorded one by one) is completed by a rerun."""
    part = dataset_load(data_dir=DATA, keep_dates=True, households=3)
    complete_journey_import(dataset=part, program=plain, batch_members=2)
    half = cj_dataset.households[3]
    from loyalty.imports.complete_journey import Dataset

    complete_journey_import(
        dataset=Dataset(
            households=[type(half)(half.household_id, half.demographics, half.baskets[:15])],
            campaigns=[],
            targets=[],
            redemptions=[],
            shift_days=0,
        ),
        program=plain,
        workflow_only=True,
    )

    report = complete_journey_import(dataset=cj_dataset, program=plain)

    assert report.new_purchases == 200 - 3 * 40 - 15
    assert Purchase.objects.count() == 200
    assert Account.objects.get(member__external_id=f"cj-{half.household_id}", program=plain).earned == sum(
        Purchase.objects.filter(member__external_id=f"cj-{half.household_id}").values_list("points_earned", flat=True)
    )


def _ledger_state(program) -> dict:
    """Everything the import writes for a program, keyed by what does not depend on insert order."""

    names = {
        a.pk: a.member.external_id if a.member_id else f"{a.kind}:{a.partner.name if a.partner_id else ''}"
        for a in Account.objects.filter(program=program).select_related("member", "partner")
    }
    who = names.__getitem__

    accounts = {
        a.member.external_id: (a.available, a.pending, a.debt, a.earned, a.last_activity_at, a.opened_at)
        for a in Account.objects.filter(program=program, kind=AccountKind.MEMBER).select_related("member")
    }
    purchases = sorted(
        Purchase.objects.filter(program=program).values_list(
            "member__external_id",
            "external_id",
            "store_code",
            "occurred_at",
            "total",
            "eligible_amount",
            "points_earned",
            "created_at",
        )
    )
    lines = sorted(
        PurchaseLine.objects.filter(purchase__program=program).values_list(
            "purchase__external_id", "sku", "category", "quantity", "unit_price", "amount", "discount"
        )
    )
    transactions = sorted(
        (
            t.purchase.external_id if t.purchase_id else "",
            t.kind,
            t.reason,
            t.actor_label,
            t.created_at,
            repr(t.explanation),
        )
        for t in LedgerTransaction.objects.filter(program=program).select_related("purchase")
    )
    lots = sorted(
        Lot.objects.filter(account__program=program).values_list(
            "transaction__purchase__external_id",
            "points",
            "remaining",
            "is_pending",
            "available_at",
            "expires_at",
            "created_at",
        )
    )
    entries = sorted(
        (who(account_id), ext or "", kind, points, has_lot, created_at)
        for account_id, ext, kind, points, has_lot, created_at in Entry.objects.filter(
            transaction__program=program
        ).values_list("account_id", "transaction__purchase__external_id", "kind", "points", "lot_id", "created_at")
        for has_lot in [has_lot is not None]
    )
    awards = sorted(
        RuleAward.objects.filter(rule__program=program).values_list(
            "rule__name", "member__external_id", "purchase__external_id", "points", "awarded_at"
        )
    )
    tiers = sorted(
        MemberTier.objects.filter(program=program).values_list(
            "member__external_id", "tier__name", "earned_tier__name", "tier_since", "period_start", "period_end"
        )
    )
    changes = sorted(
        TierChange.objects.filter(program_id=program.pk).values_list(
            "member__external_id", "from_tier__name", "to_tier__name", "reason", "changed_at"
        ),
        key=repr,
    )
    members = sorted(
        Member.objects.filter(external_id__startswith="cj-").values_list(
            "external_id",
            "enrolled_at",
            "enrollment_source",
            "status",
            "email",
            "preferred_language",
            "age_band",
            "income_band",
            "household_size",
            "household_composition",
            "kids_count",
            "home_ownership",
            "marital_status",
        )
    )
    links = sorted(
        PartnerMember.objects.values_list("partner__name", "member__external_id", "via", "linked_at"), key=repr
    )
    external = dict(Member.objects.values_list("pk", "external_id"))
    partners = dict(Partner.objects.values_list("pk", "name"))  # ids differ between the two runs
    events = sorted(
        (
            e.event_type,
            external.get(e.member_id),
            e.created_at,
            repr(
                {
                    k: external.get(v) if k == "member_id" else partners.get(v) if k == "partner_id" else v
                    for k, v in e.payload.items()
                    if k != "member_number"
                }
            ),
        )
        for e in OutboxEvent.objects.exclude(event_type="points.earned")
    )
    return {
        "members": members,
        "links": links,
        "events": events,
        "accounts": accounts,
        "purchases": purchases,
        "lines": lines,
        "transactions": transactions,
        "lots": lots,
        "entries": entries,
        "awards": awards,
        "tiers": tiers,
        "changes": changes,
    }


def test_batch_import_gives_the_ledger_state_of_the_one_by_one_workflow(rich_program, cj_dataset):
    savepoint = transaction.savepoint()
    report = complete_journey_import(dataset=cj_dataset, program=rich_program)
    assert report.workflow_purchases == 0  # all through the batch path
    batch = _ledger_state(rich_program)
    transaction.savepoint_rollback(savepoint)

    report = complete_journey_import(dataset=cj_dataset, program=rich_program, workflow_only=True)
    assert report.workflow_purchases == 200
    workflow = _ledger_state(rich_program)

    assert any(change[3] == "upgrade" for change in workflow["changes"])  # the sample reaches higher tiers
    assert any(event[0] == "tier.upgraded" for event in workflow["events"])
    assert any(award[0] == "Big basket" for award in workflow["awards"])
    for key in workflow:
        diff = next(((a, b) for a, b in zip(batch[key], workflow[key], strict=False) if a != b), None)
        assert batch[key] == workflow[key], (key, diff)


def test_command_imports_a_subset_and_reports_nothing_new_the_second_time(db, capsys):
    call_command("import_complete_journey", "--data-dir", str(DATA), "--households", "2", "--plain", "--no-progress")
    call_command("import_complete_journey", "--data-dir", str(DATA), "--households", "2", "--plain", "--no-progress")

    out = capsys.readouterr().out
    assert "0 new purchases" in out
    assert Member.objects.filter(external_id__startswith="cj-").count() == 2
    tx = pd.read_parquet(DATA / "transactions.parquet")
    shift = (dt.date.today() - dt.timedelta(days=1)) - tx["transaction_timestamp"].max().date()  # data ends yesterday
    first = tx.iloc[0]
    purchase = Purchase.objects.get(external_id=str(first["basket_id"]))
    assert purchase.occurred_at == (first["transaction_timestamp"] + shift).to_pydatetime().replace(tzinfo=dt.UTC)


def test_ledger_invariants_hold_after_the_import(rich_program, cj_dataset):
    complete_journey_import(dataset=cj_dataset, program=rich_program)

    per_transaction: dict[int, int] = {}
    for tx_id, points in Entry.objects.values_list("transaction_id", "points"):
        per_transaction[tx_id] = per_transaction.get(tx_id, 0) + points
    assert per_transaction and set(per_transaction.values()) == {0}
    for account in Account.objects.filter(program=rich_program, kind=AccountKind.MEMBER):
        entries = sum(account.entries.values_list("points", flat=True))
        remaining = sum(account.lots.values_list("remaining", flat=True))
        assert account.available + account.pending == entries == remaining > 0
