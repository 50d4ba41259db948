"""Rule validation: pure, no database."""

import pytest

from loyalty.core.errors import ValidationFailed
from segments import rules as R


def errors_of(tree) -> list[dict]:
    with pytest.raises(ValidationFailed) as exc:
        R.validate(tree)
    assert exc.value.code == "invalid_rules"
    return exc.value.extra["errors"]


def test_a_valid_tree_comes_back_normalized():
    tree = {
        "all": [
            {"field": "member.country", "op": "in", "value": "fr, de"},
            {"field": "purchase.spend", "op": "gte", "value": "100.50", "window": {"last_days": 30}, "category": "tea"},
            {"any": [{"field": "member.kids_count", "op": "between", "value": [1, "3"]}]},
            {"not": {"field": "segment", "op": "in", "value": [4, 2, 4]}},
            {"field": "member.enrolled_at", "op": "between", "value": ["2029-01-01", "2029-12-31"]},
        ]
    }
    assert R.validate(tree) == {
        "all": [
            {"field": "member.country", "op": "in", "value": ["DE", "FR"]},
            {"field": "purchase.spend", "op": "gte", "value": 100.5, "window": {"last_days": 30}, "category": ["tea"]},
            {"any": [{"field": "member.kids_count", "op": "between", "value": [1, 3]}]},
            {"not": {"field": "segment", "op": "in", "value": [2, 4]}},
            {"field": "member.enrolled_at", "op": "between", "value": ["2029-01-01", "2029-12-31"]},
        ]
    }


def test_unknown_field_is_named_with_its_path():
    errors = errors_of(
        {
            "all": [
                {"field": "member.age_band", "op": "eq", "value": "x"},
                {"field": "shoe_size", "op": "eq", "value": 1},
            ]
        }
    )
    assert errors == [{"path": "all[1]", "field": "shoe_size", "message": "unknown field 'shoe_size'"}]


def test_wrong_operator_lists_the_allowed_ones():
    [error] = errors_of({"any": [{"all": [{"field": "purchase.count", "op": "contains", "value": 3}]}]})
    assert error["path"] == "any[0].all[0]"
    assert error["field"] == "purchase.count"
    assert "operator 'contains' is not allowed" in error["message"] and "gte" in error["message"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "purchase.count", "op": "gte", "value": 2.5}, "must be a whole number"),
        ({"field": "purchase.count", "op": "gte", "value": "many"}, "is not a number"),
        ({"field": "purchase.count", "op": "gte", "value": True}, "is not a number"),
        ({"field": "purchase.count", "op": "gte"}, "'value' is required"),
        ({"field": "purchase.spend", "op": "between", "value": [50, 10]}, "first number is larger"),
        ({"field": "purchase.spend", "op": "between", "value": 10}, "list of two values"),
        ({"field": "score.r", "op": "gte", "value": 6}, "above 5"),
        ({"field": "score.probability_alive", "op": "gte", "value": -0.1}, "below 0"),
        ({"field": "member.status", "op": "eq", "value": "sleeping"}, "is not one of"),
        ({"field": "score.rfm_segment", "op": "in", "value": ["champions", "vip"]}, "'vip' is not one of"),
        ({"field": "member.country", "op": "eq", "value": "France"}, "two-letter country code"),
        ({"field": "member.age_band", "op": "eq", "value": ["a", "b"]}, "takes one value"),
        ({"field": "member.age_band", "op": "in", "value": []}, "list of values is empty"),
        ({"field": "member.age_band", "op": "eq", "value": " "}, "non-empty text"),
        ({"field": "member.enrolled_at", "op": "before", "value": "31/12/2029"}, "is not a date"),
        ({"field": "member.enrolled_at", "op": "in_last_days", "value": -3}, "whole number of days"),
        ({"field": "member.has_kids", "op": "is", "value": "yes"}, "true or false"),
        ({"field": "consent", "op": "is", "value": True}, "'purpose' is required"),
        ({"field": "consent", "op": "is", "value": True, "purpose": "spam"}, "'purpose' 'spam' is not one of"),
        ({"field": "consent", "op": "is", "value": True, "purpose": "marketing", "channel": "fax"}, "'channel'"),
        ({"field": "purchase.spend", "op": "gte", "value": 1, "window": {"last_days": 0}}, "last_days"),
        ({"field": "purchase.spend", "op": "gte", "value": 1, "window": {"days": 3}}, "'window' must be"),
        (
            {"field": "purchase.spend", "op": "gte", "value": 1, "window": {"from": "2030-02-01", "to": "2030-01-01"}},
            "is before 'from'",
        ),
        ({"field": "purchase.spend", "op": "gte", "value": 1, "partner": "acme"}, "'partner' must be an id"),
        ({"field": "purchase.spend", "op": "gte", "value": 1, "colour": "red"}, "unknown key(s) colour"),
        ({"field": "loyalty.points_expiring", "op": "gte", "value": 1}, "'days' is required"),
        ({"field": "loyalty.points_expiring", "op": "gte", "value": 1, "days": 0}, "positive whole number"),
        ({"field": "segment", "op": "in", "value": ["vip"]}, "list of segment ids"),
        ({"field": "segment", "op": "eq", "value": [1]}, "operator 'eq' is not allowed"),
        ({"field": "member.postal_code", "op": "starts_with", "value": [""]}, "non-empty text"),
    ],
)
def test_bad_values_are_refused_naming_the_condition(condition, message):
    [error] = errors_of({"all": [condition]})
    assert error["path"] == "all[0]"
    assert error["field"] == condition["field"]
    assert message in error["message"]


def test_every_bad_condition_is_reported_at_once():
    with pytest.raises(ValidationFailed) as exc:
        R.validate(
            {
                "all": [
                    {"field": "nope", "op": "eq", "value": 1},
                    {"not": {"field": "purchase.count", "op": "gte", "value": "x"}},
                    {"any": "not a list"},
                ]
            }
        )
    paths = [e["path"] for e in exc.value.extra["errors"]]
    assert paths == ["all[0]", "all[1].not", "all[2]"]
    assert "all[1].not (purchase.count)" in exc.value.message
    assert exc.value.fields["rules"][0].startswith("all[0] (nope): unknown field")


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ([], "must be a JSON object"),
        ({"all": [], "any": []}, "has no other keys"),
        ({"all": [1]}, "must be a JSON object"),
        ({"op": "eq", "value": 1}, "needs 'field'"),
    ],
)
def test_malformed_trees_are_refused(tree, message):
    with pytest.raises(ValidationFailed) as exc:
        R.validate(tree)
    assert message in exc.value.message


def test_depth_and_size_are_bounded():
    deep: dict = {"field": "member.has_kids", "op": "is", "value": True}
    for _ in range(R.MAX_DEPTH + 2):
        deep = {"not": deep}
    assert "nested more than" in errors_of(deep)[0]["message"]
    many = {"any": [{"field": "member.has_kids", "op": "is", "value": True}] * (R.MAX_CONDITIONS + 5)}
    assert "more than" in errors_of(many)[0]["message"]


def test_walk_and_references_follow_the_tree():
    tree = R.validate(
        {
            "all": [
                {"field": "segment", "op": "in", "value": [3]},
                {"not": {"any": [{"field": "segment", "op": "not_in", "value": [5, 6]}]}},
            ]
        }
    )
    assert [path for path, _ in R.walk(tree)] == ["all[0]", "all[1].not.any[0]"]
    assert R.referenced_segments(tree) == {3, 5, 6}


def test_describe_reads_like_the_rule():
    tree = R.validate(
        {
            "all": [
                {"field": "purchase.count", "op": "gte", "value": 3},
                {"not": {"field": "member.has_kids", "op": "is", "value": True}},
            ]
        }
    )
    assert R.describe(tree) == "made at least 3 purchases and not (has kids: yes)"
    assert R.describe({"any": []}) == "nobody"


def test_catalogue_lists_every_field_with_its_operators():
    catalogue = R.catalogue()
    names = {f["name"] for f in catalogue["fields"]}
    assert {"member.age_band", "consent", "purchase.spend", "loyalty.tier", "score.rfm_segment", "segment"} <= names
    for spec in catalogue["fields"]:
        assert spec["ops"] and all(op in catalogue["operators"] for op in spec["ops"])


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("gte", 0, 0, True),
        ("gt", 0, 0, False),
        ("lt", 5, 0, True),
        ("between", [0, 3], 0, True),
        ("between", [1, 3], 0, False),
        ("ne", 1, 0, True),
        ("eq", 0, None, False),
    ],
)
def test_compare_tells_whether_a_value_meets_a_number_condition(op, value, actual, expected):
    assert R.compare(op, value, actual) is expected
