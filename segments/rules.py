"""Segment rules: the JSON format, the catalogue of fields and operators, and validation.

Pure functions over plain data (no database). ``segments.compiler`` turns a validated tree
into one ORM query; the admin's rule builder is generated from ``catalogue()``.

Format
------
A node is a group or a condition::

    {"all": [node, ...]}        every child matches (an empty list matches everybody)
    {"any": [node, ...]}        at least one child matches (an empty list matches nobody)
    {"not": node}               the child does not match

    {"field": "<field>", "op": "<operator>", "value": <value>, <parameters of the field>}

Example: members aged 25-44 who agreed to email marketing and spent at least 100.00 in
the "coffee" category in the last 90 days, and are not in segment 7::

    {"all": [
        {"field": "member.age_band", "op": "in", "value": ["25-34", "35-44"]},
        {"field": "consent", "op": "is", "value": true, "purpose": "marketing", "channel": "email"},
        {"field": "purchase.spend", "op": "gte", "value": 100, "window": {"last_days": 90},
         "category": "coffee"},
        {"not": {"field": "segment", "op": "in", "value": [7]}}
    ]}

Operators: ``eq ne gt gte lt lte`` (one value), ``between`` ([low, high], both included),
``in not_in`` (a list), ``starts_with`` (a prefix or list of prefixes), ``is_set`` (true/false:
the member field is filled in), ``is`` (true/false), dates: ``before`` / ``on_or_after`` /
``between`` (ISO dates), ``in_last_days`` / ``more_than_days_ago`` (whole days), tiers:
``at_least`` (a tier name: that tier or a higher one).

Parameters: ``window`` = ``{"last_days": N}`` or ``{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}``
(both days included; ``to`` optional; no window = all history); purchase scopes
``category`` / ``sku`` / ``store`` (a string or a list) and ``partner`` (a partner id or a list
of ids); ``program`` (a program id; default: the default program); ``days`` (points expiring
within N days); ``purpose`` / ``channel`` (consent).

Values a member does not have: a member without purchases in the window has spend 0 and
0 purchases, but no average basket and no days since the last purchase (conditions on those
do not match); without an account, 0 points; without a tier status, the program's base tier;
without a score, no score. ``not`` is the exact complement of its child.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from loyalty.core.errors import ValidationFailed

MAX_DEPTH = 12
MAX_CONDITIONS = 200

# Operators -----------------------------------------------------------------------------------

OPERATORS: dict[str, str] = {
    "eq": "is",
    "ne": "is not",
    "gt": "more than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "between": "between",
    "in": "is one of",
    "not_in": "is none of",
    "starts_with": "starts with",
    "is_set": "is filled in",
    "is": "is",
    "before": "before",
    "on_or_after": "on or after",
    "in_last_days": "in the last N days",
    "more_than_days_ago": "more than N days ago",
    "at_least": "is at least",
}

NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
TEXT_OPS = ("eq", "ne", "in", "not_in", "is_set")
CHOICE_OPS = ("eq", "ne", "in", "not_in")
DATE_OPS = ("before", "on_or_after", "between", "in_last_days", "more_than_days_ago")
BOOL_OPS = ("is",)

# Value types
INTEGER, NUMBER, TEXT, CHOICE, DATE, BOOL, TIER, SEGMENT = (
    "integer",
    "number",
    "text",
    "choice",
    "date",
    "bool",
    "tier",
    "segment",
)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "window", "strings", "ids", "int", "choice"
    label: str
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    group: str
    type: str
    ops: tuple[str, ...]
    params: tuple[Param, ...] = ()
    choices: tuple[tuple[str, str], ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _choices(text_choices) -> tuple[tuple[str, str], ...]:
    return tuple((str(value), str(label)) for value, label in text_choices.choices)


def _fields() -> dict[str, Field]:
    from members.models import ConsentChannel, ConsentPurpose, EnrollmentSource, MemberStatus
    from segments.models import RfmSegment

    window = Param("window", "window", "in the window")
    scopes = (
        window,
        Param("category", "strings", "in category"),
        Param("sku", "strings", "of SKU"),
        Param("partner", "ids", "at partner (id)"),
        Param("store", "strings", "at store"),
    )
    program = Param("program", "int", "in program (id; default program if empty)")
    nullable_int = NUMBER_OPS + ("is_set",)
    m, b, lo, sc = "Member", "Behaviour", "Loyalty", "Scores"
    items = [
        Field("member.age_band", "Age band", m, TEXT, TEXT_OPS),
        Field("member.income_band", "Income band", m, TEXT, TEXT_OPS),
        Field("member.household_size", "Household size", m, INTEGER, nullable_int, minimum=Decimal(0)),
        Field("member.household_composition", "Household composition", m, TEXT, TEXT_OPS),
        Field("member.kids_count", "Number of kids", m, INTEGER, nullable_int, minimum=Decimal(0)),
        Field("member.has_kids", "Has kids", m, BOOL, BOOL_OPS),
        Field("member.home_ownership", "Home ownership", m, TEXT, TEXT_OPS),
        Field("member.marital_status", "Marital status", m, TEXT, TEXT_OPS),
        Field("member.postal_code", "Postal code", m, TEXT, TEXT_OPS + ("starts_with",)),
        Field("member.country", "Country", m, TEXT, TEXT_OPS, help="ISO 3166-1 alpha-2 code"),
        Field("member.language", "Preferred language", m, TEXT, TEXT_OPS),
        Field("member.enrolled_at", "Enrollment date", m, DATE, DATE_OPS),
        Field("member.status", "Status", m, CHOICE, CHOICE_OPS, choices=_choices(MemberStatus)),
        Field(
            "member.enrollment_source", "Enrollment source", m, CHOICE, CHOICE_OPS, choices=_choices(EnrollmentSource)
        ),
        Field(
            "consent",
            "Consent granted",
            "Consent",
            BOOL,
            BOOL_OPS,
            params=(
                Param("purpose", "choice", "for purpose", required=True, choices=_choices(ConsentPurpose)),
                Param("channel", "choice", "on channel", choices=_choices(ConsentChannel)),
            ),
        ),
        Field("purchase.spend", "Spend", b, NUMBER, NUMBER_OPS, params=scopes, help="Net of returns"),
        Field("purchase.count", "Number of purchases", b, INTEGER, NUMBER_OPS, params=scopes, minimum=Decimal(0)),
        Field("purchase.average_basket", "Average basket", b, NUMBER, NUMBER_OPS, params=scopes),
        Field(
            "purchase.days_since_last",
            "Days since last purchase",
            b,
            INTEGER,
            NUMBER_OPS,
            params=scopes,
            minimum=Decimal(0),
        ),
        Field("loyalty.tier", "Tier", lo, TIER, CHOICE_OPS + ("at_least",), params=(program,), help="Tier name"),
        Field("loyalty.available_points", "Available points", lo, INTEGER, NUMBER_OPS, params=(program,)),
        Field(
            "loyalty.points_expiring",
            "Points expiring",
            lo,
            INTEGER,
            NUMBER_OPS,
            params=(Param("days", "int", "within days", required=True), program),
        ),
        Field("loyalty.points_earned", "Lifetime points earned", lo, INTEGER, NUMBER_OPS, params=(program,)),
        Field("loyalty.redemptions", "Number of redemptions", lo, INTEGER, NUMBER_OPS, params=(window, program)),
        Field("score.r", "RFM recency score", sc, INTEGER, NUMBER_OPS, minimum=Decimal(1), maximum=Decimal(5)),
        Field("score.f", "RFM frequency score", sc, INTEGER, NUMBER_OPS, minimum=Decimal(1), maximum=Decimal(5)),
        Field("score.m", "RFM monetary score", sc, INTEGER, NUMBER_OPS, minimum=Decimal(1), maximum=Decimal(5)),
        Field("score.rfm_segment", "RFM segment", sc, CHOICE, CHOICE_OPS, choices=_choices(RfmSegment)),
        Field("score.predicted_clv", "Predicted CLV (12 months)", sc, NUMBER, NUMBER_OPS),
        Field(
            "score.probability_alive",
            "Probability alive",
            sc,
            NUMBER,
            NUMBER_OPS,
            minimum=Decimal(0),
            maximum=Decimal(1),
        ),
        Field("score.predicted_purchases", "Predicted purchases (12 months)", sc, NUMBER, NUMBER_OPS),
        Field("segment", "Member of segment", "Segments", SEGMENT, ("in", "not_in"), help="Segment ids"),
    ]
    return {f.name: f for f in items}


_FIELDS: dict[str, Field] | None = None


def fields() -> dict[str, Field]:
    global _FIELDS
    if _FIELDS is None:
        _FIELDS = _fields()
    return _FIELDS


def catalogue() -> dict[str, Any]:
    """Fields, operators and parameters as plain JSON, for the admin's rule builder."""
    return {
        "operators": OPERATORS,
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "group": f.group,
                "type": f.type,
                "ops": list(f.ops),
                "choices": [list(c) for c in f.choices],
                "help": f.help,
                "params": [
                    {
                        "name": p.name,
                        "kind": p.kind,
                        "label": p.label,
                        "required": p.required,
                        "choices": [list(c) for c in p.choices],
                    }
                    for p in f.params
                ],
            }
            for f in fields().values()
        ],
    }


# Validation ------------------------------------------------------------------------------------


class _Problem(Exception):
    pass


@dataclass
class _Errors:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, field_name: str, message: str) -> None:
        self.items.append({"path": path, "field": field_name, "message": message})


def validate(tree: Any) -> dict[str, Any]:
    """Check a rule tree and return it normalized (lists for list values, upper-case countries,
    ISO dates, integers where the field counts). Raises ``ValidationFailed`` (code
    ``invalid_rules``) listing every bad condition by its path, e.g. ``all[1].any[0]``."""
    errors = _Errors()
    if not isinstance(tree, dict):
        raise ValidationFailed(
            "rules must be a JSON object: a group {'all': [...]}, {'any': [...]}, {'not': {...}} or a condition",
            code="invalid_rules",
            fields={"rules": ["Not a rule tree."]},
            extra={"errors": [{"path": "rules", "field": "", "message": "not a JSON object"}]},
        )
    counter = [0]
    normalized = _node(tree, "rules", 0, errors, counter)
    if errors.items:
        lines = [f"{e['path']}{' (' + e['field'] + ')' if e['field'] else ''}: {e['message']}" for e in errors.items]
        raise ValidationFailed(
            "Invalid segment rules: " + "; ".join(lines),
            code="invalid_rules",
            fields={"rules": lines},
            extra={"errors": errors.items},
        )
    return normalized


def _node(node: Any, path: str, depth: int, errors: _Errors, counter: list[int]) -> Any:
    if depth > MAX_DEPTH:
        errors.add(path, "", f"groups are nested more than {MAX_DEPTH} deep")
        return None
    if not isinstance(node, dict):
        errors.add(path, "", "a node must be a JSON object")
        return None
    groups = [key for key in ("all", "any", "not") if key in node]
    if groups:
        key = groups[0]
        if len(node) != 1:
            others = ", ".join(sorted(k for k in node if k != key))
            errors.add(path, "", f"a '{key}' group has no other keys (found {others})")
            return None
        prefix = "" if path == "rules" else f"{path}."
        if key == "not":
            return {"not": _node(node["not"], f"{prefix}not", depth + 1, errors, counter)}
        children = node[key]
        if not isinstance(children, list):
            errors.add(path, "", f"'{key}' takes a list of conditions and groups")
            return None
        return {
            key: [_node(child, f"{prefix}{key}[{i}]", depth + 1, errors, counter) for i, child in enumerate(children)]
        }
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        if counter[0] == MAX_CONDITIONS + 1:
            errors.add(path, "", f"more than {MAX_CONDITIONS} conditions")
        return None
    return _condition(node, path, errors)


def _condition(node: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    name = node.get("field")
    if not isinstance(name, str) or not name:
        errors.add(path, "", "a condition needs 'field' (or use a group: all / any / not)")
        return None
    spec = fields().get(name)
    if spec is None:
        errors.add(path, name, f"unknown field '{name}'")
        return None
    op = node.get("op")
    if op not in spec.ops:
        errors.add(path, name, f"operator '{op}' is not allowed; use one of {', '.join(spec.ops)}")
        return None
    allowed = {"field", "op", "value"} | {p.name for p in spec.params}
    unknown = sorted(set(node) - allowed)
    if unknown:
        errors.add(path, name, f"unknown key(s) {', '.join(unknown)}")
        return None
    out: dict[str, Any] = {"field": name, "op": op}
    try:
        if "value" not in node:
            raise _Problem("'value' is required")
        out["value"] = _value(spec, op, node["value"])
        for param in spec.params:
            if param.name in node and node[param.name] not in (None, "", []):
                out[param.name] = _param(param, node[param.name])
            elif param.required:
                raise _Problem(f"'{param.name}' is required")
    except _Problem as problem:
        errors.add(path, name, str(problem))
        return None
    return out


def _number(spec: Field, raw: Any) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise _Problem(f"value {raw!r} is not a number")
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _Problem(f"value {raw!r} is not a number") from None
    if not number.is_finite():
        raise _Problem(f"value {raw!r} is not a number")
    if spec.type == INTEGER and number != number.to_integral_value():
        raise _Problem(f"value {raw!r} must be a whole number")
    if spec.minimum is not None and number < spec.minimum:
        raise _Problem(f"value {raw!r} is below {spec.minimum}")
    if spec.maximum is not None and number > spec.maximum:
        raise _Problem(f"value {raw!r} is above {spec.maximum}")
    if spec.type == INTEGER:
        return int(number)
    return int(number) if number == number.to_integral_value() else float(number)


def _text(spec: Field, raw: Any) -> str:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and spec.type == TEXT:
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise _Problem(f"value {raw!r} must be a non-empty text")
    value = raw.strip()
    if spec.name == "member.country":
        if len(value) != 2 or not value.isalpha():
            raise _Problem(f"value {raw!r} is not a two-letter country code")
        value = value.upper()
    if spec.type == CHOICE and value not in {c for c, _ in spec.choices}:
        raise _Problem(f"value {raw!r} is not one of {', '.join(c for c, _ in spec.choices)}")
    return value


def _date(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Problem(f"value {raw!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise _Problem(f"value {raw!r} is not a date (YYYY-MM-DD)") from None


def _whole_days(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0 or raw > 36500:
        if isinstance(raw, str) and raw.strip().isdigit():
            return _whole_days(int(raw.strip()))
        raise _Problem(f"value {raw!r} must be a whole number of days (0-36500)")
    return raw


def _listed(raw: Any) -> list[Any]:
    if isinstance(raw, list):
        if not raw:
            raise _Problem("the list of values is empty")
        return raw
    if isinstance(raw, str) and "," in raw:
        return [part for part in (p.strip() for p in raw.split(",")) if part]
    return [raw]


def _value(spec: Field, op: str, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and not raw):
        raise _Problem("fill in a value")
    if op in ("is", "is_set"):
        if not isinstance(raw, bool):
            raise _Problem(f"value {raw!r} must be true or false")
        return raw
    if spec.type == DATE:
        if op in ("in_last_days", "more_than_days_ago"):
            return _whole_days(raw)
        if op == "between":
            low, high = _pair(raw)
            low, high = _date(low), _date(high)
            if low > high:
                raise _Problem(f"between {low} and {high}: the first date is after the second")
            return [low, high]
        return _date(raw)
    if spec.type == SEGMENT:
        ids = _listed(raw)
        if any(isinstance(i, bool) or not isinstance(i, int) or i <= 0 for i in ids):
            raise _Problem(f"value {raw!r} must be a list of segment ids")
        return sorted(set(ids))
    if spec.type in (INTEGER, NUMBER):
        if op == "between":
            low, high = (_number(spec, v) for v in _pair(raw))
            if low > high:
                raise _Problem(f"between {low} and {high}: the first number is larger")
            return [low, high]
        return _number(spec, raw)
    # text, choice, tier
    if op in ("in", "not_in", "starts_with"):
        return sorted({_text(spec, v) for v in _listed(raw)})
    if isinstance(raw, list):
        raise _Problem(f"operator '{op}' takes one value, not a list")
    return _text(spec, raw)


def _pair(raw: Any) -> tuple[Any, Any]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise _Problem(f"value {raw!r} must be a list of two values [low, high]")
    return raw[0], raw[1]


def _param(param: Param, raw: Any) -> Any:
    label = f"'{param.name}'"
    if param.kind == "window":
        if not isinstance(raw, dict) or not raw:
            raise _Problem(f"{label} must be {{'last_days': N}} or {{'from': date, 'to': date}}")
        keys = set(raw)
        if keys == {"last_days"}:
            days = raw["last_days"]
            if days in (None, ""):
                raise _Problem("'last N days' needs the number of days")
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
                raise _Problem(f"{label}: last_days must be a whole number of days (1-36500)")
            return {"last_days": days}
        if keys and keys <= {"from", "to"} and "from" in keys:
            try:
                start = _date(raw["from"])
                end = _date(raw["to"]) if raw.get("to") else None
            except _Problem as problem:
                raise _Problem(f"{label}: {problem}") from None
            if end is not None and end < start:
                raise _Problem(f"{label}: 'to' ({end}) is before 'from' ({start})")
            return {"from": start, "to": end} if end else {"from": start}
        raise _Problem(f"{label} must be {{'last_days': N}} or {{'from': date, 'to': date}}")
    if param.kind == "strings":
        values = _listed(raw)
        if any(not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v).strip() for v in values):
            raise _Problem(f"{label} must be a text or a list of texts")
        return sorted({str(v).strip() for v in values})
    if param.kind == "ids":
        values = _listed(raw)
        if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
            raise _Problem(f"{label} must be an id or a list of ids")
        return sorted(set(values))
    if param.kind == "int":
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw.strip())
        if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
            raise _Problem(f"{label} must be a positive whole number")
        return raw
    if param.kind == "choice":
        values = {c for c, _ in param.choices}
        if raw not in values:
            raise _Problem(f"{label} {raw!r} is not one of {', '.join(v or '(all)' for v in values)}")
        return raw
    raise AssertionError(param.kind)  # pragma: no cover


# Helpers for the compiler and the services ------------------------------------------------------


def conditions(tree: dict[str, Any]):
    """Every condition of a (validated) tree, depth first."""
    if "all" in tree or "any" in tree:
        for child in tree.get("all", tree.get("any", [])):
            yield from conditions(child)
    elif "not" in tree:
        yield from conditions(tree["not"])
    else:
        yield tree


def referenced_segments(tree: dict[str, Any]) -> set[int]:
    return {i for c in conditions(tree) if c["field"] == "segment" for i in c["value"]}


def compare(op: str, value: Any, actual: Any) -> bool:
    """Whether ``actual`` satisfies ``op value`` for number operators; None never does.
    (The compiler asks it about the value a member without data has: 0 or None.)"""
    if actual is None:
        return False
    actual = Decimal(str(actual))
    if op == "between":
        return Decimal(str(value[0])) <= actual <= Decimal(str(value[1]))
    target = Decimal(str(value))
    return {
        "eq": actual == target,
        "ne": actual != target,
        "gt": actual > target,
        "gte": actual >= target,
        "lt": actual < target,
        "lte": actual <= target,
    }[op]


# How each condition reads in a sentence: what the member did or is ("spent at least 500").
_SUBJECTS = {
    "purchase.spend": "spent",
    "purchase.count": "made",
    "purchase.average_basket": "average basket",
    "purchase.days_since_last": "days since the last purchase",
    "loyalty.tier": "tier",
    "loyalty.available_points": "available points",
    "loyalty.points_expiring": "points expiring",
    "loyalty.points_earned": "lifetime points earned",
    "loyalty.redemptions": "redemptions",
}
_PLAIN_OPS = {**OPERATORS, "in_last_days": "in the last", "more_than_days_ago": "more than", "at_least": "at least"}


def _words(value: Any, names: dict[int, str] | None = None) -> str:
    if isinstance(value, list):
        texts = [_words(v, names) for v in value]
        return ", ".join(texts[:-1]) + f" or {texts[-1]}" if len(texts) > 1 else "".join(texts)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if names is not None and isinstance(value, int) and value in names:
        return names[value]
    if isinstance(value, float):
        return format(Decimal(str(value)).normalize(), "f")
    return str(value)


def _param_words(tree: dict[str, Any]) -> str:
    parts = []
    window = tree.get("window")
    if isinstance(window, dict):
        if window.get("last_days"):
            parts.append(f"in the last {window['last_days']} days")
        elif window.get("from"):
            parts.append(f"from {window['from']} to {window['to']}" if window.get("to") else f"since {window['from']}")
    for key, words in (("category", "in"), ("sku", "on SKU"), ("store", "at store"), ("partner", "at partner")):
        if tree.get(key):
            parts.append(f"{words} {_words(tree[key])}")
    if tree.get("days"):
        parts.append(f"within {tree['days']} days")
    if tree.get("program"):
        parts.append(f"in program {tree['program']}")
    return (" " + " ".join(parts)) if parts else ""


def _condition_words(tree: dict[str, Any], names: dict[int, str] | None) -> str:
    name, op, value = tree.get("field", ""), tree.get("op"), tree.get("value")
    spec = fields().get(name)
    label = spec.label if spec else str(name)
    if name == "consent":
        channel = f" by {tree['channel']}" if tree.get("channel") else ""
        verb = "gave" if value else "did not give"
        return f"{verb} consent to {tree.get('purpose', '')}{channel}"
    if name == "segment":
        return f"{'is in' if op == 'in' else 'is not in'} segment {_words(value, names)}"
    if op in ("is", "is_set"):
        if op == "is_set":
            return f"{label.lower()} is {'filled in' if value else 'empty'}"
        return f"{label.lower()}: {_words(value)}"
    subject = _SUBJECTS.get(name, label.lower())
    if op == "between":
        phrase = f"between {_words(value[0])} and {_words(value[1])}"
    elif op in ("in", "not_in"):
        phrase = f"{_PLAIN_OPS[op]} {_words(value)}"
    elif op in ("in_last_days", "more_than_days_ago"):
        phrase = f"{_PLAIN_OPS[op]} {value} days{' ago' if op == 'more_than_days_ago' else ''}"
    else:
        phrase = f"{_PLAIN_OPS.get(op, op)} {_words(value)}"
    if name == "purchase.count":
        return f"made {phrase.replace('is ', '')} purchases{_param_words(tree)}"
    if name == "purchase.spend":
        return f"spent {phrase.replace('is ', '')}{_param_words(tree)}"
    return f"{subject} {phrase}{_param_words(tree)}"


def describe(tree: dict[str, Any], *, segment_names: dict[int, str] | None = None) -> str:
    """The rules in plain language, for lists, pages and previews: "spent at least 500 in the
    last 90 days and tier is Gold". ``segment_names`` (id -> name) names referenced segments."""
    if "all" in tree or "any" in tree:
        key = "all" if "all" in tree else "any"
        parts = [describe(child, segment_names=segment_names) for child in tree[key]]
        if not parts:
            return "everybody" if key == "all" else "nobody"
        joined = (" and " if key == "all" else " or ").join(parts)
        return f"({joined})" if len(parts) > 1 and key == "any" else joined
    if "not" in tree:
        return f"not ({describe(tree['not'], segment_names=segment_names)})"
    return _condition_words(tree, segment_names)


def incomplete_dropped(tree: Any) -> tuple[Any, int]:
    """The tree without conditions nobody has filled in yet (a new row in the builder: value
    empty), and how many were dropped: the live preview counts what is there instead of
    showing an error before anything is typed. Saving still validates the whole tree."""
    if not isinstance(tree, dict):
        return tree, 0
    for key in ("all", "any"):
        if key in tree and isinstance(tree[key], list):
            kept, dropped = [], 0
            for child in tree[key]:
                if _unfilled(child):
                    dropped += 1
                    continue
                child, inner = incomplete_dropped(child)
                kept.append(child)
                dropped += inner
            return {**tree, key: kept}, dropped
    if "not" in tree:
        if _unfilled(tree["not"]):
            return {"all": []}, 1
        inner, dropped = incomplete_dropped(tree["not"])
        return {**tree, "not": inner}, dropped
    return tree, 0


def _unfilled(node: Any) -> bool:
    if isinstance(node, dict) and "not" in node and len(node) == 1:
        return _unfilled(node["not"])
    if not isinstance(node, dict) or "field" not in node or "value" not in node:
        return False
    value = node["value"]
    if isinstance(value, list):
        return all(v in ("", None) for v in value)
    return value is None or value == ""


def walk(tree: dict[str, Any], path: str = "rules"):
    """(path, condition) for every condition of a validated tree, with validation's paths."""
    prefix = "" if path == "rules" else f"{path}."
    if "all" in tree or "any" in tree:
        key = "all" if "all" in tree else "any"
        for i, child in enumerate(tree[key]):
            yield from walk(child, f"{prefix}{key}[{i}]")
    elif "not" in tree:
        yield from walk(tree["not"], f"{prefix}not")
    else:
        yield path, tree
