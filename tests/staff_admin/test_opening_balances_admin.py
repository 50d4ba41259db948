"""Opening balances from the admin: Support and Marketing upload a CSV; bad rows are listed and
nothing is credited; good files credit one audited adjustment per row, once."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loyalty.core.models import AuditEvent
from loyalty.ledger.models import Account, LedgerTransaction, Lot
from tests.staff_admin.conftest import member_with_history, role_user

pytestmark = pytest.mark.django_db
URL = "admin_opening_balances"


def _upload(client, text: str, **extra):
    data = {"file": SimpleUploadedFile("balances.csv", text.encode(), content_type="text/csv"), **extra}
    return client.post(reverse(URL), data)


@pytest.fixture
def two():
    return member_with_history(email="ann@example.com"), member_with_history(email="bob@example.com")


@pytest.mark.parametrize("role", ["Support", "Marketing"])
def test_good_file_credits_each_row_as_the_staff_user_and_is_audited(client, two, role):
    ann, bob = two
    user = role_user(role)
    client.force_login(user)
    text = f"member_number,points,expires_on,reason\n{ann.member_number},300,2031-06-30,old program\nbob@example.com,120,,\n"
    text = text.replace("member_number,points", "member_number,points").replace(
        "bob@example.com,120,,", f"{bob.member_number},120,,"
    )
    page = _upload(client, text).content.decode()
    assert "Credited 420 points in 2 row(s)" in page
    ann_account = Account.objects.get(member=ann, kind="member")
    assert ann_account.available == 50 + 300
    tx = LedgerTransaction.objects.get(kind="adjust", reason="old program")
    assert tx.actor == user
    lot = Lot.objects.get(transaction=tx)
    assert lot.expires_at.date().isoformat() == "2031-06-30"
    event = AuditEvent.objects.get(action="opening_balances.imported")
    assert (event.actor, event.after["credited"], event.after["points"]) == (user, 2, 420)
    again = _upload(client, text).content.decode()
    assert "Credited 0 points in 0 row(s); 2 row(s) were already imported" in again
    assert Account.objects.get(pk=ann_account.pk).available == 350


def test_a_file_with_bad_rows_lists_them_and_credits_nothing(client, two):
    ann, _ = two
    client.force_login(role_user("Support"))
    text = (
        "member_number,points,expires_on\n"
        f"{ann.member_number},100,\n"
        "0000000000,50,\n"
        f"{ann.member_number},-5,\n"
        f"{ann.member_number},10,2031-13-40\n"
    )
    page = _upload(client, text).content.decode()
    assert "3 row(s) are wrong: nothing was credited." in page
    assert 'id="import-errors"' in page and "<td>3</td>" in page and "<td>4</td>" in page and "<td>5</td>" in page
    assert not LedgerTransaction.objects.filter(kind="adjust").exists()
    assert not AuditEvent.objects.filter(action="opening_balances.imported").exists()


def test_check_only_credits_nothing(client, two):
    ann, _ = two
    client.force_login(role_user("Support"))
    page = _upload(client, f"member_number,points\n{ann.member_number},100\n", check_only="on").content.decode()
    assert "All 1 rows are good" in page
    assert not LedgerTransaction.objects.filter(kind="adjust").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,amount\nx,1\n", "needs a header with points"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_the_expected_csv_is_a_form_error(client, content, message):
    client.force_login(role_user("Support"))
    response = client.post(reverse(URL), {"file": SimpleUploadedFile("x.csv", content)})
    assert response.status_code == 200 and message in response.content.decode()


@pytest.mark.parametrize("role", ["Analyst", "no role"])
def test_roles_without_the_import_permission_are_refused(client, two, role):
    ann, _ = two
    client.force_login(role_user(role))
    assert client.get(reverse(URL)).status_code == 403
    assert _upload(client, f"member_number,points\n{ann.member_number},100\n").status_code == 403
    assert not LedgerTransaction.objects.filter(kind="adjust").exists()


def test_anonymous_is_sent_to_the_login(client):
    assert client.get(reverse(URL)).status_code == 302
