"""Admin login lockout (django-axes): by username and address together, a page that says when to
retry, a cool-off that ends it, and a command that lifts it."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
ATTACKER = "203.0.113.66"
STAFF_DESK = "198.51.100.10"


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_user("sam", password=PASSWORD, is_staff=True)


def sign_in(password: str, address: str, username: str = "sam"):
    return Client(REMOTE_ADDR=address).post("/admin/login/", {"username": username, "password": password})


def lock_out(address: str = ATTACKER) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("wrong", address)


def test_right_password_signs_in(staff_user):
    assert sign_in(PASSWORD, STAFF_DESK).status_code == 302


def test_repeated_wrong_passwords_lock_out_that_username_from_that_address(staff_user):
    lock_out()

    response = sign_in(PASSWORD, ATTACKER)

    assert response.status_code == 429
    assert b"Try again after" in response.content
    assert 0 < int(response["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()


def test_locked_out_staff_is_told_the_time_to_retry(staff_user):
    lock_out()
    last = AccessAttempt.objects.get(username="sam").attempt_time

    response = sign_in(PASSWORD, ATTACKER)

    retry_at = last + settings.AXES_COOLOFF_TIME
    assert retry_at.strftime("%H:%M").encode() in response.content


def test_failures_from_another_address_do_not_lock_the_staff_user_out(staff_user):
    lock_out(ATTACKER)

    assert sign_in(PASSWORD, STAFF_DESK).status_code == 302


def test_lockout_ends_after_the_cool_off(staff_user):
    lock_out()
    AccessAttempt.objects.update(
        attempt_time=dt.datetime.now(dt.UTC) - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )

    assert sign_in(PASSWORD, ATTACKER).status_code == 302


def test_attempts_during_the_lockout_do_not_prolong_it(staff_user):
    lock_out()
    started = AccessAttempt.objects.get(username="sam").attempt_time
    for _ in range(3):
        sign_in("wrong", ATTACKER)

    assert AccessAttempt.objects.get(username="sam").attempt_time == started


def test_superuser_command_unlocks_a_username(staff_user):
    lock_out()
    assert sign_in(PASSWORD, ATTACKER).status_code == 429

    call_command("axes_reset_username", "sam")

    assert sign_in(PASSWORD, ATTACKER).status_code == 302


def test_forwarded_for_header_cannot_dodge_the_lockout_without_a_trusted_proxy(staff_user):
    for i in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").post(
            "/admin/login/", {"username": "sam", "password": "wrong"}
        )

    assert sign_in(PASSWORD, ATTACKER).status_code == 429


def test_behind_a_proxy_the_address_it_saw_is_locked_out_not_the_proxy(staff_user, settings):
    settings.NUM_PROXIES = 1
    proxy = "10.1.1.1"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"spoofed, {ATTACKER}").post(
            "/admin/login/", {"username": "sam", "password": "wrong"}
        )
    colleague = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=STAFF_DESK)

    assert colleague.post("/admin/login/", {"username": "sam", "password": PASSWORD}).status_code == 302
    assert AccessAttempt.objects.get().ip_address == ATTACKER
