"""``member_export`` as files a member can open: one JSON document, or a zip of CSV files (one
per list of records, one-row files for single records). Pure functions over the document."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any


def export_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str).encode()


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else value


def _tables(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every list of records and every record in the document, named by its path
    (``ledger/accounts``); plain values at the top go to ``export``."""
    tables: dict[str, list[dict[str, Any]]] = {}
    top: dict[str, Any] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            tables[name] = value
        elif isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
            for key, inner in value.items():
                walk(f"{name}_{key}", inner)
        elif isinstance(value, dict):
            tables[name] = [value]
        else:
            top[name] = value

    for key, value in document.items():
        walk(key, value)
    if top:
        tables = {"export": [top], **tables}
    return tables


def export_csv_zip(document: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, rows in _tables(document).items():
            columns: list[str] = []
            for row in rows:
                columns.extend(key for key in row if key not in columns)
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=columns or ["empty"])
            writer.writeheader()
            for row in rows:
                writer.writerow({key: _cell(row.get(key)) for key in columns})
            archive.writestr(f"{name}.csv", text.getvalue())
    return buffer.getvalue()
