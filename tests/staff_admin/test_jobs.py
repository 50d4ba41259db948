"""Staff run the scheduled jobs from the admin: permission-checked per role, audited, inline
without a Celery broker."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from loyalty.core import clock
from loyalty.core.models import AuditEvent
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, Program
from tests.staff_admin.conftest import member_with_history, role_user

pytestmark = pytest.mark.django_db

RUN = "admin:activity_staffjob_run"


def test_jobs_page_lists_the_jobs_and_offers_each_role_only_its_own(client):
    client.force_login(role_user("Support"))
    page = client.get(reverse("admin:activity_staffjob_changelist")).content.decode()
    assert "Mature pending points" in page and "Compute RFM and CLV scores" in page
    assert 'name="run-expire_points"' in page and 'name="run-compute_scores"' not in page
    client.force_login(role_user("Marketing"))
    page = client.get(reverse("admin:activity_staffjob_changelist")).content.decode()
    assert 'name="run-evaluate_tiers"' in page and 'name="run-expire_points"' not in page


def test_support_expires_due_points_now_and_the_run_is_audited(client):
    Program.objects.filter(is_default=True).update(expiry_policy="fixed_months", expiry_months=1)
    member = member_with_history()
    account = Account.objects.get(member=member, kind="member")
    clock.set_now(clock.now() + dt.timedelta(days=40))
    user = role_user("Support")
    client.force_login(user)
    response = client.post(reverse(RUN, args=["expire_points"]), follow=True)
    assert "Expire due points: done (accounts 1)" in response.content.decode()
    assert Account.objects.get(pk=account.pk).expired == 50
    event = AuditEvent.objects.get(action="job.expire_points")
    assert (event.actor, event.after) == (user, {"accounts": 1})


def test_marketing_refreshes_segments_and_computes_scores(client):
    member_with_history()
    user = role_user("Marketing")
    client.force_login(user)
    assert client.post(reverse(RUN, args=["refresh_segments"])).status_code == 302
    assert client.post(reverse(RUN, args=["compute_scores"])).status_code == 302
    assert client.post(reverse(RUN, args=["evaluate_tiers"])).status_code == 302
    actions = set(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))
    assert {"job.refresh_segments", "job.compute_scores", "job.evaluate_tiers"} <= actions


@pytest.mark.parametrize(
    ("role", "job"),
    [
        ("Marketing", "expire_points"),
        ("Support", "compute_scores"),
        ("Analyst", "mature_points"),
        ("Analyst", "evaluate_tiers"),
    ],
)
def test_a_role_may_not_run_another_roles_job(client, role, job):
    client.force_login(role_user(role))
    assert client.post(reverse(RUN, args=[job])).status_code == 403
    assert not AuditEvent.objects.filter(action=f"job.{job}").exists()


def test_staff_without_a_role_does_not_see_the_jobs_page(client):
    client.force_login(role_user("no role"))
    assert client.get(reverse("admin:activity_staffjob_changelist")).status_code == 403
    assert client.post(reverse(RUN, args=["mature_points"])).status_code == 403


def test_unknown_job_and_get_change_nothing(client):
    client.force_login(role_user("Support"))
    assert client.get(reverse(RUN, args=["mature_points"])).status_code == 405
    assert client.post(reverse(RUN, args=["drop_tables"])).status_code == 302
    assert not AuditEvent.objects.filter(action__startswith="job.").exists()


def test_mature_job_makes_pending_points_available():
    from loyalty.activity.services import jobs

    Program.objects.filter(is_default=True).update(pending_days=14)
    member = member_with_history()
    account = Account.objects.get(member=member, kind="member")
    assert account.pending == 50
    clock.set_now(clock.now() + dt.timedelta(days=15))
    assert jobs.staff_job_run(name="mature_points", actor=role_user("Support")) == {"accounts": 1}
    assert Account.objects.get(pk=account.pk).available == 50
    assert ledger  # the ledger's own job did the work


def test_with_a_broker_the_job_is_queued_by_task_name_and_audited(client, monkeypatch):
    from loyalty.celery import app

    sent = []
    app.conf.task_always_eager = False  # the autouse fixture puts it back
    monkeypatch.setattr(app, "send_task", lambda name, *a, **k: sent.append(name))
    user = role_user("Support")
    client.force_login(user)
    response = client.post(reverse(RUN, args=["mature_points"]), follow=True)
    assert "Mature pending points: queued for the workers." in response.content.decode()
    assert sent == ["ledger.mature_pending_lots"]
    assert AuditEvent.objects.get(action="job.mature_points").after == {"queued": True}
