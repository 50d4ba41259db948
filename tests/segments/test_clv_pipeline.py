"""The scoring pipeline (database read, per-day transactions, fits) on published data: the raw
CDNOW transaction log of Fader, Hardie & Lee (2005) reproduces the paper's summary table and
parameters when run through ``scores_compute``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loyalty.ledger.selectors import program_default
from loyalty.ledger.services import NewPurchase, PurchaseLineColumns, accounts_open_many, purchases_record_many
from members.models import EnrollmentSource
from members.services import NewMember, member_enroll_many
from segments import services
from segments.services.scores import read_summaries

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
CALIBRATION_END = dt.datetime(1997, 9, 30, 23, 59, 59, tzinfo=dt.UTC)  # 39 weeks after 1997-01-01


def cdnow_log() -> pd.DataFrame:
    """The 2,357 customers' 6,919 records: customer, sample id, date, CDs bought, dollar value."""
    log = pd.read_csv(
        DATA / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer", "sample_id", "date", "cds", "value"],
        dtype={"date": str},
    )
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


@pytest.fixture
def cdnow_members(db):
    """The log recorded as purchases (one line each, at noon of the day) through the bulk services."""
    log = cdnow_log()
    program = program_default()
    first = log.groupby("sample_id")["date"].min()
    people = member_enroll_many(
        source=EnrollmentSource.IMPORT,
        members=[
            NewMember(enrolled_at=day.to_pydatetime().replace(tzinfo=dt.UTC), external_id=f"cdnow-{sample_id}")
            for sample_id, day in first.items()
        ],
    )
    member_of = dict(zip(first.index.tolist(), people, strict=True))
    accounts = accounts_open_many(program=program, members=people, opened_at=[m.enrolled_at for m in people])
    n = len(log)
    lines = PurchaseLineColumns(
        sku=np.ones(n, dtype="int64"),
        category=np.zeros(n, dtype="int64"),
        categories=["music"],
        quantity=log["cds"].to_numpy(dtype="int64"),
        amount=np.round(log["value"].to_numpy() * 100).astype("int64"),
        discount=np.zeros(n, dtype="int64"),
    )
    purchases_record_many(
        program=program,
        partner=None,
        purchases=[
            NewPurchase(
                account=accounts[member_of[sample_id].pk],
                external_id=f"cdnow-{i}",
                occurred_at=date.to_pydatetime().replace(hour=12, tzinfo=dt.UTC),
                start=i,
                stop=i + 1,
            )
            for i, (sample_id, date) in enumerate(zip(log["sample_id"], log["date"], strict=True))
        ],
        lines=lines,
    )
    return {m.pk: sample_id for sample_id, m in member_of.items()}


def test_the_pipeline_reproduces_the_published_cdnow_summary_table(cdnow_members):
    """Customer-days up to 1997-09-30: x, t_x and T in weeks equal the published table, and the
    mean of the repeat transactions equals its zbar (to the cent it is rounded to)."""
    summary = read_summaries(as_of=CALIBRATION_END, window_days=365)
    summary["ID"] = summary["member_id"].map(cdnow_members)
    summary = summary.sort_values("ID").reset_index(drop=True)
    published = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    assert len(summary) == len(published) == 2357
    assert (summary["ID"].to_numpy() == published["ID"].to_numpy()).all()
    assert (summary["x"].to_numpy() == published["x"].to_numpy()).all()
    assert np.allclose(np.round(summary["t_x_days"] / 7, 2), published["t_x"], atol=1e-9)
    assert np.allclose(np.round(summary["T_days"] / 7, 2), published["T"], atol=1e-9)
    assert np.abs(summary["repeat_mean"].to_numpy() - published["zbar"].to_numpy()).max() <= 0.0100001
    assert int(summary["transactions"].sum()) == 4814  # 4,960 records on 4,814 customer-days


def test_the_pipeline_reproduces_the_published_cdnow_parameters(cdnow_members):
    """BG/NBD (FHL 2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; Gamma-Gamma (Fader &
    Hardie 2013): p = 6.25, q = 3.74, gamma = 15.44; each within 1%, fitted by ``scores_compute``."""
    run = services.scores_compute(as_of=CALIBRATION_END, horizon_days=39 * 7)
    assert run.members_scored == 2357
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert run.bgnbd[name] == pytest.approx(published, rel=0.01), name
    for name, published in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert run.gamma_gamma[name] == pytest.approx(published, rel=0.01), name
    assert run.bgnbd["log_likelihood"] == pytest.approx(-9582.4, abs=0.5)
    assert (run.fit_members, run.gamma_gamma["members"]) == (2357, 946)
    assert (run.clv_basis, run.degenerate) == ("model", False)
