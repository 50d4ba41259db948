"""The demo's member login (``make run`` prints it) reaches a portal with real history."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

from loyalty.imports.management.commands.load_demo import DEMO_PASSWORD, MEMBER_HOUSEHOLD
from loyalty.ledger.models import Account
from members.models import Member

pytestmark = pytest.mark.django_db


def test_demo_member_logs_in_and_sees_the_households_points_and_history(capsys):
    call_command("load_demo", "--households", "25")
    assert "member portal login at /login/" in capsys.readouterr().out
    member = Member.objects.get(external_id=MEMBER_HOUSEHOLD)
    account = Account.objects.get(member=member)
    client = Client()

    response = client.post("/login/", {"username": "member", "password": DEMO_PASSWORD})
    home = client.get("/home/").content.decode()
    history = client.get("/history/")

    assert response.status_code == 302 and response["Location"] == "/home/"
    figure = re.search(r'<span class="figure">([\d,]+)</span>', home).group(1)
    assert int(figure.replace(",", "")) == account.available > 0
    assert "Your tier:" in home
    assert history.context["page"].paginator.count > 20
    assert any(line.explanation for line in history.context["lines"])
