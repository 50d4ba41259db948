"""BG/NBD and Gamma-Gamma fitted by our own maximum likelihood (pure, no database)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segments.scoring import clv

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cdnow():
    return pd.read_csv(DATA / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def bgnbd(cdnow):
    return clv.bgnbd_fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_bgnbd_on_cdnow_reproduces_the_published_parameters(cdnow, bgnbd):
    """Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4."""
    assert len(cdnow) == 2357
    for fitted, published in [(bgnbd.r, 0.243), (bgnbd.alpha, 4.414), (bgnbd.a, 0.793), (bgnbd.b, 2.426)]:
        assert fitted == pytest.approx(published, rel=0.01)
    assert bgnbd.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_conditional_expectation_of_a_published_customer(bgnbd):
    """Customer with x = 2, t_x = 30.43, T = 38.86: 1.226 purchases expected in the next 39 weeks."""
    assert clv.expected_purchases(bgnbd, 39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=0.001)


def test_probability_alive_falls_with_the_time_since_the_last_purchase(bgnbd):
    alive = clv.probability_alive(bgnbd, [5, 5, 5, 0], [38, 20, 2, 0], [39, 39, 39, 39])
    assert alive[0] > alive[1] > alive[2] > 0
    assert alive[3] == 1.0  # no repeat purchase: BG/NBD cannot have seen a drop-out


def test_expected_purchases_grow_with_the_horizon_and_the_frequency(bgnbd):
    short, long = clv.expected_purchases(bgnbd, 10, [3], [30], [39]), clv.expected_purchases(bgnbd, 52, [3], [30], [39])
    assert 0 < short[0] < long[0]
    assert clv.expected_purchases(bgnbd, 52, [10], [38], [39])[0] > long[0]


def test_a_compressed_table_fits_the_same_parameters(cdnow, bgnbd):
    (x, t_x, T), weights, inverse = clv.compress(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert len(x) < len(cdnow) and weights.sum() == len(cdnow)
    assert np.array_equal(x[inverse], cdnow["frequency"].to_numpy())
    compressed = clv.bgnbd_fit(x, t_x, T, weights)
    assert compressed.r == pytest.approx(bgnbd.r, rel=1e-4)
    assert compressed.b == pytest.approx(bgnbd.b, rel=1e-4)


def test_gamma_gamma_on_cdnow_reproduces_the_published_parameters():
    """Fader & Hardie (2013), CDNOW repeat buyers: p = 6.25, q = 3.74, gamma = 15.44."""
    data = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    repeaters = data[data["x"] > 0]
    assert len(repeaters) == 946
    model = clv.gamma_gamma_fit(repeaters["x"], repeaters["zbar"])
    for fitted, published in [(model.p, 6.25), (model.q, 3.74), (model.gamma, 15.44)]:
        assert fitted == pytest.approx(published, rel=0.01)
    # the expected spend is a weighted mean of the population mean and the customer's own mean
    population = model.p * model.gamma / (model.q - 1)
    one, many = clv.expected_spend(model, [1, 50], [100.0, 100.0])
    assert population < one < many < 100


def test_fits_refuse_data_that_cannot_support_them():
    with pytest.raises(clv.FitError):
        clv.bgnbd_fit([0, 0, 0], [0, 0, 0], [10, 10, 10])
    with pytest.raises(clv.FitError):
        clv.bgnbd_fit([1, 2], [5, 20], [10, 10])
    with pytest.raises(clv.FitError):
        clv.gamma_gamma_fit([1], [0.0])
    with pytest.raises(clv.FitError):
        clv.expected_spend(clv.GammaGamma(p=1, q=0.5, gamma=1), [1], [10])


def test_the_log_series_of_2f1_equals_scipy_where_scipy_is_finite():
    from scipy import special

    A = np.array([5.0, 50.0, 300.0, 2000.0])
    B = np.array([2.0, 20.0, 10.0, 1.5])
    C = np.array([8.0, 60.0, 305.0, 2003.0])
    z = np.array([0.1, 0.5, 0.7, 0.9])
    assert np.allclose(clv.log_hyp2f1_series(A, B, C, z), np.log(special.hyp2f1(A, B, C, z)), rtol=1e-10)
    assert clv.log_hyp2f1_series(3.0, 4.0, 5.0, 0.0) == 0.0  # 2F1(.; 0) = 1


def test_expected_purchases_stay_finite_where_2f1_overflows():
    """A base with nearly one drop-out probability for everybody fits huge a and b (the bench's
    synthetic base: a=312, b=22026); scipy's 2F1 overflows for recent members (z near 1). Their
    expectation must come from the series, not silently become 0."""
    model = clv.BgNbd(r=0.921, alpha=0.924, a=311.983, b=22026.466, log_likelihood=0.0)
    T = np.array([1.0, 5.0, 10.0, 30.0, 60.0, 104.0])
    x = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 40.0])
    t_x = T * 0.9
    purchases = clv.expected_purchases(model, 52.0, x, t_x, T)
    assert np.all(np.isfinite(purchases)) and np.all(purchases > 0)
    # with a/(a+b) = 1.4% drop-out per purchase almost everyone alive buys about as often as before
    rate = (model.r + x) / (model.alpha + T)
    assert np.all(purchases < 52.0 * rate * 1.01)
    assert np.all(purchases > 52.0 * rate * clv.probability_alive(model, x, t_x, T) * 0.5)
