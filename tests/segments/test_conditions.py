"""Each condition type and operator, compiled to SQL and run on small fixtures."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.ledger import services as ledger
from loyalty.partners.models import Partner
from members import services as members
from members.models import Member
from segments import selectors, services
from segments.models import MemberScore, ScoreRun
from tests.segments.conftest import T0, buy, ids, matching, member

pytestmark = pytest.mark.django_db


def everybody() -> set:
    return set(Member.objects.values_list("pk", flat=True))


# Member attributes ---------------------------------------------------------------------------------


@pytest.fixture
def people(now):
    return {
        "young": member(age_band="25-34", income_band="50-74K", marital_status="single", postal_code="SW1A 1AA"),
        "older": member(age_band="45-54", income_band="100-124K", marital_status="married", postal_code="EC2V 7HH"),
        "blank": member(postal_code="sw19 5AE"),
    }


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "25-34", {"young"}),
        ("ne", "25-34", {"older", "blank"}),
        ("in", ["25-34", "45-54"], {"young", "older"}),
        ("not_in", ["25-34"], {"older", "blank"}),
        ("is_set", True, {"young", "older"}),
        ("is_set", False, {"blank"}),
    ],
)
def test_text_field_operators(people, op, value, expected):
    assert matching({"field": "member.age_band", "op": op, "value": value}) == {people[k].pk for k in expected}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("member.income_band", "100-124K", "older"),
        ("member.marital_status", "single", "young"),
    ],
)
def test_other_demographic_text_fields(people, field, value, expected):
    assert matching({"field": field, "op": "eq", "value": value}) == ids(people[expected])


def test_household_composition_home_ownership_country_and_language(now):
    a = member(household_composition="2 adults kids", home_ownership="homeowner", country="fr", preferred_language="fr")
    b = member(household_composition="single", home_ownership="renter", country="DE", preferred_language="de")
    assert matching({"field": "member.household_composition", "op": "eq", "value": "single"}) == ids(b)
    assert matching({"field": "member.home_ownership", "op": "in", "value": ["homeowner"]}) == ids(a)
    assert matching({"field": "member.country", "op": "eq", "value": "fr"}) == ids(a)
    assert matching({"field": "member.language", "op": "ne", "value": "fr"}) == ids(b)


def test_postal_code_prefixes_ignore_case(people):
    assert matching({"field": "member.postal_code", "op": "starts_with", "value": "SW"}) == ids(
        people["young"], people["blank"]
    )
    assert matching({"field": "member.postal_code", "op": "starts_with", "value": ["ec2", "sw1a"]}) == ids(
        people["young"], people["older"]
    )


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 3, {"three"}),
        ("ne", 3, {"one", "five", "unknown"}),
        ("gt", 3, {"five"}),
        ("gte", 3, {"three", "five"}),
        ("lt", 3, {"one"}),
        ("lte", 3, {"one", "three"}),
        ("between", [2, 5], {"three", "five"}),
        ("is_set", False, {"unknown"}),
    ],
)
def test_number_field_operators(now, op, value, expected):
    people = {
        "one": member(household_size=1),
        "three": member(household_size=3),
        "five": member(household_size=5),
        "unknown": member(),
    }
    assert matching({"field": "member.household_size", "op": op, "value": value}) == {people[k].pk for k in expected}


def test_kids_count_and_has_kids(now):
    none, two, unknown = member(kids_count=0), member(kids_count=2), member()
    assert matching({"field": "member.kids_count", "op": "gte", "value": 1}) == ids(two)
    assert matching({"field": "member.has_kids", "op": "is", "value": True}) == ids(two)
    assert matching({"field": "member.has_kids", "op": "is", "value": False}) == ids(none)
    assert matching({"not": {"field": "member.has_kids", "op": "is", "value": True}}) == ids(none, unknown)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("before", "2030-01-01", {"old"}),
        ("on_or_after", "2030-06-01", {"recent", "today"}),
        ("between", ["2030-06-05", "2030-06-15"], {"recent", "today"}),
        ("between", ["2029-01-01", "2030-06-05"], {"old", "recent"}),
        ("in_last_days", 30, {"recent", "today"}),
        ("more_than_days_ago", 30, {"old"}),
    ],
)
def test_enrollment_date_operators(now, op, value, expected):
    with clock.frozen(dt.datetime(2029, 3, 1, tzinfo=dt.UTC)):
        old = member()
    with clock.frozen(dt.datetime(2030, 6, 5, 9, tzinfo=dt.UTC)):
        recent = member()
    people = {"old": old, "recent": recent, "today": member()}
    assert matching({"field": "member.enrolled_at", "op": op, "value": value}) == {people[k].pk for k in expected}


def test_status_and_enrollment_source(now):
    portal = member(source="portal")
    suspended = member()
    members.member_suspend(member=suspended, actor=None, reason="fraud check")
    assert matching({"field": "member.status", "op": "eq", "value": "suspended"}) == ids(suspended)
    assert matching({"field": "member.status", "op": "ne", "value": "suspended"}) == ids(portal)
    assert matching({"field": "member.enrollment_source", "op": "in", "value": ["portal"]}) == ids(portal)
    assert matching({"field": "member.enrollment_source", "op": "not_in", "value": ["portal"]}) == ids(suspended)


def test_erased_members_are_never_in_a_segment(now):
    kept, gone = member(), member()
    members.member_erase(member=gone, actor=None, reason="request")
    assert matching({"all": []}) == ids(kept)


# Consent -------------------------------------------------------------------------------------------


def test_consent_by_purpose_and_channel(now):
    email = member(consents=[("marketing", "email", True)])
    everywhere = member(consents=[("marketing", "", True)])
    withdrawn = member(consents=[("marketing", "email", True)])
    members.consent_set(member=withdrawn, purpose="marketing", channel="email", granted=False, source="portal")
    never = member()
    rule = {"field": "consent", "op": "is", "value": True, "purpose": "marketing", "channel": "email"}
    assert matching(rule) == ids(email)
    assert matching({**rule, "value": False}) == ids(everywhere, withdrawn, never)
    assert matching({"field": "consent", "op": "is", "value": True, "purpose": "marketing"}) == ids(everywhere)


# Behaviour ------------------------------------------------------------------------------------------


@pytest.fixture
def shoppers(program):
    """heavy: 3 purchases (120 + 80 recently, 300 long ago); light: one of 20; none: nothing."""
    heavy, light, none = member(), member(), member()
    buy(heavy, days_ago=2, amount=120, category="coffee", sku="BEANS")
    buy(heavy, days_ago=10, amount=80, category="tea", sku="GREEN")
    buy(heavy, days_ago=200, amount=300, category="coffee", sku="MACHINE")
    buy(light, days_ago=40, amount=20, category="tea", sku="GREEN")
    return {"heavy": heavy, "light": light, "none": none}


def who(shoppers, *names) -> set:
    return {shoppers[n].pk for n in names}


@pytest.mark.parametrize(
    ("op", "value", "window", "expected"),
    [
        ("gte", 200, {"last_days": 30}, {"heavy"}),
        ("gt", 200, {"last_days": 30}, set()),
        ("lt", 100, {"last_days": 30}, {"light", "none"}),
        ("lte", 20, None, {"light", "none"}),
        ("eq", 0, {"last_days": 30}, {"light", "none"}),
        ("ne", 0, {"last_days": 30}, {"heavy"}),
        ("between", [10, 250], {"last_days": 60}, {"heavy", "light"}),
        ("gte", 500, None, {"heavy"}),
        ("gte", 300, {"from": "2029-11-01", "to": "2029-12-31"}, {"heavy"}),
        ("gte", 1, {"from": "2030-06-01"}, {"heavy"}),
    ],
)
def test_total_spend_in_a_window(shoppers, op, value, window, expected):
    rule = {"field": "purchase.spend", "op": op, "value": value}
    if window:
        rule["window"] = window
    assert matching(rule) == who(shoppers, *expected)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gte", 2, {"heavy"}),
        ("eq", 1, {"light"}),
        ("lt", 1, {"none"}),
        ("lte", 1, {"light", "none"}),
        ("between", [1, 2], {"heavy", "light"}),
    ],
)
def test_number_of_purchases_in_the_last_60_days(shoppers, op, value, expected):
    rule = {"field": "purchase.count", "op": op, "value": value, "window": {"last_days": 60}}
    assert matching(rule) == who(shoppers, *expected)


def test_average_basket_and_members_without_purchases(shoppers):
    # heavy: (120 + 80 + 300) / 3 = 166.67; light: 20; none: no basket at all
    assert matching({"field": "purchase.average_basket", "op": "gte", "value": 150}) == who(shoppers, "heavy")
    assert matching({"field": "purchase.average_basket", "op": "lt", "value": 150}) == who(shoppers, "light")
    assert matching({"not": {"field": "purchase.average_basket", "op": "gte", "value": 150}}) == who(
        shoppers, "light", "none"
    )
    assert matching(
        {"field": "purchase.average_basket", "op": "between", "value": [90, 110], "window": {"last_days": 30}}
    ) == who(shoppers, "heavy")


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("lte", 2, {"heavy"}),
        ("lt", 2, set()),
        ("eq", 2, {"heavy"}),
        ("ne", 2, {"light"}),
        ("gt", 30, {"light"}),
        ("gte", 40, {"light"}),
        ("gte", 41, set()),
        ("between", [1, 40], {"heavy", "light"}),
    ],
)
def test_days_since_last_purchase(shoppers, op, value, expected):
    assert matching({"field": "purchase.days_since_last", "op": op, "value": value}) == who(shoppers, *expected)


def test_days_since_last_purchase_in_a_category_or_window(shoppers):
    assert matching({"field": "purchase.days_since_last", "op": "lte", "value": 5, "category": "tea"}) == set()
    assert matching({"field": "purchase.days_since_last", "op": "lte", "value": 10, "category": "tea"}) == who(
        shoppers, "heavy"
    )
    # not (bought within 30 days) includes members who never bought
    assert matching({"not": {"field": "purchase.days_since_last", "op": "lte", "value": 30}}) == who(
        shoppers, "light", "none"
    )


def test_spend_and_purchases_in_a_category_or_sku(shoppers):
    assert matching({"field": "purchase.spend", "op": "gte", "value": 400, "category": "coffee"}) == who(
        shoppers, "heavy"
    )
    assert matching({"field": "purchase.count", "op": "gte", "value": 1, "category": ["tea"]}) == who(
        shoppers, "heavy", "light"
    )
    assert matching(
        {"field": "purchase.count", "op": "gte", "value": 1, "sku": "GREEN", "window": {"last_days": 30}}
    ) == who(shoppers, "heavy")
    assert matching({"field": "purchase.spend", "op": "lt", "value": 50, "category": "coffee"}) == who(
        shoppers, "light", "none"
    )
    assert matching({"field": "purchase.average_basket", "op": "eq", "value": 210, "category": "coffee"}) == who(
        shoppers, "heavy"
    )


def test_line_spend_is_net_of_discounts_and_returned_quantities(program):
    buyer = member()
    purchase = buy(
        buyer,
        lines=[
            {"sku": "A", "category": "wine", "quantity": 4, "amount": "100.00", "discount": "20.00"},
            {"sku": "B", "category": "cheese", "quantity": 1, "amount": "30.00", "discount": 0},
        ],
    )
    assert matching({"field": "purchase.spend", "op": "eq", "value": 80, "category": "wine"}) == ids(buyer)
    ledger.purchase_return_clawback(purchase=purchase, external_id="r1", lines=[{"sku": "A", "quantity": 1}])
    assert matching({"field": "purchase.spend", "op": "eq", "value": 60, "category": "wine"}) == ids(buyer)
    assert matching({"field": "purchase.spend", "op": "eq", "value": 90}) == ids(buyer)  # 110 - 20 returned


def test_a_fully_returned_purchase_is_not_a_purchase(program):
    buyer = member()
    purchase = buy(buyer, amount=50)
    ledger.purchase_return_clawback(purchase=purchase, external_id="r-all", amount="50.00")
    assert matching({"field": "purchase.count", "op": "gte", "value": 1}) == set()
    assert matching({"field": "purchase.days_since_last", "op": "gte", "value": 0}) == set()
    assert matching({"field": "purchase.spend", "op": "eq", "value": 0}) == ids(buyer)


def test_spend_and_purchases_at_a_partner_or_store(program):
    cafe = Partner.objects.create(name="Cafe")
    at_cafe, at_store, elsewhere = member(), member(), member()
    buy(at_cafe, amount=40, partner=cafe, store="C1")
    buy(at_store, amount=40, store="DOWNTOWN")
    buy(elsewhere, amount=40, store="MALL")
    assert matching({"field": "purchase.spend", "op": "gte", "value": 40, "partner": cafe.pk}) == ids(at_cafe)
    assert matching({"field": "purchase.count", "op": "gte", "value": 1, "store": ["DOWNTOWN", "C1"]}) == ids(
        at_cafe, at_store
    )
    assert matching({"field": "purchase.count", "op": "eq", "value": 0, "store": "DOWNTOWN"}) == ids(at_cafe, elsewhere)


def test_future_purchases_do_not_count(program):
    buyer = member()
    buy(buyer, days_ago=-3)
    assert matching({"field": "purchase.count", "op": "gte", "value": 1}) == set()


# Loyalty --------------------------------------------------------------------------------------------


def test_available_points_and_lifetime_points_earned(program):
    rich, spender, no_account = member(), member(), member()
    ledger.points_credit(account=ledger.account_open(member=rich, program=program), points=500, reason="x")
    spent = ledger.account_open(member=spender, program=program)
    ledger.points_credit(account=spent, points=300, reason="x")
    ledger.points_redeem(account=spent, points=250)
    assert matching({"field": "loyalty.available_points", "op": "gte", "value": 100}) == ids(rich)
    assert matching({"field": "loyalty.available_points", "op": "lt", "value": 100}) == ids(spender, no_account)
    assert matching({"field": "loyalty.available_points", "op": "eq", "value": 0}) == ids(no_account)
    assert matching({"field": "loyalty.points_earned", "op": "between", "value": [200, 400]}) == ids(spender)
    assert matching({"not": {"field": "loyalty.points_earned", "op": "gte", "value": 1}}) == ids(no_account)


def test_points_expiring_within_n_days(now):
    expiring = ledger.program_create(name="Expiring", expiry_policy="fixed_months", expiry_months=1)
    soon, later, nothing = member(), member(), member()
    ledger.points_credit(account=ledger.account_open(member=soon, program=expiring), points=70, reason="x")
    with clock.frozen(T0 + dt.timedelta(days=20)):
        ledger.points_credit(account=ledger.account_open(member=later, program=expiring), points=70, reason="x")
    rule = {"field": "loyalty.points_expiring", "op": "gte", "value": 50, "days": 35, "program": expiring.pk}
    assert matching(rule) == ids(soon)
    assert matching({**rule, "days": 60}) == ids(soon, later)
    assert matching({**rule, "op": "lt"}) == ids(later, nothing)


def test_number_of_redemptions_in_a_window(program):
    redeemer, once, never = member(), member(), member()
    account = ledger.account_open(member=redeemer, program=program)
    ledger.points_credit(account=account, points=100, reason="x")
    with clock.frozen(T0 - dt.timedelta(days=100)):
        other = ledger.account_open(member=once, program=program)
        ledger.points_credit(account=other, points=100, reason="x")
        ledger.points_redeem(account=other, points=10)
    ledger.points_redeem(account=account, points=10)
    ledger.points_redeem(account=account, points=10)
    assert matching({"field": "loyalty.redemptions", "op": "gte", "value": 2}) == ids(redeemer)
    assert matching({"field": "loyalty.redemptions", "op": "gte", "value": 1, "window": {"last_days": 30}}) == ids(
        redeemer
    )
    assert matching({"field": "loyalty.redemptions", "op": "eq", "value": 0, "window": {"last_days": 30}}) == ids(
        once, never
    )


@pytest.fixture
def tiered(program):
    from loyalty.tiers import services as tiers

    for rank, (name, thresholds) in enumerate(
        [("Base", {}), ("Silver", {"spend": "500"}), ("Gold", {"spend": "1000"})]
    ):
        tiers.tier_create(program=program, name=name, rank=rank, thresholds=thresholds)
    people = {"gold": member(), "silver": member(), "base": member(), "unrated": member()}
    buy(people["gold"], amount=1200)
    buy(people["silver"], amount=600)
    for key in ("gold", "silver", "base"):
        tiers.tier_upgrade_check(member=people[key], program=program)
    return people


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "Gold", {"gold"}),
        ("eq", "base", {"base", "unrated"}),
        ("ne", "Base", {"gold", "silver"}),
        ("in", ["Silver", "Gold"], {"gold", "silver"}),
        ("not_in", ["Gold"], {"silver", "base", "unrated"}),
        ("at_least", "Silver", {"gold", "silver"}),
    ],
)
def test_tier_conditions(tiered, op, value, expected):
    assert matching({"field": "loyalty.tier", "op": op, "value": value}) == {tiered[k].pk for k in expected}


def test_an_unknown_tier_is_a_validation_error_naming_the_condition(tiered):
    with pytest.raises(ValidationFailed) as exc:
        selectors.rules_validate(rules={"all": [{"field": "loyalty.tier", "op": "eq", "value": "Diamond"}]})
    assert "all[0] (loyalty.tier): unknown tier(s) Diamond" in exc.value.message


# Scores and other segments ----------------------------------------------------------------------


@pytest.fixture
def scored(now):
    run = ScoreRun.objects.create(
        as_of=now, window_days=365, horizon_days=365, margin=Decimal("1"), started_at=now, finished_at=now
    )
    people = {"champion": member(), "lost": member(), "unscored": member()}
    for key, (r, f, m, name, clv, alive) in {
        "champion": (5, 5, 4, "champions", "850.00", 0.97),
        "lost": (1, 1, 2, "lost", "3.10", 0.12),
    }.items():
        MemberScore.objects.create(
            member=people[key],
            run=run,
            computed_on=now.date(),
            recency_days=3,
            frequency=f,
            monetary=Decimal("10"),
            r_score=r,
            f_score=f,
            m_score=m,
            rfm_segment=name,
            purchases_total=f,
            historic_clv=Decimal("10"),
            predicted_purchases=2.5 if key == "champion" else 0.1,
            probability_alive=alive,
            expected_spend=Decimal("20"),
            predicted_clv=Decimal(clv),
        )
    return people


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "score.r", "op": "gte", "value": 4}, {"champion"}),
        ({"field": "score.f", "op": "eq", "value": 1}, {"lost"}),
        ({"field": "score.m", "op": "between", "value": [2, 4]}, {"champion", "lost"}),
        ({"field": "score.rfm_segment", "op": "eq", "value": "champions"}, {"champion"}),
        ({"field": "score.rfm_segment", "op": "ne", "value": "champions"}, {"lost"}),
        ({"field": "score.rfm_segment", "op": "in", "value": ["lost", "at_risk"]}, {"lost"}),
        ({"field": "score.rfm_segment", "op": "not_in", "value": ["lost"]}, {"champion"}),
        ({"field": "score.predicted_clv", "op": "gt", "value": 100}, {"champion"}),
        ({"field": "score.probability_alive", "op": "lt", "value": 0.5}, {"lost"}),
        ({"field": "score.predicted_purchases", "op": "gte", "value": 1}, {"champion"}),
        ({"not": {"field": "score.predicted_clv", "op": "gt", "value": 100}}, {"lost", "unscored"}),
    ],
)
def test_score_conditions(scored, rule, expected):
    assert matching(rule) == {scored[k].pk for k in expected}


def test_membership_of_another_segment(now):
    vip, regular = member(external_id="vip-1"), member()
    static = services.segment_create(name="VIP list", kind="static")
    services.segment_static_upload(segment=static, content="external_id\nvip-1\n")
    assert matching({"field": "segment", "op": "in", "value": [static.pk]}) == ids(vip)
    assert matching({"field": "segment", "op": "not_in", "value": [static.pk]}) == ids(regular)


# Groups -------------------------------------------------------------------------------------------


def test_nested_groups(shoppers, now):
    heavy, light, none = shoppers["heavy"], shoppers["light"], shoppers["none"]
    members.member_update(member=light, postal_code="SW1 2AB")
    members.member_update(member=none, postal_code="SW3 4CD")
    tree = {
        "any": [
            {
                "all": [
                    {"field": "purchase.count", "op": "gte", "value": 1},
                    {"field": "member.postal_code", "op": "starts_with", "value": "SW"},
                ]
            },
            {
                "not": {
                    "any": [
                        {"field": "purchase.spend", "op": "lt", "value": 300},
                        {"field": "member.postal_code", "op": "is_set", "value": True},
                    ]
                }
            },
        ]
    }
    assert matching(tree) == ids(light, heavy)
    assert matching({"not": tree}) == ids(none)
    assert matching({"all": []}) == ids(heavy, light, none)
    assert matching({"any": []}) == set()
    assert matching({"not": {"all": []}}) == set()
    assert matching({"any": [{"all": []}, {"field": "member.has_kids", "op": "is", "value": True}]}) == ids(
        heavy, light, none
    )


LEAVES = [
    {"field": "member.age_band", "op": "ne", "value": "25-34"},
    {"field": "member.household_size", "op": "gte", "value": 2},
    {"field": "purchase.spend", "op": "gte", "value": 100},
    {"field": "purchase.spend", "op": "lt", "value": 100, "window": {"last_days": 30}},
    {"field": "purchase.count", "op": "between", "value": [1, 2], "category": "tea"},
    {"field": "purchase.count", "op": "eq", "value": 0, "category": "coffee"},
    {"field": "purchase.average_basket", "op": "ne", "value": 20},
    {"field": "purchase.days_since_last", "op": "between", "value": [0, 20]},
    {"field": "loyalty.available_points", "op": "lt", "value": 10},
    {"field": "loyalty.redemptions", "op": "eq", "value": 0},
    {"field": "consent", "op": "is", "value": False, "purpose": "marketing"},
    {"field": "score.r", "op": "gte", "value": 3},
]


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda leaf: f"{leaf['field']}-{leaf['op']}")
def test_not_is_the_exact_complement(shoppers, leaf):
    member(age_band="25-34", household_size=3)
    assert matching({"not": leaf}) == everybody() - matching(leaf)
    assert matching({"not": {"not": leaf}}) == matching(leaf)


def test_behaviour_conditions_with_the_same_window_share_one_grouped_subquery(shoppers):
    tree = {
        "all": [
            {"field": "purchase.spend", "op": "gte", "value": 100, "window": {"last_days": 30}},
            {"field": "purchase.count", "op": "gte", "value": 2, "window": {"last_days": 30}},
            {"field": "purchase.days_since_last", "op": "lte", "value": 5, "window": {"last_days": 30}},
        ]
    }
    assert matching(tree) == who(shoppers, "heavy")
    sql = str(selectors.segment_matching(rules=tree).query)
    assert sql.count("GROUP BY") == 1
    either = {"any": [{**c, "op": "lt"} if c["field"] == "purchase.count" else c for c in tree["all"]]}
    assert matching(either) == who(shoppers, "heavy", "light", "none")


def test_a_rule_tree_is_one_query(shoppers, django_assert_num_queries):
    tree = {
        "all": [
            {"field": "purchase.spend", "op": "gte", "value": 1},
            {"not": {"field": "consent", "op": "is", "value": True, "purpose": "marketing"}},
            {
                "any": [
                    {"field": "member.age_band", "op": "is_set", "value": False},
                    {"field": "score.r", "op": "eq", "value": 5},
                ]
            },
            {"field": "loyalty.available_points", "op": "lt", "value": 5},
        ]
    }
    query = selectors.segment_matching(rules=selectors.rules_validate(rules=tree))
    with django_assert_num_queries(1):
        assert set(query.values_list("pk", flat=True)) == who(shoppers, "heavy", "light")


def test_spend_is_compared_exactly_to_the_cent(program):
    buyer, other = member(), member()
    buy(buyer, amount="0.10"), buy(buyer, amount="0.20")  # 0.1 + 0.2 != 0.3 in floating point
    buy(other, amount="0.29")
    assert matching({"field": "purchase.spend", "op": "eq", "value": 0.3}) == ids(buyer)
    assert matching({"field": "purchase.spend", "op": "gte", "value": "0.30"}) == ids(buyer)
    assert matching({"field": "purchase.spend", "op": "lt", "value": 0.3}) == ids(other)
    assert matching({"field": "purchase.spend", "op": "between", "value": [0.295, 0.305]}) == ids(buyer)
