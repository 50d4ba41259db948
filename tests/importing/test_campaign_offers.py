"""The Complete Journey's campaigns imported as offers, static segments, coupons, coupon uses and
offer redemptions (``offers.services.bulk.campaign_offers_record``), on the slice in data/."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.db import transaction

from loyalty.core.models import AuditEvent
from loyalty.imports.complete_journey import complete_journey_import, dataset_load
from loyalty.ledger.services import program_create
from members.models import Member
from offers.models import Coupon, CouponUse, Offer, OfferRedemption
from segments.models import Segment, SegmentMembership, SegmentRefresh

from .conftest import DATA

pytestmark = pytest.mark.django_db


@pytest.fixture
def plain(db):
    return program_create(name="CJ plain", earn_rate=Decimal("1"), earn_rounding="ROUND_DOWN")


@pytest.fixture(scope="module")
def files():
    read = lambda name: pd.read_parquet(DATA / f"{name}.parquet")  # noqa: E731
    return {n: read(n) for n in ("campaign_descriptions", "campaigns", "coupons", "coupon_redemptions", "transactions")}


def _counts() -> list[int]:
    return [
        m.objects.count()
        for m in (Offer, Segment, SegmentMembership, SegmentRefresh, Coupon, CouponUse, OfferRedemption, AuditEvent)
    ]


def test_each_campaign_becomes_an_offer_of_coupon_discounts_on_its_products(plain, cj_dataset, files):
    complete_journey_import(dataset=cj_dataset, program=plain)

    descriptions = files["campaign_descriptions"]
    assert Offer.objects.filter(program=plain, source="complete_journey").count() == len(descriptions) == 27
    for row in descriptions.itertuples(index=False):
        offer = Offer.objects.get(source="complete_journey", external_id=str(row.campaign_id))
        assert offer.name == f"CJ campaign {row.campaign_id} ({row.campaign_type})"
        assert offer.valid_from == dt.datetime.combine(row.start_date.date(), dt.time(), tzinfo=dt.UTC)
        assert offer.valid_until == dt.datetime.combine(
            row.end_date.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
        )
        assert offer.status == "ended"  # dates kept: 2017 is past
        assert (offer.condition_kind, offer.benefit_kind) == ("sku_bought", "amount_coupon")
        products = files["coupons"].loc[files["coupons"]["campaign_id"] == row.campaign_id, "product_id"]
        assert sorted(offer.condition_skus) == sorted({str(p) for p in products})
        paid = files["transactions"][files["transactions"]["coupon_disc"] > 0]
        day = paid["transaction_timestamp"].dt.date
        during = paid[paid["product_id"].isin(products) & (day >= row.start_date.date()) & (day <= row.end_date.date())]
        median = during["coupon_disc"].median()
        assert offer.benefit_value == (
            Decimal(str(round(median, 2))).quantize(Decimal("0.01")) if len(during) else None
        )
        assert [p.name for p in offer.partners.all()] == ["Complete Journey Stores"]
    assert any(o.condition_skus for o in Offer.objects.all())
    assert Offer.objects.filter(benefit_value__gt=0).exists()  # the slice has coupon lines in campaigns


def test_dates_shifted_to_end_yesterday_make_late_campaigns_active(plain, files):
    """Shifted like the command shifts them, campaigns whose last day is not past are active."""
    dataset = dataset_load(data_dir=DATA)  # the last basket falls yesterday

    complete_journey_import(dataset=dataset, program=plain)

    today = dt.date.today()
    for campaign in dataset.campaigns:
        offer = Offer.objects.get(external_id=campaign["external_id"])
        assert offer.status == ("ended" if campaign["ends_on"] < today else "active")
    assert Offer.objects.filter(status="active").exists() and Offer.objects.filter(status="ended").exists()


def test_targeted_households_are_the_offers_static_segment(plain, cj_dataset, files):
    complete_journey_import(dataset=cj_dataset, program=plain)

    targeting = files["campaigns"]
    kinds = dict(files["campaign_descriptions"][["campaign_id", "campaign_type"]].itertuples(index=False))
    for campaign_id, rows in targeting.groupby("campaign_id"):
        offer = Offer.objects.get(external_id=str(campaign_id))
        (segment,) = offer.segments_include.all()
        assert segment.name == f"CJ campaign {campaign_id} ({kinds[campaign_id]}) — targeted"
        assert segment.kind == "static"
        members = set(
            SegmentMembership.objects.filter(segment=segment, left_at__isnull=True).values_list(
                "member__external_id", flat=True
            )
        )
        assert members == {f"cj-{h}" for h in rows["household_id"]}
        assert segment.size == len(members)
    assert Segment.objects.filter(name__startswith="CJ campaign").count() == 27  # untargeted ones stay empty


def test_coupons_uses_and_redemptions_match_the_data(plain, cj_dataset, files):
    complete_journey_import(dataset=cj_dataset, program=plain)

    redemptions, coupons = files["coupon_redemptions"], files["coupons"]
    pairs = set(coupons[["campaign_id", "coupon_upc"]].itertuples(index=False, name=None)) | set(
        redemptions[["campaign_id", "coupon_upc"]].itertuples(index=False, name=None)
    )
    assert set(Coupon.objects.values_list("code", flat=True)) == {f"CJ{c}-{u}" for c, u in pairs}
    assert set(Coupon.objects.values_list("source", "member", "status")) == {("import", None, "active")}
    assert CouponUse.objects.count() == len(redemptions)
    targeted = files["campaigns"].groupby("campaign_id").size()
    for coupon in Coupon.objects.select_related("offer"):
        campaign, upc = int(coupon.offer.external_id), int(coupon.code.split("-")[1])
        used = redemptions[(redemptions["campaign_id"] == campaign) & (redemptions["coupon_upc"] == upc)]
        assert coupon.uses_count == len(used) == coupon.uses.count()
        assert coupon.max_uses == max(int(targeted.get(campaign, 0)), len(used), 1)
        assert coupon.expires_at == coupon.offer.valid_until
    use = CouponUse.objects.select_related("coupon", "member").order_by("used_at", "id").first()
    first = redemptions.sort_values("redemption_date").iloc[0]
    assert use.used_at.date() == first["redemption_date"].date()
    assert use.member.external_id == f"cj-{first['household_id']}" and use.partner.name == "Complete Journey Stores"

    per_member_coupon = redemptions.drop_duplicates(["campaign_id", "coupon_upc", "household_id"])
    assert OfferRedemption.objects.count() == len(per_member_coupon)
    for offer in Offer.objects.all():
        expected = int((per_member_coupon["campaign_id"] == int(offer.external_id)).sum())
        assert offer.redemptions_count == offer.redemptions.count() == expected
    assert Offer.objects.filter(redemptions_count__gt=0).count() == redemptions["campaign_id"].nunique()
    assert set(OfferRedemption.objects.values_list("channel", "points", "purchase")) == {("import", 0, None)}


def test_a_second_import_creates_nothing_twice(plain, cj_dataset):
    complete_journey_import(dataset=cj_dataset, program=plain)
    counts = _counts()
    figures = sorted(Offer.objects.values_list("external_id", "redemptions_count"))
    uses = sorted(Coupon.objects.values_list("code", "uses_count"))

    report = complete_journey_import(dataset=cj_dataset, program=plain)

    assert vars(report.campaigns) == {
        "offers": 0,
        "segment_members": 0,
        "coupons": 0,
        "coupon_uses": 0,
        "offer_redemptions": 0,
    }
    assert _counts() == counts
    assert sorted(Offer.objects.values_list("external_id", "redemptions_count")) == figures
    assert sorted(Coupon.objects.values_list("code", "uses_count")) == uses


def _state() -> dict:
    """The rows the campaign import writes, keyed by what does not depend on ids."""
    ext = dict(Member.objects.values_list("pk", "external_id"))
    return {
        "offers": sorted(
            tuple(repr(v) for v in row)
            for row in Offer.objects.values_list(
                "external_id",
                "name",
                "description",
                "status",
                "condition_kind",
                "condition_skus",
                "benefit_kind",
                "valid_from",
                "valid_until",
                "redemptions_count",
                "points_issued",
                "program__name",
                "segments_include__name",
                "partners__name",
            )
        ),
        "members": sorted(
            (name, ext[m]) for name, m in SegmentMembership.objects.values_list("segment__name", "member_id")
        ),
        "coupons": sorted(
            Coupon.objects.values_list(
                "code", "offer__external_id", "source", "max_uses", "uses_count", "status", "valid_from", "expires_at"
            )
        ),
        "uses": sorted(
            (c, ext[m], k.split(":", 3)[3], p, s, at)
            for c, m, k, p, s, at in CouponUse.objects.values_list(
                "coupon__code", "member_id", "idempotency_key", "partner__name", "status", "used_at"
            )
        ),
        "redemptions": sorted(
            (o, ext[m], c, p, ch, s, at)
            for o, m, c, p, ch, s, at in OfferRedemption.objects.values_list(
                "offer__external_id", "member_id", "coupon__code", "points", "channel", "status", "created_at"
            )
        ),
    }


def test_an_import_in_parts_ends_with_the_rows_of_one_import(plain, cj_dataset):
    savepoint = transaction.savepoint()
    complete_journey_import(dataset=cj_dataset, program=plain)
    whole = _state()
    transaction.savepoint_rollback(savepoint)

    complete_journey_import(dataset=dataset_load(data_dir=DATA, keep_dates=True, households=2), program=plain)
    complete_journey_import(dataset=dataset_load(data_dir=DATA, keep_dates=True, households=4), program=plain)
    complete_journey_import(dataset=cj_dataset, program=plain)

    assert _state() == whole


@pytest.mark.postgres
def test_postgresql_copy_and_the_orm_path_write_the_same_rows(plain, cj_dataset, monkeypatch):
    """On PostgreSQL the rows go in by COPY; elsewhere by bulk_create: both give the same rows."""
    import loyalty.core.rows

    savepoint = transaction.savepoint()
    complete_journey_import(dataset=cj_dataset, program=plain)
    copied = _state()
    transaction.savepoint_rollback(savepoint)

    monkeypatch.setattr(loyalty.core.rows, "is_postgresql", lambda: False)
    complete_journey_import(dataset=cj_dataset, program=plain)

    assert _state() == copied
    assert copied["uses"] and copied["redemptions"] and copied["members"]
