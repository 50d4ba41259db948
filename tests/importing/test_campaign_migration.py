"""Campaigns kept raw in the activity tables by earlier imports become offers, segments, coupons,
uses and redemptions (offers migration 0004), as the import now writes them; the raw tables go
(activity migration 0005)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import MemberFactory

BEFORE = [("activity", "0004_config_stamp_triggers"), ("offers", "0003_config_stamp_triggers")]
AFTER = [
    ("activity", "0005_imported_campaigns_are_offers"),
    ("offers", "0004_campaigns_from_activity"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_raw_campaigns_become_offers_and_the_raw_tables_go():
    alice, bob = MemberFactory(), MemberFactory()
    old = _migrate(BEFORE)
    try:
        Campaign = old.get_model("activity", "ImportedCampaign")
        campaign = Campaign.objects.create(
            source="complete_journey",
            external_id="8",
            kind="Type A",
            starts_on=dt.date(2017, 5, 8),
            ends_on=dt.date(2017, 6, 25),
        )
        for member in (alice, bob):
            old.get_model("activity", "CampaignTarget").objects.create(campaign=campaign, member_id=member.pk)
        Redemption = old.get_model("activity", "CouponRedemption")
        for member, code, day in ((alice, "51800000050", 10), (alice, "51800000050", 12), (bob, "10000085364", 11)):
            Redemption.objects.create(
                campaign=campaign, member_id=member.pk, coupon_code=code, redeemed_on=dt.date(2017, 5, day)
            )

        new = _migrate(AFTER)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    offer = new.get_model("offers", "Offer").objects.get(source="complete_journey", external_id="8")
    assert (offer.name, offer.status, offer.benefit_kind) == ("CJ campaign 8 (Type A)", "ended", "amount_coupon")
    assert offer.valid_from == dt.datetime(2017, 5, 8, tzinfo=dt.UTC)
    assert offer.valid_until == dt.datetime(2017, 6, 26, tzinfo=dt.UTC)
    (segment,) = offer.segments_include.all()
    assert segment.name == "CJ campaign 8 (Type A) — targeted" and segment.size == 2
    Membership = new.get_model("segments", "SegmentMembership")
    assert set(Membership.objects.filter(segment=segment).values_list("member_id", flat=True)) == {alice.pk, bob.pk}
    coupons = {c.code: c for c in new.get_model("offers", "Coupon").objects.all()}
    assert set(coupons) == {"CJ8-51800000050", "CJ8-10000085364"}
    assert [coupons["CJ8-51800000050"].uses_count, coupons["CJ8-10000085364"].uses_count] == [2, 1]
    assert new.get_model("offers", "CouponUse").objects.count() == 3
    assert new.get_model("offers", "OfferRedemption").objects.filter(offer=offer).count() == 2
    assert offer.redemptions_count == 2
    tables = connection.introspection.table_names()
    assert "activity_importedcampaign" not in tables and "activity_couponredemption" not in tables
