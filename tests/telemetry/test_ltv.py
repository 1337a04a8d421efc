"""BTYD models behind the LTV estimate, checked against the published CDNOW results."""

from __future__ import annotations

import numpy as np
import pytest

from dropline.telemetry.ltv import (
    BgNbdFit,
    GammaGammaFit,
    ParetoNbdFit,
    conditional_expected_spend,
    expected_purchases,
    expected_purchases_population,
    expected_value,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_ltv_model,
    fit_pareto_nbd,
    probability_alive,
    summarise_transactions,
)

# Fader, Hardie & Lee (2005) and Fader & Hardie (2013) estimates on the 2,357-customer sample.
PAPER_BGNBD = BgNbdFit(r=0.243, alpha=4.414, a=0.793, b=2.426, loglik=-9582.4, converged=True,
                       at_boundary=False, boundary_note=None, customers=2357)
PAPER_PARETO = ParetoNbdFit(r=0.553, alpha=10.578, s=0.606, beta=11.669, loglik=-9595.0,
                            converged=True, at_boundary=False, boundary_note=None, customers=2357)
PAPER_GG = GammaGammaFit(p=6.25, q=3.74, gamma=15.44, loglik=-4055.9, converged=True,
                         at_boundary=False, boundary_note=None, customers=946, excluded=0)


def _round_half_up(values: np.ndarray, decimals: int) -> np.ndarray:
    # The published CSV rounds 22.345 up to 22.35; the 1e-9 absorbs binary representation.
    scale = 10.0**decimals
    return np.floor(values * scale + 0.5 + 1e-9) / scale


# --------------------------------------------------------------------------- summaries


def test_summary_rebuilt_from_the_sample_log_matches_the_published_table_exactly(
        cdnow_sample_summary, published_summary):
    s = cdnow_sample_summary

    assert len(s) == 2357
    assert s.customer_ids[:3].tolist() == ["0001", "0002", "0003"]
    assert np.array_equal(s.x, published_summary["x"])
    assert np.array_equal(np.round(s.t_x, 2), published_summary["t_x"])
    assert np.array_equal(np.round(s.T, 2), published_summary["T"])
    assert np.array_equal(_round_half_up(s.zbar, 2), published_summary["zbar"])


def test_sample_has_2457_calibration_and_1882_holdout_repeat_transactions(cdnow_sample_summary):
    s = cdnow_sample_summary

    assert s.x.sum() == 2457
    assert s.holdout_x.sum() == 1882
    assert s.holdout_weeks == 39.0
    assert int((s.x > 0).sum()) == 946


def test_rows_on_one_day_are_one_transaction_with_summed_amounts():
    ids = ["a", "a", "a", "a", "b"]
    dates = ["2024-01-01", "2024-01-08", "2024-01-08", "2024-01-15", "2024-01-03"]
    amounts = [10.0, 4.0, 6.0, 20.0, 7.0]

    s = summarise_transactions(ids, dates, amounts, calibration_end="2024-01-29")

    assert s.customer_ids.tolist() == ["a", "b"]
    assert s.x.tolist() == [2.0, 0.0]
    assert s.t_x.tolist() == [2.0, 0.0]  # weeks from first to last purchase day
    assert s.T.tolist() == [4.0, 26 / 7]
    assert s.zbar.tolist() == [15.0, 0.0]  # (4 + 6 + 20) / 2 repeat days
    assert s.first_amount.tolist() == [10.0, 7.0]
    assert s.holdout_x is None


def test_holdout_counts_days_after_calibration_and_ignores_later_rows_and_late_customers():
    ids = ["a", "a", "a", "a", "late"]
    dates = ["2024-01-01", "2024-01-10", "2024-01-10", "2024-03-01", "2024-01-05"]
    amounts = [1.0, 2.0, 3.0, 100.0, 5.0]

    s = summarise_transactions(ids, dates, amounts, calibration_end="2024-01-03",
                               holdout_end="2024-01-31")

    assert s.customer_ids.tolist() == ["a"]  # "late" was acquired after the calibration end
    assert s.x.tolist() == [0.0]
    assert s.holdout_x.tolist() == [1.0]
    assert s.holdout_revenue.tolist() == [5.0]  # the 2024-03-01 row is past the holdout end
    assert s.holdout_weeks == 4.0


def test_summary_refuses_a_holdout_that_ends_before_the_calibration():
    with pytest.raises(ValueError, match="holdout_end"):
        summarise_transactions(["a"], ["2024-01-01"], [1.0], calibration_end="2024-02-01",
                               holdout_end="2024-01-15")


# --------------------------------------------------------------------------- fits


def test_bgnbd_on_the_published_sample_gives_the_fader_hardie_lee_estimates(published_summary):
    d = published_summary

    fit = fit_bgnbd(d["x"], d["t_x"], d["T"])

    assert (round(fit.r, 3), round(fit.alpha, 3), round(fit.a, 3), round(fit.b, 3)) == (
        0.243, 4.414, 0.793, 2.426)
    assert round(fit.loglik, 1) == -9582.4
    assert fit.converged and not fit.at_boundary and fit.boundary_note is None
    assert fit.customers == 2357
    assert all(type(v) is float for v in (fit.r, fit.alpha, fit.a, fit.b, fit.loglik))


def test_bgnbd_on_the_rebuilt_summary_matches_clvtools_full_precision(cdnow_sample_summary):
    s = cdnow_sample_summary

    fit = fit_bgnbd(s.x, s.t_x, s.T)

    assert (fit.r, fit.alpha, fit.a, fit.b) == pytest.approx(
        (0.2425945, 4.4136019, 0.7929199, 2.4258881), rel=1e-5)
    assert fit.loglik == pytest.approx(-9582.429, abs=1e-3)


def test_gamma_gamma_on_the_946_repeaters_gives_the_fader_hardie_estimates(published_summary):
    d = published_summary

    fit = fit_gamma_gamma(d["x"], d["zbar"])

    assert fit.customers == 946 and fit.excluded == 0
    assert (fit.p, fit.q, fit.gamma) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)
    assert (fit.p, fit.q, fit.gamma) == pytest.approx((6.2488, 3.7446, 15.4477), rel=1e-4)
    assert round(fit.loglik, 1) == -4055.9
    assert not fit.at_boundary
    assert fit.population_mean_spend == pytest.approx(35.17, abs=0.005)


def test_pareto_nbd_on_the_published_sample_gives_the_published_estimates(published_summary):
    d = published_summary

    fit = fit_pareto_nbd(d["x"], d["t_x"], d["T"])

    assert (round(fit.r, 3), round(fit.alpha, 3), round(fit.s, 3)) == (0.553, 10.578, 0.606)
    assert fit.beta == pytest.approx(11.669, abs=0.002)
    assert round(fit.loglik, 1) == -9595.0
    assert not fit.at_boundary


def test_fitting_duplicated_customers_finds_the_same_parameters_and_twice_the_loglik(
        published_summary):
    d = published_summary
    once = fit_bgnbd(d["x"], d["t_x"], d["T"])

    twice = fit_bgnbd(*(np.tile(d[k], 2) for k in ("x", "t_x", "T")))

    assert (twice.r, twice.alpha, twice.a, twice.b) == pytest.approx(
        (once.r, once.alpha, once.a, once.b), rel=1e-4)
    assert twice.loglik == pytest.approx(2 * once.loglik, rel=1e-9)
    assert twice.customers == 4714


@pytest.mark.parametrize("fit", [fit_bgnbd, fit_pareto_nbd])
def test_customers_who_all_buy_steadily_to_the_end_show_no_drop_out(fit):
    # Everyone's last purchase is at T: nothing in the data suggests anybody has left.
    x = np.arange(300) % 7 + 3.0
    T = np.full(300, 39.0)

    result = fit(x, T, T)

    assert result.at_boundary is True
    assert "no drop-out detected" in result.boundary_note
    assert np.isfinite(result.loglik)


@pytest.mark.parametrize("fit", [fit_bgnbd, fit_pareto_nbd])
def test_customers_without_any_repeat_purchase_do_not_crash_the_fit(fit):
    zeros = np.zeros(200)

    result = fit(zeros, zeros, np.linspace(1.0, 39.0, 200))

    assert result.at_boundary is True
    assert result.boundary_note.startswith("no repeat purchases")


def test_identical_spend_everywhere_is_reported_as_no_dispersion():
    result = fit_gamma_gamma(np.full(200, 3.0), np.full(200, 20.0))

    assert result.at_boundary is True
    assert "no dispersion" in result.boundary_note


def test_heavy_tailed_spend_with_q_below_one_is_reported_as_an_infinite_mean():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 5, 500).astype(float)
    nu = rng.gamma(0.7, 1 / 10, 500)  # q = 0.7: customers' mean spend has no finite mean
    zbar = rng.gamma(3 * x, 1 / (nu * x))

    result = fit_gamma_gamma(x, zbar)

    assert result.q < 1.0
    assert result.at_boundary is True
    assert "infinite mean" in result.boundary_note
    assert result.population_mean_spend == float("inf")
    assert np.isinf(conditional_expected_spend(result, [2.0], [10.0])).all()


def test_gamma_gamma_skips_non_repeaters_and_counts_free_repeat_orders_as_excluded():
    x = np.array([0.0, 0.0, 2.0, 1.0, 3.0, 1.0, 2.0, 4.0])
    zbar = np.array([0.0, 0.0, 0.0, 12.0, 30.0, 8.0, 25.0, 14.0])

    result = fit_gamma_gamma(x, zbar)

    assert (result.customers, result.excluded) == (5, 1)


def test_inconsistent_recency_is_refused():
    with pytest.raises(ValueError, match=r"t_x must lie in \[0, T\]"):
        fit_bgnbd([1.0], [5.0], [4.0])


# --------------------------------------------------------------------------- forecasts


def test_unconditional_expectations_match_the_hardie_spreadsheet(published_summary):
    d = published_summary
    fit = fit_bgnbd(d["x"], d["t_x"], d["T"])

    actual = expected_purchases_population(fit, [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0])

    # The sheet's figures have 4 decimals from rounded parameters, hence the 5e-4.
    np.testing.assert_allclose(actual, [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576],
                               atol=5e-4)


def test_customer_one_expects_1_226_purchases_in_the_next_39_weeks(published_summary):
    d = published_summary
    fit = fit_bgnbd(d["x"], d["t_x"], d["T"])

    assert round(float(expected_purchases(fit, 39.0, 2, 30.43, 38.86)), 3) == 1.226


def test_holdout_forecast_at_the_paper_parameters_is_1653_9_against_1882_actual(
        cdnow_sample_summary):
    s = cdnow_sample_summary

    bgnbd = expected_purchases(PAPER_BGNBD, s.holdout_weeks, s.x, s.t_x, s.T).sum()
    pareto = expected_purchases(PAPER_PARETO, s.holdout_weeks, s.x, s.t_x, s.T).sum()

    assert round(float(bgnbd), 1) == 1653.9
    assert round(float(pareto), 1) == 1665.7
    assert s.holdout_x.sum() == 1882


def test_bgnbd_probability_alive_follows_the_closed_form():
    x, t_x, T = np.array([0.0, 2.0]), np.array([0.0, 30.43]), np.array([38.86, 38.86])
    f = PAPER_BGNBD

    alive = probability_alive(f, x, t_x, T)

    odds = f.a / (f.b + 1.0) * ((f.alpha + 38.86) / (f.alpha + 30.43)) ** (f.r + 2.0)
    assert alive[0] == 1.0  # without a repeat purchase there was no chance to drop out
    assert alive[1] == pytest.approx(1.0 / (1.0 + odds), rel=1e-12)


def test_pareto_probability_alive_is_lower_for_a_customer_silent_for_longer():
    alive = probability_alive(PAPER_PARETO, [3.0, 3.0], [35.0, 10.0], [38.0, 38.0])

    assert 0.0 < alive[1] < alive[0] < 1.0


def test_pareto_population_expectation_follows_the_closed_form():
    f = PAPER_PARETO

    got = expected_purchases_population(f, 52.0)

    want = f.r * f.beta / (f.alpha * (f.s - 1)) * (1 - (f.beta / (f.beta + 52.0)) ** (f.s - 1))
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_a_new_customer_is_expected_to_spend_the_population_mean():
    spend = conditional_expected_spend(PAPER_GG, [0.0, 4.0], [0.0, 50.0])

    assert spend[0] == pytest.approx(6.25 * 15.44 / 2.74, rel=1e-12)
    assert spend[1] == pytest.approx(6.25 * (15.44 + 200.0) / (25.0 + 2.74), rel=1e-12)


def test_undiscounted_value_is_expected_purchases_times_expected_spend():
    x, t_x, T, zbar = [0.0, 2.0, 5.0], [0.0, 30.43, 20.0], [38.86, 38.86, 30.0], [0.0, 22.35, 9.0]

    value = expected_value(PAPER_BGNBD, PAPER_GG, x, t_x, T, zbar, horizon_weeks=39,
                           annual_discount_rate=0.0)

    want = (expected_purchases(PAPER_BGNBD, 39.0, x, t_x, T)
            * conditional_expected_spend(PAPER_GG, x, zbar))
    np.testing.assert_allclose(value, want, rtol=1e-12)


def test_discounting_lowers_value_and_a_partial_last_week_counts_in_part():
    args = (PAPER_BGNBD, PAPER_GG, [2.0], [30.43], [38.86], [22.35])

    plain = expected_value(*args, horizon_weeks=52, annual_discount_rate=0.0)
    discounted = expected_value(*args, horizon_weeks=52, annual_discount_rate=0.10)
    half_week_more = expected_value(*args, horizon_weeks=52.5, annual_discount_rate=0.0)

    assert discounted[0] < plain[0]
    # Purchases come throughout the year, so a 10 % rate costs well under 10 %.
    assert 0.93 < discounted[0] / plain[0] < 0.97
    assert plain[0] < half_week_more[0] < expected_value(
        *args, horizon_weeks=53, annual_discount_rate=0.0)[0]


def test_fit_ltv_model_compares_the_holdout_forecast_with_what_happened(cdnow_sample_summary):
    model = fit_ltv_model(cdnow_sample_summary, with_pareto=False)

    assert (model.customers, model.repeaters) == (2357, 946)
    assert model.pareto_nbd is None
    assert model.holdout.actual_transactions == 1882.0
    assert round(model.holdout.predicted_transactions) == 1653
    assert round(model.holdout.actual_revenue, 2) == 70976.39
    assert round(model.holdout.predicted_revenue, -2) == 59900.0


def test_conditional_expectation_equals_fhl_eq_10_and_stays_finite_for_heavy_buyers():
    from scipy.special import hyp2f1

    f, t, t_x, T = PAPER_BGNBD, 39.0, 38.0, 38.86
    x = 50.0
    fhl = ((f.a + f.b + x - 1) / (f.a - 1)
           * (1 - ((f.alpha + T) / (f.alpha + T + t)) ** (f.r + x)
              * hyp2f1(f.r + x, f.b + x, f.a + f.b + x - 1, t / (f.alpha + T + t)))
           / (1 + f.a / (f.b + x - 1) * ((f.alpha + T) / (f.alpha + t_x)) ** (f.r + x)))

    got = expected_purchases(f, t, [x, 2000.0], [t_x, T], [T, T])

    assert got[0] == pytest.approx(fhl, rel=1e-10)
    # A buyer of 2,000 who bought at T: the naive form gives nan (inf * 0) here. Below the
    # no-drop-out ceiling (r+x)t/(alpha+T) = 1,803 because each purchase may be the last.
    assert round(float(got[1])) == 1374
