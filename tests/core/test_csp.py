"""Content-Security-Policy on every page, with scripts only from files of this site."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
OUR_TEMPLATE_DIRS = ["templates", "loyalty", "members", "segments"]


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {part[0]: part[1:] for part in parts}


def inline_scripts(html: str) -> list[str]:
    """Script elements with a body that a browser would run (JSON data blocks are not run)."""
    return [body for attrs, body in SCRIPT_TAG.findall(html) if body.strip() and "application/json" not in attrs]


@pytest.fixture
def superuser_client():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-not-used")
    client = Client()
    client.force_login(user)
    return client


def assert_scripts_only_from_self(response):
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("url", ["/admin/login/", "/api/docs/", "/api/schema/", "/api/v1/members/"])
def test_every_response_carries_the_policy(client, url):
    assert_scripts_only_from_self(client.get(url))


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/segments/segment/add/",
        "/admin/members/member/",
        "/admin/members/member/import/",
        "/admin/auth/user/add/",
        "/admin/django_celery_beat/periodictask/add/",
    ],
)
def test_admin_pages_carry_the_policy_and_run_no_inline_script(superuser_client, url):
    response = superuser_client.get(url)

    assert response.status_code == 200
    assert_scripts_only_from_self(response)
    assert inline_scripts(response.content.decode()) == []


def test_segment_rule_builder_loads_its_script_from_a_static_file(superuser_client):
    html = superuser_client.get("/admin/segments/segment/add/").content.decode()

    assert '<script src="/static/segments/rule_builder.js"' in html
    assert 'type="application/json"' in html  # the catalogue is data, not script


def test_swagger_ui_loads_its_start_up_script_from_a_url(client):
    html = client.get("/api/docs/").content.decode()
    script_urls = re.findall(r'<script src="([^"]+)"', html)
    start_up = client.get(next(url for url in script_urls if url.startswith("/api/docs/")))

    assert inline_scripts(html) == []
    assert start_up.status_code == 200 and start_up["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in start_up.content


def test_inline_script_finder_finds_script_bodies_not_json_or_files():
    html = '<script src="/a.js"></script><script type="application/json">{}</script><script>\nrun()</script>'

    assert inline_scripts(html) == ["\nrun()"]


def test_no_template_of_ours_has_an_inline_script():
    base = Path(settings.BASE_DIR)
    offenders = {
        str(path.relative_to(base)): scripts
        for folder in OUR_TEMPLATE_DIRS
        for path in (base / folder).rglob("*.html")
        if (scripts := inline_scripts(path.read_text()))
    }

    assert offenders == {}
