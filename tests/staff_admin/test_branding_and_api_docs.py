"""The admin speaks the product's name; the API docs have an introduction, a summary for every
operation, and the Idempotency-Key retention the code really keeps."""

from __future__ import annotations

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from loyalty.core.idempotency import KEEP_FOR
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def _schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_admin_is_branded_loyalty_platform_not_django(client):
    client.force_login(StaffFactory())
    page = client.get(reverse("admin:index")).content.decode()
    assert "Loyalty platform" in page
    assert "Django administration" not in page and "Django site admin" not in page


def test_every_api_operation_has_a_summary_and_a_description_in_words():
    missing = []
    for path, methods in _schema()["paths"].items():
        for method, operation in methods.items():
            if not operation.get("summary"):
                missing.append(f"{method.upper()} {path}")
            assert "POST handling shared" not in operation.get("description", ""), (method, path)
    assert missing == []


def test_api_docs_have_an_introduction():
    description = _schema()["info"]["description"]
    assert "Api-Key" in description and "problem+json" in description


def test_idempotency_key_text_matches_the_retention_the_code_keeps():
    hours = int(KEEP_FOR.total_seconds() // 3600)
    schema = _schema()
    texts = [
        p["description"]
        for methods in schema["paths"].values()
        for op in methods.values()
        for p in op.get("parameters", [])
        if p["name"] == "Idempotency-Key"
    ]
    assert texts and all(f"stored {hours} h" in t for t in texts)
    assert f"kept\n{hours} h" in schema["info"]["description"] or f"kept {hours} h" in schema["info"]["description"]
