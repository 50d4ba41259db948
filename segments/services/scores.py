"""Nightly scoring: RFM scores and predicted value for every member with purchases.

Read: one grouped query over purchases (one row per member and calendar day): PostgreSQL streams it with COPY
into pandas; other databases fetch it ``batch_size`` rows at a time. Compute: pandas / numpy /
scipy (``segments.scoring.pipeline``) over the whole base (quintiles and model fits need it).
Write: in batches of ``batch_size`` rows: PostgreSQL COPYs each batch into a temporary table
and upserts them all with one ``INSERT ... ON CONFLICT``; SQLite uses bulk upserts. Rows of
members who no longer have purchases (or were erased) are deleted.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import uuid
from decimal import Decimal
from itertools import islice

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, FloatField, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.core.services import Actor, audit_record
from loyalty.ledger.models import Purchase
from loyalty.ledger.selectors import purchase_counts
from members.models import Member, MemberStatus
from segments.models import MemberScore, ScoreRun
from segments.scoring import pipeline

BATCH = 50_000
SUMMARY_COLUMNS = pipeline.DAY_COLUMNS
SCORE_COLUMNS = (
    "member_id",
    "run_id",
    "computed_on",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "purchases_total",
    "historic_clv",
    "predicted_purchases",
    "probability_alive",
    "expected_spend",
    "predicted_clv",
)
MONEY_COLUMNS = ("monetary", "historic_clv", "expected_spend", "predicted_clv")


def scores_compute(
    *,
    as_of: dt.datetime | None = None,
    window_days: int = 365,
    horizon_days: int = 365,
    margin: Decimal | str | float = Decimal("1"),
    batch_size: int = BATCH,
    fit_sample: int = 200_000,
    actor: Actor = None,
) -> ScoreRun:
    """Score every member with a purchase up to ``as_of``: RFM over the last ``window_days``
    and BG/NBD + Gamma-Gamma predictions for the next ``horizon_days`` (CLV × ``margin``).
    A run started by staff (``actor`` given) is audited (``scores.compute``)."""
    if window_days <= 0 or horizon_days <= 0 or batch_size <= 0:
        raise ValidationFailed("window, horizon and batch size must be positive", code="invalid_score_settings")
    margin = Decimal(str(margin))
    if not Decimal("0") < margin <= Decimal("1"):
        raise ValidationFailed("margin must be in (0, 1]", code="invalid_margin")
    as_of = as_of or clock.now()
    run = ScoreRun.objects.create(
        as_of=as_of, window_days=window_days, horizon_days=horizon_days, margin=margin, started_at=clock.now()
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    summary = read_summaries(as_of=as_of, window_days=window_days, batch_size=batch_size)
    timings["read_s"] = round(time.perf_counter() - started, 3)

    step = time.perf_counter()
    scored = pipeline.score_members(summary, horizon_days=horizon_days, margin=float(margin), fit_sample=fit_sample)
    timings["compute_s"] = round(time.perf_counter() - step, 3)

    step = time.perf_counter()
    write_scores(frame=scored.frame, run=run, computed_on=as_of.date(), batch_size=batch_size)
    timings["write_s"] = round(time.perf_counter() - step, 3)
    timings["total_s"] = round(time.perf_counter() - started, 3)

    ScoreRun.objects.filter(pk=run.pk).update(
        members_scored=len(scored.frame),
        bgnbd=scored.bgnbd.as_dict() if scored.bgnbd else None,
        gamma_gamma=scored.gamma_gamma.as_dict() if scored.gamma_gamma else None,
        timings=timings,
        note="; ".join(scored.notes),
        clv_basis=scored.basis,
        degenerate=scored.degenerate,
        fit_members=scored.bgnbd.members if scored.bgnbd else None,
        fit_log_likelihood=scored.bgnbd.log_likelihood if scored.bgnbd else None,
        finished_at=clock.now(),
    )
    run.refresh_from_db()
    if actor is not None:
        audit_record(
            actor=actor,
            action="scores.compute",
            target=run,
            after={
                "members_scored": run.members_scored,
                "clv_basis": run.clv_basis,
                "degenerate": run.degenerate,
                "note": run.note,
            },
        )
    return run


# Read -------------------------------------------------------------------------------------------


def summary_query(*, as_of: dt.datetime, window_days: int) -> QuerySet:
    """One row per member and calendar day (in the program's time zone: the project's
    ``TIME_ZONE``) with purchases up to ``as_of``: the day, net spend, and purchases and net
    spend in the RFM window. A purchase counts unless fully returned; a partial return lowers
    the spend of the purchase's day."""
    kept = purchase_counts()
    # Summed as float8: several times cheaper than numeric over millions of rows, and exact to the
    # cent for any member's history (values are rounded to cents when stored). Scores are
    # estimates; balances and segment conditions keep exact numeric sums.
    net = Cast("eligible_amount", FloatField()) - Cast("returned_amount", FloatField())
    in_window = Q(occurred_at__gt=as_of - dt.timedelta(days=window_days))
    return (
        Purchase.objects.filter(kept, occurred_at__lte=as_of)
        .annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_default_timezone()))
        .values("member_id", "day")
        .annotate(
            spend=Sum(net, output_field=FloatField()),
            purchases_window=Count("id", filter=in_window),
            spend_window=Coalesce(Sum(net, filter=in_window, output_field=FloatField()), Value(0.0)),
        )
        .order_by()
        .values_list(*SUMMARY_COLUMNS)
    )


def observation_end_day(as_of: dt.datetime) -> int:
    """The last calendar day observed (``as_of``'s date in the program's time zone), in days since 1970."""
    return (timezone.localtime(as_of, timezone.get_default_timezone()).date() - dt.date(1970, 1, 1)).days


def read_summaries(*, as_of: dt.datetime, window_days: int, batch_size: int = BATCH) -> pd.DataFrame:
    """``pipeline.member_summaries`` of the rows of ``summary_query`` (erased members left out).
    PostgreSQL aggregates the member-days to one row per member in SQL (as
    ``pipeline.member_days_aggregate`` does) and streams that with COPY; other databases fetch the
    member-days ``batch_size`` rows at a time and aggregate them with pandas."""
    rows = summary_query(as_of=as_of, window_days=window_days)
    columns = list(pipeline.MEMBER_COLUMNS)
    if connection.vendor == "postgresql":
        days_sql, params = rows.query.sql_with_params()
        sql = (
            "SELECT member_id, MIN(day) - DATE '1970-01-01', MAX(day) - DATE '1970-01-01', COUNT(*), SUM(spend), "  # noqa: S608
            "(ARRAY_AGG(spend ORDER BY day))[1], COUNT(*) FILTER (WHERE purchases_window > 0), SUM(spend_window) "
            f"FROM ({days_sql}) AS member_days GROUP BY member_id"
        )
        buffer = io.BytesIO()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy,
        ):
            for data in copy:
                buffer.write(data)
        buffer.seek(0)
        members = (
            pd.read_csv(buffer, names=columns, header=None)
            if buffer.getbuffer().nbytes
            else pd.DataFrame({c: np.zeros(0, dtype="int64") for c in columns})
        )
    else:
        chunks = []
        iterator = rows.iterator(chunk_size=batch_size)
        while chunk := list(islice(iterator, batch_size)):
            chunks.append(pd.DataFrame.from_records(chunk, columns=list(SUMMARY_COLUMNS)))
        raw = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=list(SUMMARY_COLUMNS))
        days = raw.assign(
            day=pd.to_datetime(raw["day"]).to_numpy().astype("datetime64[D]").astype("int64")
            if len(raw)
            else np.zeros(0, dtype="int64")
        )
        members = pipeline.member_days_aggregate(days)
    erased = np.fromiter(
        Member.objects.filter(status=MemberStatus.ERASED).values_list("pk", flat=True).iterator(), dtype="int64"
    )
    if len(erased) and len(members):
        members = members[~members["member_id"].isin(erased)]
    members = members.sort_values("member_id", kind="stable").reset_index(drop=True)
    return pipeline.member_summaries(members, end_day=observation_end_day(as_of))


# Write ------------------------------------------------------------------------------------------


def score_table(frame: pd.DataFrame, run: ScoreRun, computed_on: dt.date) -> pd.DataFrame:
    """The scored frame as rows of ``segments_memberscore`` (money rounded to cents; NaN = NULL)."""
    table = pd.DataFrame(
        {
            "member_id": frame["member_id"].to_numpy(dtype="int64"),
            "run_id": run.pk,
            "computed_on": computed_on.isoformat(),
            "recency_days": frame["recency_days"].clip(lower=0).to_numpy(dtype="int64"),
            "frequency": frame["frequency"].to_numpy(dtype="int64"),
            "r_score": frame["r_score"].to_numpy(dtype="int64"),
            "f_score": frame["f_score"].to_numpy(dtype="int64"),
            "m_score": frame["m_score"].to_numpy(dtype="int64"),
            "rfm_segment": frame["rfm_segment"].to_numpy(),
            "purchases_total": frame["purchases_total"].to_numpy(dtype="int64"),
            "predicted_purchases": frame["predicted_purchases"].to_numpy(dtype="float64"),
            "probability_alive": frame["probability_alive"].to_numpy(dtype="float64"),
        }
    )
    for column in MONEY_COLUMNS:
        table[column] = frame[column].to_numpy(dtype="float64").round(2)
    return table[list(SCORE_COLUMNS)]


def write_scores(*, frame: pd.DataFrame, run: ScoreRun, computed_on: dt.date, batch_size: int = BATCH) -> None:
    """Upsert one row per member of ``frame`` in batches; delete rows of members not in it."""
    table = score_table(frame, run, computed_on)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _write_postgres(table, batch_size)
        else:
            _write_other(table, batch_size)
        MemberScore.objects.exclude(run=run).delete()


def _write_postgres(table: pd.DataFrame, batch_size: int) -> None:
    temp = f"segments_scores_{uuid.uuid4().hex[:12]}"
    columns = ", ".join(SCORE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} (LIKE segments_memberscore) ON COMMIT DROP")
        for start in range(0, len(table), batch_size):
            text = table.iloc[start : start + batch_size].to_csv(index=False, header=False)
            with cursor.cursor.copy(f"COPY {temp} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in SCORE_COLUMNS if c != "member_id")
        cursor.execute(
            f"INSERT INTO segments_memberscore ({columns}) SELECT {columns} FROM {temp} "  # noqa: S608
            f"ON CONFLICT (member_id) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DROP TABLE {temp}")


def _write_other(table: pd.DataFrame, batch_size: int) -> None:
    fields = [c.removesuffix("_id") if c in ("member_id", "run_id") else c for c in SCORE_COLUMNS]
    for start in range(0, len(table), batch_size):
        batch = table.iloc[start : start + batch_size].astype(object).where(table.notna(), None)
        MemberScore.objects.bulk_create(
            [
                MemberScore(**{column: row[i] for i, column in enumerate(SCORE_COLUMNS)})
                for row in batch.itertuples(index=False, name=None)
            ],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["member"],
            update_fields=[f for f in fields if f != "member"],
        )
