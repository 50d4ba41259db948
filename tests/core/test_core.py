import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from loyalty.core.models import AuditEvent
from loyalty.core.selectors import audit_events_for
from loyalty.core.services import audit_record
from tests.factories import MemberFactory, StaffFactory

ROOT = Path(__file__).resolve().parents[2]


def test_error_classes_carry_stable_code_and_http_status():
    err = Conflict("no", code="insufficient_points")
    assert isinstance(err, ApplicationError)
    assert (err.code, err.http_status) == ("insufficient_points", 409)
    assert ValidationFailed("x").code == "validation_failed"
    assert NotFound("x").http_status == 404


def test_clock_can_be_frozen_and_advanced():
    moment = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    with clock.frozen(moment):
        assert clock.now() == moment
        clock.advance(dt.timedelta(days=1))
        assert clock.today() == dt.date(2030, 1, 2)
    assert clock.now().year != 2030


def test_clock_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        clock.set_now(dt.datetime(2030, 1, 1))


@pytest.mark.django_db
def test_audit_record_keeps_actor_action_target_reason_and_diff():
    staff = StaffFactory()
    member = MemberFactory()
    with clock.frozen(dt.datetime(2031, 5, 1, tzinfo=dt.UTC)):
        audit_record(
            actor=staff,
            action="member.update",
            target=member,
            reason="typo",
            before={"a": 1},
            after={"a": dt.date(2031, 1, 2)},
        )
    event = audit_events_for(target=member).get(action="member.update")
    assert event.actor == staff and event.actor_label == staff.username
    assert event.reason == "typo"
    assert event.after == {"a": "2031-01-02"}
    assert event.created_at == dt.datetime(2031, 5, 1, tzinfo=dt.UTC)
    assert AuditEvent.objects.count() == 1


def _run_manage(args, env_overrides):
    env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "WEBHOOK_SECRETS_KEY")
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_mode_refuses_to_start_without_secret_key_and_hosts():
    result = _run_manage(["check"], {"DJANGO_ENV": "production"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "ALLOWED_HOSTS" in result.stderr


def test_production_mode_passes_check_deploy_without_warnings():
    result = _run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": "x7!Qz" * 12 + "Lm9#pR2$vT",
            "ALLOWED_HOSTS": "loyalty.example.com",
            "WEBHOOK_SECRETS_KEY": "K3f1bM0r7yXo0tM2Vw2bS9yX8n1yQd6oJm3bHcVb4rE=",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
