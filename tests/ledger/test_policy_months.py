import datetime as dt

from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from loyalty.ledger.policy import add_months


@given(
    moment=st.datetimes(
        min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
    ),
    months=st.integers(min_value=0, max_value=240),
)
def test_adding_months_clips_the_day_as_relativedelta_does(moment, months):
    assert add_months(moment, months) == moment + relativedelta(months=months)


def test_a_month_after_january_31_is_the_last_day_of_february():
    assert add_months(dt.datetime(2024, 1, 31, 12, tzinfo=dt.UTC), 1) == dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)
    assert add_months(dt.datetime(2023, 1, 31, 12, tzinfo=dt.UTC), 13) == dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)
