"""The HTTP gateway adapter (SMS and push) against a stub server on 127.0.0.1: bearer token, the
send key as Idempotency-Key, the JSON body; a refusal or an unreachable gateway is a failed message."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from loyalty.messaging import services
from loyalty.messaging.models import Message, MessageStatus, Purpose, Reason
from loyalty.messaging.providers import HttpProvider, Outgoing, Sent
from tests.messaging.conftest import make_content, make_member


class Gateway(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, answer = (
            (201, {"sid": f"SM{len(Gateway.received)}"}) if self.path == "/ok" else (503, {"error": "down"})
        )
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    Gateway.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_provider_posts_json_with_bearer_token_and_idempotency_key(gateway):
    provider = HttpProvider(url=f"{gateway}/ok", token="tok-1")
    [answer] = provider.send_many(
        [Outgoing(send_key="k:1:sms", channel="sms", to="+15550100", subject="Hi", text="Body")]
    )

    assert answer == Sent(provider_id="SM1")
    [request] = Gateway.received
    assert request["headers"]["Authorization"] == "Bearer tok-1"
    assert request["headers"]["Idempotency-Key"] == "k:1:sms"
    assert request["body"] == {
        "channel": "sms",
        "to": "+15550100",
        "title": "Hi",
        "body": "Body",
        "idempotency_key": "k:1:sms",
    }


@pytest.mark.django_db
def test_sms_through_the_configured_gateway_is_sent_with_the_gateways_id(gateway, settings, noon):
    settings.MESSAGING_SMS_URL, settings.MESSAGING_SMS_TOKEN = f"{gateway}/ok", "tok-2"
    member = make_member(phone="+15550123")
    ids = services.messages_queue(
        content=make_content(purpose=Purpose.SERVICE, body="Your code is ready"),
        member_ids=[member.pk],
        channels=["sms"],
        source="staff",
        key="k",
        dispatch=False,
    )
    services.messages_send(message_ids=ids)

    message = Message.objects.get(pk=ids[0])
    assert (message.status, message.provider_id) == (MessageStatus.SENT, "SM1")
    assert Gateway.received[0]["body"]["to"] == "+15550123"
    assert Gateway.received[0]["body"]["body"] == "Your code is ready"


@pytest.mark.django_db
def test_a_gateway_error_fails_the_message_and_a_bounce_callback_marks_it(gateway, settings, noon):
    settings.MESSAGING_PUSH_URL, settings.MESSAGING_PUSH_TOKEN = f"{gateway}/down", "tok-3"
    member = make_member()
    content = make_content(purpose=Purpose.SERVICE)
    ids = services.messages_queue(
        content=content, member_ids=[member.pk], channels=["push"], source="staff", key="a", dispatch=False
    )
    services.messages_send(message_ids=ids)
    failed = Message.objects.get(pk=ids[0])

    settings.MESSAGING_PUSH_URL = f"{gateway}/ok"
    ids = services.messages_queue(
        content=content, member_ids=[member.pk], channels=["push"], source="staff", key="b", dispatch=False
    )
    services.messages_send(message_ids=ids)
    sent = Message.objects.get(pk=ids[0])
    unauthenticated = Client().post("/m/status/", {"id": sent.provider_id, "status": "bounced"}, "application/json")
    callback = Client().post(
        "/m/status/",
        {"id": sent.provider_id, "status": "bounced"},
        "application/json",
        HTTP_AUTHORIZATION="Bearer tok-3",
    )

    assert (failed.status, failed.reason) == (MessageStatus.FAILED, Reason.PROVIDER_ERROR)
    assert "503" in failed.error
    assert unauthenticated.status_code == 401
    assert callback.json() == {"updated": 1}
    sent.refresh_from_db()
    assert (sent.status, sent.reason) == (MessageStatus.BOUNCED, Reason.BOUNCED)


def test_an_unreachable_gateway_is_a_failure_not_an_exception():
    provider = HttpProvider(url="http://127.0.0.1:9/", token="t", timeout=2)
    [answer] = provider.send_many([Outgoing(send_key="k", channel="sms", to="+1", subject="", text="x")])

    assert not isinstance(answer, Sent) and "Connect" in answer.error
