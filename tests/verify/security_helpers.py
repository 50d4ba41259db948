"""Helpers of the security proofs (promises 10-14): a webhook receiver on a real local HTTP server
that deduplicates by ``webhook-id`` and verifies with the standardwebhooks library, and a resolver
double (``socket.getaddrinfo``) for DNS rebinding."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

REAL_GETADDRINFO = socket.getaddrinfo
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class Receiver:
    """A partner's endpoint: answers ``statuses`` in turn (the last one repeated), keeps every
    request, and handles each ``webhook-id`` once (``handled``) after verifying its signature
    with ``secret`` through the standardwebhooks library, as a partner would."""

    def __init__(self, port: int, statuses: list[int], location: str | None = None):
        self.statuses, self.location = list(statuses), location
        self.secret: str | None = None
        self.requests: list[tuple[dict[str, str], str]] = []
        self.handled: dict[str, dict] = {}  # webhook-id -> verified payload, once
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append((headers, body))
                    status = receiver.statuses[min(len(receiver.requests), len(receiver.statuses)) - 1]
                    if 200 <= status < 300:
                        receiver.handle(headers, body)
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, headers: dict[str, str], body: str) -> None:
        try:
            payload = Webhook(self.secret).verify(body, {k: headers[k] for k in SIGNATURE_HEADERS})
        except (WebhookVerificationError, KeyError) as exc:
            self.rejected.append(str(exc))
            return
        self.handled.setdefault(headers["webhook-id"], payload)  # a repeated id is handled once

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def receivers() -> Iterator:
    """A factory of receivers on the ports of this part, closed at the end."""
    made: list[Receiver] = []
    ports = iter(range(18130, 18140))  # the ports of this part of `make verify`

    def make(statuses: list[int], location: str | None = None) -> Receiver:
        made.append(Receiver(next(ports), statuses, location))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def resolver(answers: dict[str, list[str]]):
    """A ``socket.getaddrinfo`` answering the named hosts from ``answers`` (one address per call,
    the last repeated: a DNS answer that changes), every other host as usual."""
    calls: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        calls[host] = calls.get(host, 0) + 1
        address = answers[host][min(calls[host], len(answers[host])) - 1]
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    return getaddrinfo, calls
