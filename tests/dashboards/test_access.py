"""Who may see which dashboard (docs/permissions.md, "Dashboards"): every dashboard × every role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.dashboards.conftest import staff_user

pytestmark = pytest.mark.django_db

BOARDS = ["health", "tiers", "segments", "offers", "profitability"]
ALL = set(BOARDS)
# role -> the dashboards it may see; the rest answer 403
MATRIX = {
    "Marketing": ALL,
    "Support": {"health"},
    "Analyst": ALL,
    "superuser": ALL,
    "no role": set(),
}


def client_for(role: str) -> Client:
    superuser = role == "superuser"
    user = staff_user(None if role in ("no role", "superuser") else role, superuser=superuser)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", list(MATRIX))
@pytest.mark.parametrize("board", BOARDS)
def test_each_role_sees_exactly_the_dashboards_the_matrix_gives(story, role, board):
    response = client_for(role).get(f"/staff/{board}/")
    assert response.status_code == (200 if board in MATRIX[role] else 403)


@pytest.mark.parametrize("role", list(MATRIX))
def test_index_lists_only_the_dashboards_of_the_role(db, role):
    response = client_for(role).get("/staff/")
    if not MATRIX[role]:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    listed = {b for b in BOARDS if f'href="/staff/{b}/"' in response.content.decode()}
    assert listed == MATRIX[role]


@pytest.mark.parametrize("role", ["Support", "no role"])
def test_csv_export_of_a_forbidden_dashboard_is_refused(story, role):
    response = client_for(role).get("/staff/profitability/?export=settlement")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("board", ["", *BOARDS])
def test_anonymous_visitors_go_to_the_login_page(db, board):
    response = Client().get(f"/staff/{board}/" if board else "/staff/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/staff/")


def test_a_member_login_is_refused(story):
    member_user = get_user_model().objects.create_user(username="ann", password="pw-123456")
    client = Client()
    client.force_login(member_user)
    assert client.get("/staff/").status_code == 403
    assert client.get("/staff/health/").status_code == 403


def test_a_partner_api_key_opens_no_dashboard(story):
    from loyalty.partners.services import partner_key_create

    _, _, key = partner_key_create(partner_name="Coffee", scopes=["read", "write"])
    response = Client().get("/staff/health/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_inactive_staff_login_is_refused(story):
    user = staff_user("Analyst")
    client = Client()
    client.force_login(user)
    user.is_active = False
    user.save()
    assert client.get("/staff/health/").status_code in (302, 403)


@pytest.mark.parametrize("role", list(MATRIX))
def test_admin_index_links_to_the_dashboards_for_roles_that_see_one(db, role):
    html = client_for(role).get("/admin/").content.decode()
    assert ('href="/staff/"' in html) == bool(MATRIX[role])
    if MATRIX[role]:
        assert html.count("Run the loyalty program") >= 1  # still the admin's index (its title) around it
