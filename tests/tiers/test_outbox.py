"""The outbox (loyalty.partners): rows written now, delivered by a later job."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.partners.models import Partner
from loyalty.partners.services import outbox_record, webhook_endpoint_create
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _partner() -> Partner:
    return Partner.objects.create(name="Outbox partner")


def test_outbox_record_writes_a_json_ready_unpublished_row_when_an_endpoint_takes_the_type(settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    webhook_endpoint_create(partner=_partner(), url="http://127.0.0.1:9/hook", event_types=["tier.upgraded"])
    member = MemberFactory()
    with clock.frozen(dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC)):
        event = outbox_record(
            event_type="tier.upgraded", member=member, payload={"amount": Decimal("1.50"), "on": dt.date(2030, 1, 2)}
        )
    event.refresh_from_db()
    assert event.payload == {"amount": "1.50", "on": "2030-01-02"}
    assert event.created_at == dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC) and event.published_at is None


def test_an_event_no_endpoint_takes_is_written_already_published(settings):
    """Nothing would fan it out: the row is kept (history, bulk readers) but needs no dispatch."""
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    webhook_endpoint_create(partner=_partner(), url="http://127.0.0.1:9/hook", event_types=["points.earned"])
    with clock.frozen(dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC)):
        event = outbox_record(event_type="tier.upgraded", member=MemberFactory(), payload={})
    event.refresh_from_db()
    assert event.published_at == dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC)


def test_outbox_record_refuses_an_event_type_without_a_verb():
    with pytest.raises(ValidationFailed) as error:
        outbox_record(event_type="tier", member=None, payload={})
    assert error.value.code == "invalid_event_type"
