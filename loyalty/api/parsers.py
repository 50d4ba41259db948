"""Request body parsing for the partner API, safe against hostile bodies."""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings


class JSONTooDeep(ParseError):
    default_detail = "JSON nested too deep"
    default_code = "json_too_deep"


class RequestTooLarge(ParseError):
    status_code = 413
    default_detail = "Request body too large"
    default_code = "request_too_large"


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` opens more than ``limit`` arrays/objects inside each other, read in one
    pass without recursion (brackets inside strings are skipped), before any parser recurses."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser, but: reads at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (more: 413
    ``request_too_large``), refuses nesting deeper than ``API_JSON_MAX_DEPTH`` (400
    ``json_too_deep``) before parsing (the standard parser recurses: a deep body was a
    ``RecursionError``), and never lets a parser failure out as anything but a ``ParseError``."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"Request body over {limit} bytes")
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"Body is not {encoding} text") from exc
        if json_depth_exceeds(text, settings.API_JSON_MAX_DEPTH):
            raise JSONTooDeep(f"JSON nested deeper than {settings.API_JSON_MAX_DEPTH} levels")
        try:
            if api_settings.STRICT_JSON:
                return json.loads(text, parse_constant=_strict_constant)
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
