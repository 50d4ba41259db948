"""What the API docs (/api/docs/) say: the introduction, and a summary and a description in words
for every operation (``postprocess_summaries``, a drf-spectacular post-processing hook). A test
walks the schema and fails on an operation without a summary."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension

from loyalty.core.idempotency import KEEP_FOR

KEEP_HOURS = int(KEEP_FOR.total_seconds() // 3600)

DESCRIPTION = f"""
The partner API of the loyalty platform: stores, brands and coalition partners enroll and look up
members, send purchases and returns, burn points, redeem rewards and coupons, read personalized
offers and receive signed webhooks.

**Authentication.** Every call sends `Authorization: Api-Key <key>`. Staff create keys on the
partner's page in the admin (or `manage.py partner_key_create`); a key has scopes (`read`, `write`)
and is shown once.

**Retries are safe.** Every POST accepts an `Idempotency-Key` header: the first answer is kept
{KEEP_HOURS} h and replayed byte for byte (with `Idempotent-Replayed: true`) for the same body; the same
key with another body is refused (422 `idempotency_key_reused`). Purchases, returns, redemptions,
cancels and events are also idempotent by their `external_id` per partner.

**Errors** are `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail`, a
stable `code` to branch on, and `errors` per field. A member this partner may not see answers the
same 404 `member_not_found` as an unknown one.

**Points** are whole numbers. A purchase's `explanation` lists how they were counted, one line per
rule in words ("Base rate: 50.00 × 1 = 50").
""".strip()

# operationId -> (summary, description); the description replaces a docstring written for developers.
OPERATIONS: dict[str, tuple[str, str]] = {
    "members_enroll": (
        "Enroll a member",
        "Creates the member with their points account and base tier, linked to this partner. An email "
        "already enrolled answers 409 `email_taken`.",
    ),
    "members_lookup": ("Find a member by email", "Looks up members this partner may read by their email."),
    "members_retrieve": ("Read a member", "The member's profile, status and tier, if this partner may read them."),
    "members_balance": (
        "Read a member's balance",
        "Available, pending and expiring points (whole numbers) and the tier, if this partner may read the member.",
    ),
    "members_entries": (
        "List a member's points movements",
        "Earnings, redemptions, expiries, returns and adjustments, newest first, a cursor page at a time; "
        "filter by `kind` and dates.",
    ),
    "members_offers": (
        "List the offers and rewards for a member",
        "What the member may use at this partner, best first, each with the reasons in words.",
    ),
    "purchases_create": (
        "Record a purchase",
        "Stores the purchase and credits its points (pending for the program's return window). The answer "
        "gives the points and their explanation in words, one line per rule and offer.",
    ),
    "returns_create": (
        "Record a return",
        "Takes back the points of the returned amount or lines, pending points first.",
    ),
    "redemptions_create": (
        "Burn points",
        "Debits points from the member's balance, soonest-expiring first. Needs this partner's access to the "
        "member or a one-time `redemption_code` the member holds.",
    ),
    "redemptions_cancel": ("Cancel a redemption", "Gives the points of this partner's redemption back."),
    "events_create": (
        "Record a member event",
        "A login, review, survey or other event; gives the points of the program's event rule within its limits.",
    ),
    "webhooks_list": ("List webhook endpoints", "This partner's endpoints and the event types each receives."),
    "webhooks_create": (
        "Register a webhook endpoint",
        "An https URL on a public address and the event types to send; the signing secret is in this answer only.",
    ),
    "webhooks_delete": ("Remove a webhook endpoint", "Stops deliveries to the endpoint."),
    "rewards_list": ("List rewards", "The active rewards this partner honours, with their points cost."),
    "rewards_redeem": (
        "Redeem a reward for a member",
        "Debits the points, takes one item of stock and issues the reward's coupon (its code is given only here).",
    ),
    "coupons_validate": (
        "Check a coupon",
        "Whether the coupon is usable now, here, by this member, on this basket, and what it gives.",
    ),
    "coupons_redeem": ("Use a coupon", "Counts one use of the coupon (the checks of validate first)."),
    "coupons_cancel": ("Give back a coupon use", "Cancels this partner's use of the coupon."),
}


def postprocess_summaries(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The introduction, and every operation its summary and its description in words."""
    result.setdefault("info", {})["description"] = DESCRIPTION
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            words = OPERATIONS.get(operation["operationId"])
            if words is not None:
                operation["summary"], operation["description"] = words
    return result


# drf-spectacular's pattern for a DecimalField lets "" and "-" through, which the field refuses.
_DECIMAL_PATTERN = re.compile(r"^\^(-\?)?\\d\{0,(\d+)\}\(\?:\\\.\\d\{0,(\d+)\}\)\?\$$")


def _decimal_pattern(pattern: str) -> str:
    found = _DECIMAL_PATTERN.match(pattern)
    if found is None or found[3] == "0":
        return pattern
    sign, whole, places = found[1] or "", found[2], found[3]
    return rf"^{sign}(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"


def _walk(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "decimal" and isinstance(node.get("pattern"), str):
            node["pattern"] = _decimal_pattern(node["pattern"])
        for value in node.values():
            _walk(value)
    elif isinstance(node, list):
        for value in node:
            _walk(value)


def _positive_decimal_pattern(whole: int, places: int) -> str:
    """A decimal above zero with at most ``whole`` digits before the point and ``places`` after."""
    fractions = "|".join(rf"0{{{i}}}[1-9]\d{{0,{places - 1 - i}}}" for i in range(places))
    return rf"^(?:0*[1-9]\d{{0,{whole - 1}}}(?:\.\d{{0,{places}}})?|0*\.(?:{fractions}))$"


class DecimalBoundsExtension(OpenApiSerializerFieldExtension):
    """A decimal field's lower bound in its pattern: no minus sign from 0 up, and from the smallest
    step up (0.01 for two places) a value above zero."""

    target_class = "rest_framework.fields.DecimalField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        low, places = field.min_value, field.decimal_places
        if low is None or low < 0 or not schema.get("pattern", "").startswith("^-?"):
            return schema
        if low > 0 and places and field.max_digits and low <= Decimal(1).scaleb(-places):
            schema["pattern"] = _positive_decimal_pattern(field.max_digits - places, places)
        else:
            schema["pattern"] = "^" + schema["pattern"][3:]
        return schema


# Text fields refuse the NUL character (DRF's ProhibitNullCharactersValidator); say so.
NO_NUL = "^[^\\x00]*$"
# ... and a required text is stripped of white space first (``trim_whitespace``): it needs one other.
# (Python's strip() also takes \x1c-\x1f and \x85, which a JSON Schema \s does not name).
NOT_BLANK = "^[^\\x00]*[^\\s\\x00\\x1c-\\x1f\\x85][^\\x00]*$"
# Requests whose body needs one of several fields: component -> the alternatives (oneOf).
ONE_OF_REQUIRED = {"ReturnInRequest": ("lines", "amount")}


def _request_text_without_nul(component: dict[str, Any]) -> None:
    for prop in component.get("properties", {}).values():
        plain = prop.get("type") == "string" and not {"format", "pattern", "enum"} & set(prop)
        if plain and not prop.get("readOnly"):
            prop["pattern"] = NOT_BLANK if prop.get("minLength", 0) >= 1 else NO_NUL


def _list_bounds() -> dict[str, dict[str, dict[str, int]]]:
    """Request component -> list field -> minItems/maxItems, from the API's serializers (drf-spectacular
    leaves out ``allow_empty=False`` and a nested list's ``max_length``)."""
    from rest_framework import serializers

    from loyalty.api import serializers as api_serializers
    from loyalty.api import serializers_offers

    bounds: dict[str, dict[str, dict[str, int]]] = {}
    for module in (api_serializers, serializers_offers):
        for cls in vars(module).values():
            if not (isinstance(cls, type) and issubclass(cls, serializers.Serializer)):
                continue
            name = cls.__name__.removesuffix("Serializer") + "Request"
            for field_name, field in cls().fields.items():
                if not isinstance(field, serializers.ListSerializer | serializers.ListField):
                    continue
                limits = {}
                if not field.allow_empty:
                    limits["minItems"] = 1
                if field.max_length is not None:
                    limits["maxItems"] = field.max_length
                if limits:
                    bounds.setdefault(name, {})[field_name] = limits
    return bounds


def postprocess_constraints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The schema says what the API accepts, no more: decimals need a digit, text no NUL, a return
    its lines or its amount, and every operation taking an ``Idempotency-Key`` documents the 422
    of a malformed or reused key."""
    components = result.get("components", {}).get("schemas", {})
    for name, fields in _list_bounds().items():
        for field_name, limits in fields.items():
            prop = components.get(name, {}).get("properties", {}).get(field_name)
            if prop is not None and prop.get("type") == "array":
                prop.update(limits)
    for name, component in components.items():
        if name.endswith("Request"):
            _request_text_without_nul(component)
        if name in ONE_OF_REQUIRED:
            component["oneOf"] = [{"required": [field]} for field in ONE_OF_REQUIRED[name]]
    _walk(result.get("components", {}))
    _walk(result.get("paths", {}))
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict):
                continue
            takes_key = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
            responses = operation.get("responses", {})
            if takes_key and "422" not in responses and "400" in responses:
                responses["422"] = {
                    "content": responses["400"]["content"],
                    "description": "Idempotency-Key malformed (invalid_idempotency_key) or reused with another "
                    "body (idempotency_key_reused)",
                }
    return result
