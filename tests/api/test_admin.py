import pytest
from django.urls import reverse

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def test_partner_activity_and_webhook_admin_pages_render(client):
    client.force_login(StaffFactory(username="root"))
    for name in (
        "activity_earningrule",
        "activity_eventrule",
        "activity_eventtype",
        "activity_memberevent",
        "partners_partner",
        "partners_partnerapikey",
        "partners_webhookendpoint",
        "partners_webhookdelivery",
        "partners_partnermember",
        "partners_outboxevent",
    ):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
