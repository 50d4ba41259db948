import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.partners import webhooks
from loyalty.partners.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from loyalty.partners.services import webhook_endpoint_create
from tests.api.conftest import just_now, purchase_body

pytestmark = pytest.mark.django_db


class Receiver:
    def __init__(self, status=200):
        self.status = status
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run after-commit callbacks (webhook dispatch) as a real commit would."""

    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://localhost/x",
    ],
)
def test_webhook_urls_must_be_https_and_public(url, api):
    with pytest.raises(ValidationFailed) as exc:
        webhook_endpoint_create(partner=api.partner, url=url, event_types=["points.earned"])
    assert exc.value.code == "invalid_webhook_url"
    response = api.post("/api/v1/webhooks/", {"url": url, "event_types": ["points.earned"]}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "invalid_webhook_url"


def test_partner_registers_lists_and_deletes_endpoints_secret_shown_once(api, receiver):
    created = api.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["points.earned"]}, format="json")
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    listed = api.get("/api/v1/webhooks/").json()
    assert [e["url"] for e in listed] == [receiver.url] and "secret" not in listed[0]
    assert api.delete(f"/api/v1/webhooks/{created.json()['id']}/").status_code == 204
    assert api.get("/api/v1/webhooks/").json() == []


def test_events_are_signed_per_standard_webhooks_and_only_for_linked_members(
    api, other_api, receiver, enrolled, commit
):
    secret = api.post(
        "/api/v1/webhooks/", {"url": receiver.url, "event_types": ["points.earned"]}, format="json"
    ).json()["secret"]
    other_api.post(
        "/api/v1/webhooks/", {"url": receiver.url + "/rival", "event_types": ["points.earned"]}, format="json"
    )
    assert (
        commit(
            api.post, "/api/v1/purchases/", purchase_body(enrolled, occurred_at=just_now()), format="json"
        ).status_code
        == 201
    )
    assert len(receiver.requests) == 1  # the rival partner is not linked to this member
    headers, body = receiver.requests[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    payload = Webhook(secret).verify(
        body, {k: lowered[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    )
    assert payload["type"] == "points.earned" and payload["data"]["points"] == 100
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_failures_retry_with_backoff_and_disable_after_3_days(api, receiver, enrolled, commit):
    receiver.status = 500
    api.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["points.earned"]}, format="json")
    start = dt.datetime.now(dt.UTC)
    clock.set_now(start)
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled, occurred_at=just_now()), format="json")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    first_gap = delivery.next_attempt_at - start
    clock.set_now(delivery.next_attempt_at)
    delivery = webhooks.delivery_attempt(delivery=delivery)
    assert delivery.next_attempt_at - clock.now() > first_gap  # exponential
    assert delivery.attempt_log.count() == 2 and delivery.attempt_log.first().status_code == 500
    clock.set_now(start + dt.timedelta(days=3, minutes=1))
    delivery = webhooks.delivery_attempt(delivery=delivery)
    endpoint = WebhookEndpoint.objects.get()
    assert (
        delivery.status == DeliveryStatus.FAILED
        and not endpoint.is_active
        and "failing since" in endpoint.disabled_reason
    )


def test_410_disables_the_endpoint_at_once(api, receiver, enrolled, commit):
    receiver.status = 410
    api.post("/api/v1/webhooks/", {"url": receiver.url, "event_types": ["points.earned"]}, format="json")
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled, occurred_at=just_now()), format="json")
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason


def test_payload_is_json(api, receiver, enrolled, commit):
    api.post(
        "/api/v1/webhooks/", {"url": receiver.url, "event_types": ["points.redeemed", "points.earned"]}, format="json"
    )
    commit(api.post, "/api/v1/purchases/", purchase_body(enrolled, occurred_at=just_now()), format="json")
    commit(
        api.post, "/api/v1/redemptions/", {"member_number": enrolled, "points": 10, "external_id": "r"}, format="json"
    )
    assert [json.loads(body)["type"] for _, body in receiver.requests] == ["points.earned", "points.redeemed"]
