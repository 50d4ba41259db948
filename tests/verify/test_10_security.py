"""Promise 14: throttling is atomic under concurrency and answers 429 with Retry-After; login lockout
stops an attacker without locking the member out; API keys and webhook secrets are never stored in
plain text; `check --deploy` is clean in production mode; every page carries a Content-Security-
Policy whose scripts are only files of this site (no 'unsafe-inline'), and runs no inline script."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from loyalty.api import throttling
from loyalty.partners.services import partner_key_create, webhook_endpoint_create
from tests.concurrency import run_together
from tests.core.test_csp import directives, inline_scripts
from tests.portal.conftest import PASSWORD, logged_in, make_member, shop
from tests.verify.test_08_authorization import STAFF, classify, concrete, url_patterns

ROOT = Path(__file__).resolve().parents[2]


# --- throttling ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_at_a_limit_let_exactly_the_limit_through(monkeypatch, figure):
    """Rule: N requests at once with one key against a limit of L per minute: exactly L pass
    (an atomic counter in Redis), every other one is 429 problem+json with a Retry-After."""
    assert settings.REDIS_URL, "make verify runs against Redis"
    limit, n = 10, 40
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "partner": f"{limit}/min"}
    for throttle in (throttling.PerKeyThrottle, throttling.BadKeyAddressThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
    _partner, _created, raw = partner_key_create(partner_name=f"Burst {uuid.uuid4()}", scopes=["read"])

    def call(_i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        response = client.get("/api/v1/webhooks/")
        return response.status_code, response.get("Retry-After"), response.get("Content-Type")

    results = run_together(n, call)

    assert not [r for r in results if isinstance(r, BaseException)], results
    codes = Counter(code for code, _retry, _type in results)
    assert codes == {200: limit, 429: n - limit}, codes
    refused = [(retry, kind) for code, retry, kind in results if code == 429]
    assert all(retry and int(retry) > 0 and kind == "application/problem+json" for retry, kind in refused)
    waits = sorted(int(retry) for retry, _kind in refused)
    figure(
        14,
        f"{n} concurrent requests at {limit}/min",
        f"{codes[200]} × 200, {codes[429]} × 429 with Retry-After {waits[0]}-{waits[-1]} s",
    )


# --- lockout ---------------------------------------------------------------------------------------------

ATTACKER, MEMBER_DESK = "203.0.113.66", "198.51.100.10"


@pytest.mark.django_db
def test_an_attacker_is_locked_out_and_the_member_is_not(figure):
    """Rule: AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that pair
    out (429, even with the right password); the same user from another address still signs in
    (portal and admin login alike)."""
    from loyalty.imports.management.commands.load_demo import demo_program_configure

    demo_program_configure()
    member = make_member()
    staff = get_user_model().objects.create_user("desk-sam", password=PASSWORD, is_staff=True)
    outcome = {}
    for page, username in (("/login/", member.user.get_username()), ("/admin/login/", staff.get_username())):
        attacker = Client(REMOTE_ADDR=ATTACKER)
        failures = [
            attacker.post(page, {"username": username, "password": f"guess-{i}"}).status_code
            for i in range(settings.AXES_FAILURE_LIMIT)
        ]
        locked = attacker.post(page, {"username": username, "password": PASSWORD})
        other_user_same_address = Client(REMOTE_ADDR=ATTACKER).post(page, {"username": "nobody", "password": "x"})
        owner = Client(REMOTE_ADDR=MEMBER_DESK).post(page, {"username": username, "password": PASSWORD})
        assert all(code == 200 for code in failures[:-1]), failures  # the form again, with its error
        assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
        assert other_user_same_address.status_code == 200  # per username and address: not the whole address
        assert owner.status_code == 302, owner.status_code
        outcome[page] = (len(failures), locked.status_code, owner.status_code)
    assert AccessAttempt.objects.filter(ip_address=ATTACKER).count() >= 2
    figure(
        14,
        "login lockout",
        "; ".join(
            f"{page}: {f} failures → attacker {lock}, member from another address {ok}"
            for page, (f, lock, ok) in outcome.items()
        ),
    )


# --- secrets at rest -------------------------------------------------------------------------------------


def text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = current_schema()
                 AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')"""
        )
        return cursor.fetchall()


@pytest.mark.django_db
def test_api_keys_and_webhook_secrets_are_not_stored_in_plain_text(settings, figure):
    """Rule: no column of any table holds an API key or a webhook signing secret (nor the base64
    body of the secret): keys are hashed, secrets encrypted."""
    settings.WEBHOOKS_ALLOW_HTTP_LOCALHOST = True
    raws, secrets = [], []
    for i in range(3):
        partner, _created, raw = partner_key_create(partner_name=f"Secretive {i}", scopes=["read", "write"])
        raws.append(raw)
        _endpoint, secret = webhook_endpoint_create(
            partner=partner, url=f"http://127.0.0.1:1813{i}/h", event_types=["points.earned"]
        )
        secrets.append(secret)
    # the API used once with each key (last_used_at, audit rows, idempotency rows written)
    for raw in raws:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        assert (
            client.post(
                "/api/v1/members/",
                {"email": f"{uuid.uuid4().hex}@example.com"},
                format="json",
                HTTP_IDEMPOTENCY_KEY=raw[-12:],
            ).status_code
            == 201
        )
    needles = raws + [raw.split(".", 1)[1] for raw in raws] + secrets + [s.removeprefix("whsec_") for s in secrets]
    columns = text_columns()
    found = []
    with connection.cursor() as cursor:
        for table, column in columns:
            for needle in needles:
                cursor.execute(
                    f'SELECT 1 FROM "{table}" WHERE position(%s in "{column}"::text) > 0 LIMIT 1',  # noqa: S608 - names from the catalog
                    [needle],
                )
                if cursor.fetchone():
                    found.append((table, column, needle[:8]))
    assert found == []
    tables = len({t for t, _c in columns})
    figure(
        14,
        "secrets at rest",
        f"{len(raws)} API keys + {len(secrets)} webhook secrets searched in {len(columns)} text columns of {tables} tables: 0 found",
    )


# --- deploy checks ---------------------------------------------------------------------------------------


def test_check_deploy_is_clean_with_a_production_environment(figure):
    """Rule: `manage.py check --deploy --fail-level WARNING` passes in production mode."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "WEBHOOK_SECRETS_KEY")
    }
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": "x7!Qz" * 12 + "Lm9#pR2$vT",
            "ALLOWED_HOSTS": "loyalty.example.com",
            "WEBHOOK_SECRETS_KEY": "K3f1bM0r7yXo0tM2Vw2bS9yX8n1yQd6oJm3bHcVb4rE=",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    figure(14, "check --deploy --fail-level WARNING (production env)", result.stdout.strip().splitlines()[-1])


# --- Content-Security-Policy -----------------------------------------------------------------------------


def policy_ok(response) -> list[str]:
    problems = []
    header = response.get("Content-Security-Policy")
    if not header:
        return ["no Content-Security-Policy"]
    policy = directives(response)
    scripts = policy.get("script-src", policy.get("default-src", []))
    if "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or not scripts:
        problems.append(f"script-src {scripts}")
    if response.get("Content-Type", "").startswith("text/html") and inline_scripts(response.content.decode()):
        problems.append("inline script")
    return problems


@pytest.mark.django_db
def test_every_page_has_a_policy_without_unsafe_inline_scripts(figure):
    """Rule: the portal (logged out and in), the staff dashboards and every admin screen (index,
    each app, each changelist, add page and an object's change page) answer with a CSP whose
    scripts exclude 'unsafe-inline' and run no inline script."""
    from loyalty.imports.management.commands.load_demo import demo_program_configure

    demo_program_configure()
    member = make_member()
    shop(member)
    member_client = logged_in(member)
    root = get_user_model().objects.create_superuser("csp-root", "root@example.com", "pw-not-used")
    staff_client = Client()
    staff_client.force_login(root)
    anonymous = Client()
    pages: list[tuple[Client, str]] = []
    for route, name in url_patterns():
        kind = classify(route, name)
        if "<" in route or "(?P" in route:
            continue
        if kind in ("public",) and name and name.startswith("portal:"):
            pages.append((anonymous, "/" + route))
        elif kind == "portal":
            pages.append((member_client, "/" + route))
        elif name in STAFF or kind == "admin":
            pages.append((staff_client, concrete(route)))
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages += [(staff_client, base), (staff_client, base + "add/")]
        obj = model._default_manager.order_by("pk").first() if model._meta.managed else None
        if obj is not None:
            pages.append((staff_client, f"{base}{obj.pk}/change/"))
    statuses, wrong = Counter(), []
    for client, url in pages:
        response = client.get(url)
        statuses[response.status_code // 100 * 100] += 1
        if response.status_code >= 500:
            wrong.append((url, response.status_code))
        elif problems := policy_ok(response):
            wrong.append((url, problems))
    assert wrong == []
    figure(
        14,
        "CSP on every page",
        f"{len(pages)} pages (portal, /staff/, admin): 0 without a policy, 0 'unsafe-inline', 0 inline scripts ({', '.join(f'{n} × {c // 100}xx' for c, n in sorted(statuses.items()))})",
    )
