"""Pure parts of the portal: the earning rules' explanation in plain words, and the export files."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from loyalty.portal.exports import export_csv_zip, export_json
from loyalty.portal.selectors import explanation_words


def test_explanation_lines_read_as_plain_words_without_the_total():
    explanation = [
        {"rule": "Excluded categories", "detail": "12.00 of spend in FUEL earns nothing"},
        {"rule": "Base rate", "detail": "80.00 × 1.0000", "points": "8E+1"},
        {"rule": "Double points on dairy", "detail": "dairy 40.00 × (2 − 1)", "points": "4E+1"},
        {"rule": "Weekend bonus", "detail": "cap reached", "points": "0"},
        {"rule": "Tier Gold", "detail": "× 1.5"},
        {"rule": "Total", "detail": "rounded down once", "points": "180"},
    ]

    assert explanation_words(explanation) == [
        "Excluded categories: 12.00 of spend in FUEL earns nothing",
        "Points for 80.00 spent: +80",
        "Double points on dairy: +40",
        "Weekend bonus: limit reached, no more points this period",
        "Tier Gold × 1.5",
    ]


def test_base_rate_other_than_one_is_named():
    assert explanation_words([{"rule": "Base rate", "detail": "10.00 × 2.5", "points": "25"}]) == [
        "Points for 10.00 spent (2.5 a unit): +25"
    ]


def test_export_zip_has_one_csv_per_list_and_one_row_per_record():
    document = {
        "exported_at": "2030-01-01T00:00:00+00:00",
        "member_number": "123",
        "member": {"profile": {"email": "a@example.com", "first_name": "Ann"}, "consents": []},
        "points": {"accounts": [{"program": "P", "available": 5}, {"program": "Q", "available": 7, "debt": 1}]},
    }

    archive = zipfile.ZipFile(io.BytesIO(export_csv_zip(document)))
    read = {name: list(csv.DictReader(io.StringIO(archive.read(name).decode()))) for name in archive.namelist()}

    assert set(read) == {"export.csv", "member_profile.csv", "member_consents.csv", "points_accounts.csv"}
    assert read["export.csv"] == [{"exported_at": "2030-01-01T00:00:00+00:00", "member_number": "123"}]
    assert read["member_profile.csv"] == [{"email": "a@example.com", "first_name": "Ann"}]
    assert read["points_accounts.csv"][1] == {"program": "Q", "available": "7", "debt": "1"}
    assert json.loads(export_json(document)) == document
