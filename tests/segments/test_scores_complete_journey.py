"""Per-member x, t_x, T and repeat-transaction mean of the scoring pipeline against an
independent computation with pandas from the raw Complete Journey files (a few hundred
households imported through the bulk loader, some baskets returned)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from loyalty.core import clock
from loyalty.imports.complete_journey import complete_journey_import, dataset_load, package_data_dir
from loyalty.ledger.models import Purchase
from loyalty.ledger.services import program_create, purchase_return_clawback
from members.models import Member
from segments.services.scores import read_summaries

pytestmark = pytest.mark.django_db

HOUSEHOLDS = 200


@pytest.fixture(scope="module")
def households():
    return dataset_load(households=HOUSEHOLDS, keep_dates=True)


def test_summaries_equal_an_independent_pandas_computation(households):
    program = program_create(name="CJ scores", earn_rate=Decimal("1"), earn_rounding="ROUND_DOWN")
    complete_journey_import(dataset=households, program=program)
    chosen = [h.household_id for h in households.households]

    # the raw baskets: spend = sum of the lines' sales value (to the cent), day = calendar day (UTC)
    tx = pd.read_parquet(
        package_data_dir() / "transactions.parquet",
        columns=["household_id", "basket_id", "sales_value", "transaction_timestamp"],
    )
    tx = tx[tx["household_id"].isin(chosen)]
    tx["cents"] = np.rint(tx["sales_value"].astype("float64") * 100).astype("int64")
    baskets = tx.groupby("basket_id").agg(
        household_id=("household_id", "first"),
        cents=("cents", "sum"),
        at=("transaction_timestamp", "min"),
    )
    baskets.index = baskets.index.astype(str)

    # returns: every 40th basket fully (it stops counting), every 25th other one by half (less spend)
    clock.set_now(pd.Timestamp(baskets["at"].max()).to_pydatetime().replace(tzinfo=dt.UTC) + dt.timedelta(days=1))
    purchases = {p.external_id: p for p in Purchase.objects.filter(program=program).order_by("pk")}
    for i, external_id in enumerate(sorted(purchases)):
        purchase, cents = purchases[external_id], int(baskets.at[external_id, "cents"])
        if cents <= 0:
            continue
        if i % 40 == 0:
            purchase_return_clawback(purchase=purchase, external_id=f"full-{i}", amount=purchase.eligible_amount)
            baskets.at[external_id, "cents"] = -1  # marker: left out
        elif i % 25 == 0:
            half = cents // 2
            purchase_return_clawback(purchase=purchase, external_id=f"half-{i}", amount=Decimal(half) / 100)
            baskets.at[external_id, "cents"] = cents - half
    kept = baskets[baskets["cents"] != -1].copy()

    as_of = dt.datetime(2017, 12, 31, 23, 0, tzinfo=dt.UTC)
    kept = kept[kept["at"] <= as_of.replace(tzinfo=None)]
    kept["day"] = kept["at"].dt.normalize()
    days = kept.groupby(["household_id", "day"], as_index=False)["cents"].sum().sort_values(["household_id", "day"])
    end = pd.Timestamp("2017-12-31")
    per = days.groupby("household_id")
    expected = pd.DataFrame(
        {
            "x": per.size() - 1,
            "t_x_days": (per["day"].max() - per["day"].min()).dt.days,
            "T_days": (end - per["day"].min()).dt.days,
            "spend_total": per["cents"].sum() / 100,
            "repeat_mean": (per["cents"].sum() - per["cents"].first()) / 100 / (per.size() - 1).where(per.size() > 1),
        }
    ).fillna({"repeat_mean": 0.0})

    summary = read_summaries(as_of=as_of, window_days=365)
    household_of = {m: int(e.removeprefix("cj-")) for m, e in Member.objects.values_list("pk", "external_id") if e}
    got = summary.assign(household_id=summary["member_id"].map(household_of)).set_index("household_id").sort_index()
    expected = expected.sort_index()
    assert len(got) == len(expected) >= HOUSEHOLDS - 5
    assert (got.index == expected.index).all()
    assert (expected["x"] < (kept.groupby("household_id").size() - 1)).any()  # several baskets on one day
    for column in ("x", "t_x_days", "T_days"):
        assert (got[column].to_numpy() == expected[column].to_numpy()).all(), column
    for column in ("spend_total", "repeat_mean"):
        assert np.allclose(got[column].to_numpy(), expected[column].to_numpy(), atol=1e-6), column
