"""Campaign results: each arm's figures and every variant against the holdout, worked out by hand."""

import math
from decimal import Decimal

import pytest

from loyalty.campaigns import results as campaign_results_module
from loyalty.campaigns.results import (
    ArmData,
    campaign_results,
    holdout_sample_size,
    results_chart_svg,
    results_csv_rows,
)
from loyalty.campaigns.stats import StatisticsInputError


def two_arms():
    # variant "Spring mail": 4 members, revenue 10, 0, 0, 20 → 2 converted, 30 revenue, 7.50 per member
    # holdout: 4 members, revenue 5, 0, 0, 0 → 1 converted, 5 revenue, 1.25 per member
    return [
        ArmData(
            name="Spring mail",
            is_holdout=False,
            revenue=[10.0, 0.0, 0.0, 20.0],
            converted=2,
            delivered=4,
            opened=3,
            clicked=1,
            points_cost=Decimal("5.00"),
            reward_cost=Decimal("3.00"),
            message_cost=Decimal("0.40"),
        ),
        ArmData(name="holdout", is_holdout=True, revenue=[5.0, 0.0, 0.0, 0.0], converted=1),
    ]


def test_arm_figures_are_reach_conversion_rate_and_revenue_per_member():
    result = campaign_results(two_arms())
    variant, holdout = result.arms
    assert (variant.reach, variant.converted, variant.conversion_rate) == (4, 2, 0.5)
    assert (variant.revenue, variant.revenue_per_member) == (Decimal("30.00"), Decimal("7.50"))
    assert (variant.delivered, variant.opened, variant.clicked) == (4, 3, 1)
    assert variant.cost == Decimal("8.40")
    assert (holdout.reach, holdout.conversion_rate, holdout.revenue_per_member) == (4, 0.25, Decimal("1.25"))
    assert result.holdout is holdout


def test_incremental_revenue_is_difference_per_member_times_variant_reach_and_roi_subtracts_cost():
    # (7.50 - 1.25) × 4 = 25.00; cost 5.00 + 3.00 + 0.40 = 8.40; ROI 25.00 - 8.40 = 16.60; ratio 16.60 / 8.40
    (comparison,) = campaign_results(two_arms()).comparisons
    assert comparison.variant == "Spring mail"
    assert comparison.holdout == "holdout"
    assert comparison.revenue_per_member_diff == pytest.approx(6.25)
    assert comparison.incremental_revenue == Decimal("25.00")
    assert comparison.cost == Decimal("8.40")
    assert comparison.roi == Decimal("16.60")
    assert comparison.roi_ratio == pytest.approx(16.6 / 8.4)


def test_conversion_difference_is_tested_by_two_proportions_against_the_holdout():
    # 2/4 - 1/4 = 0.25; pooled 3/8: se0 = sqrt(3/8 × 5/8 × (1/4 + 1/4)) = 0.342327; z = 0.730297
    (comparison,) = campaign_results(two_arms()).comparisons
    assert comparison.conversion_diff == pytest.approx(0.25)
    z = 0.25 / math.sqrt(3 / 8 * 5 / 8 * 0.5)
    assert comparison.conversion_p == pytest.approx(math.erfc(z / math.sqrt(2)))
    se = math.sqrt(0.5 * 0.5 / 4 + 0.25 * 0.75 / 4)
    assert comparison.conversion_ci.low == pytest.approx(0.25 - 1.959963984540054 * se)


def test_revenue_difference_has_welch_and_bootstrap_intervals_around_it():
    (comparison,) = campaign_results(two_arms(), bootstrap=500, seed=1).comparisons
    assert comparison.revenue_ci.low < 6.25 < comparison.revenue_ci.high
    assert comparison.revenue_bootstrap_ci.low <= 6.25 <= comparison.revenue_bootstrap_ci.high
    assert 0 < comparison.revenue_p < 1
    assert comparison.revenue_df > 3
    again = campaign_results(two_arms(), bootstrap=500, seed=1).comparisons[0]
    assert again.revenue_bootstrap_ci == comparison.revenue_bootstrap_ci  # seeded


def test_roi_ratio_is_absent_when_the_variant_cost_nothing():
    arms = two_arms()
    arms[0] = ArmData(name="Free", is_holdout=False, revenue=[1.0, 2.0], converted=2)
    (comparison,) = campaign_results(arms).comparisons
    assert comparison.cost == 0
    assert comparison.roi == comparison.incremental_revenue
    assert comparison.roi_ratio is None


def test_without_a_holdout_comparisons_say_why_and_carry_no_figures():
    result = campaign_results([two_arms()[0]])
    (comparison,) = result.comparisons
    assert not comparison.available
    assert comparison.conversion_diff is None and comparison.incremental_revenue is None
    assert comparison.notes == ("No holdout: nothing to compare with.",)
    assert result.notes == ("This campaign has no holdout: its uplift cannot be measured.",)


def test_an_empty_arm_is_reported_not_computed():
    arms = [ArmData(name="B", is_holdout=False, revenue=[], converted=0), two_arms()[1]]
    result = campaign_results(arms)
    assert result.arms[0].conversion_rate is None and result.arms[0].revenue_per_member is None
    (comparison,) = result.comparisons
    assert not comparison.available
    assert "reached no member" in comparison.notes[0]


def test_an_arm_of_one_member_gets_no_t_test_but_a_conversion_test():
    arms = [ArmData(name="B", is_holdout=False, revenue=[3.0], converted=1), two_arms()[1]]
    (comparison,) = campaign_results(arms).comparisons
    assert comparison.conversion_diff == pytest.approx(0.75)
    assert comparison.revenue_ci is None and comparison.revenue_p is None
    assert "fewer than 2 members" in comparison.notes[0]


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        (
            [ArmData("h1", True, [1.0], 1), ArmData("h2", True, [1.0], 1)],
            "at most one holdout",
        ),
        ([ArmData("A", False, [1.0, 0.0], 3)], "3 conversions for 2 members"),
        ([ArmData("A", False, [1.0, float("inf")], 1)], "not a number"),
    ],
)
def test_arms_that_cannot_be_results_are_refused_with_a_reason(arms, message):
    with pytest.raises(StatisticsInputError, match=message):
        campaign_results(arms)


def test_csv_has_a_header_then_one_row_per_arm_with_no_nan():
    rows = results_csv_rows(campaign_results(two_arms()))
    header, variant, holdout = rows
    assert header[0] == "arm" and len(variant) == len(header) == len(holdout)
    record = dict(zip(header, variant, strict=True))
    assert record["conversion rate"] == "0.5000"
    assert record["incremental revenue"] == "25.00"
    assert record["ROI (incremental revenue - cost)"] == "16.60"
    assert dict(zip(header, holdout, strict=True))["incremental revenue"] == ""
    no_holdout = results_csv_rows(campaign_results([ArmData("A", False, [], 0)]))
    assert not any("nan" in cell.lower() for row in no_holdout for cell in row)


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted():
    rows = results_csv_rows(campaign_results([ArmData("=HYPERLINK(1)", False, [1.0], 1)]))
    assert rows[1][0] == "'=HYPERLINK(1)"


def test_chart_is_accessible_svg_with_escaped_names():
    arms = two_arms()
    arms[0] = ArmData(name='<script>alert("x")</script>', is_holdout=False, revenue=[1.0, 0.0], converted=1)
    svg = results_chart_svg(campaign_results(arms), title="Spring & summer")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert '<title id="campaign-chart-title">Spring &amp; summer</title>' in svg
    assert 'role="img"' in svg and "aria-labelledby" in svg
    assert "50.0% converted (1 of 2)" in svg  # the desc says in words what the bars show
    assert "points vs holdout" in svg


def test_chart_of_campaign_without_holdout_or_reach_shows_no_nan():
    svg = results_chart_svg(campaign_results([ArmData("A", False, [], 0)]), title="Empty")
    assert "nan" not in svg.lower() and "reached no member" in svg


def test_holdout_sample_size_is_the_two_proportion_formula():
    assert holdout_sample_size(baseline_rate=0.10, min_uplift=0.02) == 3841
    assert campaign_results_module.holdout_sample_size is holdout_sample_size


def test_bootstrap_zero_leaves_the_bootstrap_interval_out_and_says_so():
    (comparison,) = campaign_results(two_arms(), bootstrap=0).comparisons
    assert comparison.revenue_bootstrap_ci is None
    assert comparison.revenue_ci is not None  # Welch is still there
    assert any("bootstrap" in note for note in comparison.notes)
    with pytest.raises(ValueError):
        campaign_results(two_arms(), bootstrap=-1)
