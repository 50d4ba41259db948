"""What the API docs (/api/docs/) say: the introduction, and a summary and a description in words
for every operation (``postprocess_summaries``, a drf-spectacular post-processing hook). A test
walks the schema and fails on an operation without a summary."""

from __future__ import annotations

from typing import Any

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
