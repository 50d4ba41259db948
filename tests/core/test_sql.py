"""Units of work (loyalty.core.sql.Writes): one statement on PostgreSQL, one per row elsewhere,
the same rows either way."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core.sql import Writes, row_insert
from loyalty.ledger.models import Purchase, PurchaseLine
from loyalty.ledger.selectors import program_default
from loyalty.partners.models import Partner, PartnerMember
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC)


def _purchase(member, partner, external_id="till-1", **fields) -> Purchase:
    values = {
        "program": program_default(),
        "member": member,
        "partner": partner,
        "external_id": external_id,
        "occurred_at": NOW,
        "currency": "USD",
        "total": Decimal("10.00"),
        "eligible_amount": Decimal("10.00"),
        "created_at": NOW,
        **fields,
    }
    return Purchase(**values)


def _lines(purchase: Purchase) -> list[PurchaseLine]:
    return [
        PurchaseLine(purchase=purchase, sku=sku, category="food", quantity=Decimal("1"), amount=Decimal("5.00"))
        for sku in ("A", "B")
    ]


def test_rows_that_point_at_earlier_rows_of_the_unit_get_their_ids():
    member, partner = MemberFactory(), Partner.objects.create(name="Writes")
    purchase = _purchase(member, partner)
    writes = Writes()
    writes.insert(purchase, skip_if_exists=True)
    writes.insert_many(_lines(purchase))
    writes.insert(PartnerMember(partner=partner, member=member, via="card", linked_at=NOW), skip_if_exists=True)
    writes.add(Purchase, None, increments={})  # nothing to add: no statement
    assert writes.run() is True
    stored = Purchase.objects.get(pk=purchase.pk)
    assert (stored.external_id, stored.total, stored.occurred_at) == ("till-1", Decimal("10.00"), NOW)
    assert sorted(stored.lines.values_list("sku", flat=True)) == ["A", "B"]
    assert PartnerMember.objects.filter(partner=partner, member=member).count() == 1


def test_a_skipped_head_writes_nothing_after_it():
    member, partner = MemberFactory(), Partner.objects.create(name="Writes")
    row_insert(_purchase(member, partner))
    again = _purchase(member, partner, total=Decimal("99.00"))
    writes = Writes()
    writes.insert(again, skip_if_exists=True)
    writes.insert_many(_lines(again))
    writes.add(Purchase, Purchase.objects.get().pk, increments={"points_earned": 5})
    assert writes.run() is False
    assert again.pk is None
    assert PurchaseLine.objects.count() == 0
    assert Purchase.objects.get().points_earned == 0


def test_a_skipped_row_after_the_head_leaves_only_itself_out():
    member, partner = MemberFactory(), Partner.objects.create(name="Writes")
    PartnerMember.objects.create(partner=partner, member=member, via="enrollment", linked_at=NOW)
    purchase = _purchase(member, partner)
    link = PartnerMember(partner=partner, member=member, via="card", linked_at=NOW)
    writes = Writes()
    writes.insert(purchase)
    writes.insert(link, skip_if_exists=True)
    writes.add(Purchase, None, increments={})
    assert writes.run() is True
    assert purchase.pk is not None and link.pk is None
    assert PartnerMember.objects.get().via == "enrollment", "the existing link is kept as it was"


def test_increments_add_to_what_is_stored():
    member, partner = MemberFactory(), Partner.objects.create(name="Writes")
    first = _purchase(member, partner)
    row_insert(first)
    writes = Writes()
    writes.insert(_purchase(member, partner, external_id="till-2"))
    writes.add(Purchase, first.pk, increments={"points_earned": 7, "returned_amount": 0}, sets={"store_code": "S9"})
    assert writes.run() is True
    stored = Purchase.objects.get(pk=first.pk)
    assert (stored.points_earned, stored.store_code) == (7, "S9")


def test_one_row_is_changed_once_per_unit():
    """PostgreSQL applies only one of two updates of a row in one statement: refused up front."""
    writes = Writes()
    writes.add(Purchase, 1, increments={"points_earned": 7})
    with pytest.raises(ValueError, match="once"):
        writes.add(Purchase, 1, increments={"points_earned": 3})


def test_a_unit_starts_with_an_insert():
    writes = Writes()
    writes.add(Purchase, 1, increments={"points_earned": 7})
    with pytest.raises(ValueError, match="starts with an insert"):
        writes.run()
