"""The Forecaster's local exponential-smoothing member: its kernels against a plain-Python
filter, its choice of form, and how the Forecaster mixes it into every kind of forecast."""

import copy
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from numlstm.forecast import smoothing
from numlstm.kernels import smoothing as kernels

TINY = dict(lookback=7, horizon=3, units=4, epochs=2, batch_size=16, random_state=0)
MEMBER = dict(TINY, smoothing="auto")  # the default since 2026-12-07 (an option before)


def reference_filter(y, m, alpha, beta, phi, gamma, l0, b0, s0, horizon):
    """Plain Python: one-step errors (NaN where y is missing) and, after every step, the
    forecasts 1..horizon ahead, of additive-error exponential smoothing."""
    level, trend, season = l0, b0, list(s0)
    errors, ahead = [], []
    for t, v in enumerate(y):
        j = t % m
        e = v - (level + phi * trend + season[j]) if np.isfinite(v) else 0.0
        errors.append(e if np.isfinite(v) else np.nan)
        level, trend = level + phi * trend + alpha * e, phi * trend + beta * e
        season[j] += gamma * e
        ahead.append([level + sum(phi ** i for i in range(1, h + 1)) * trend + season[(t + h) % m]
                      for h in range(1, horizon + 1)])
    return np.array(errors), np.array(ahead)


def seasonal_series(n=120, m=12, seed=0, trend=0.0, noise=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 5 + trend * t + 2 * np.sin(2 * np.pi * t / m) + rng.normal(0, noise, n)


@pytest.mark.parametrize("m, params", [(1, (0.3, 0.0, 0.0, 0.0)), (1, (0.5, 0.1, 0.9, 0.0)),
                                       (4, (0.2, 0.0, 0.0, 0.3)), (7, (0.7, 0.05, 0.98, 0.1))])
def test_kernels_match_the_filter_written_out(m, params):
    rng = np.random.default_rng(m)
    y = rng.normal(size=60).cumsum()
    y[[5, 17, 18, 40]] = np.nan  # missing steps: the state runs on as forecast
    l0, b0, s0 = 0.4, -0.1, rng.normal(size=m)
    errors, ahead = reference_filter(y, m, *params, l0, b0, s0, horizon=5)
    sse = np.empty(2)
    grid = np.array([params, (0.9, 0.0, 0.0, 0.0)])
    n = kernels.grid_sse(y, m, 10, grid, l0, b0, s0, sse)
    assert n == np.isfinite(y[10:]).sum()
    np.testing.assert_allclose(sse[0], np.nansum(errors[10:] ** 2), rtol=1e-12)
    origins = np.array([3, 17, 17, 59])  # repeated origins each get their row
    out = np.empty((4, 5))
    kernels.forecasts(y, m, np.array(params), l0, b0, s0, origins, out)
    np.testing.assert_allclose(out, ahead[origins], rtol=1e-12)


def test_choice_follows_the_series():
    rng = np.random.default_rng(1)
    seasonal = seasonal_series()
    trending = 2.0 * np.arange(120) + rng.normal(0, 1.0, 120)
    walk = rng.normal(size=120).cumsum()
    forms = [smoothing.FORMS[int(smoothing.choose_one(y, 12)[0])] for y in (seasonal, trending, walk)]
    assert forms[0] in ("level and season", "damped trend and season")
    assert forms[1] in ("damped trend", "damped trend and season")
    assert forms[2] == "level"
    assert smoothing.choose_one(walk, 12)[1] >= 0.7  # a random walk: the level follows the last value
    # too short to choose, or nothing observed: no member
    assert np.isnan(smoothing.choose_one(np.array([1.0, 2.0, np.nan]), None)).all()
    assert np.isnan(smoothing.choose_one(np.full(50, np.nan), 12)).all()
    # no season asked for: none chosen
    assert int(smoothing.choose_one(seasonal, None)[0]) in (0, 2)


def test_forms_on_the_logarithm_where_the_season_grows_with_the_level():
    """``log=True`` (candidate L, off by default) lets a positive series take a form on its
    logarithm, by the AICc on its own scale; its forecasts are the exponential of the filter's."""
    rng = np.random.default_rng(7)
    t = np.arange(144)
    growing = np.exp(4 + 0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.02, 144))
    additive = seasonal_series(n=144, seed=7)
    chosen = smoothing.choose_one(growing, 12, log=True)
    assert chosen[0] >= smoothing.LOG and "on the logarithm" in smoothing.form_name(chosen[0])
    assert smoothing.choose_one(growing, 12)[0] < smoothing.LOG  # not without log=True
    assert smoothing.choose_one(additive, 12, log=True)[0] < smoothing.LOG  # a season of constant size
    with_zero = growing.copy()
    with_zero[50] = 0.0  # a value at 0: no logarithm
    assert smoothing.choose_one(with_zero, 12, log=True)[0] < smoothing.LOG
    # the forecast is the exponential of the same form's on the logarithm of the series
    params = chosen[None, None].copy()
    plain = params.copy()
    plain[0, 0, 0] -= smoothing.LOG
    origins = np.array([40, 100, 143])
    series = np.zeros(3, dtype=int)
    logged = smoothing.forecast(growing[None, :, None], params, 12, series, origins, 12)
    on_log = smoothing.forecast(np.log(growing)[None, :, None], plain, 12, series, origins, 12)
    np.testing.assert_allclose(logged, np.exp(on_log), rtol=1e-12)
    truth = growing[origins[:2, None] + np.arange(1, 13)]
    additive_member = smoothing.forecast(growing[None, :, None], smoothing.choose(growing[None, :, None], 12), 12,
                                         series[:2], origins[:2], 12)
    assert np.abs(logged[:2, :, 0] - truth).mean() < np.abs(additive_member[:, :, 0] - truth).mean()
    assert smoothing.form_name(1) == "level and season"


def test_a_member_on_the_logarithm_replaces_the_own_only_on_a_clear_lead():
    """``choose_pair``: each series' member on its own scale and, where a form on its logarithm fits
    better, that one (NaN elsewhere); ``prefer_log`` takes the latter only where its mix, weighed as
    the fit weighs, had a validation error at most ``MARGIN`` times the mix with the own member."""
    rng = np.random.default_rng(7)
    t = np.arange(144)
    growing = np.exp(4 + 0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.02, 144))
    values = np.stack([growing, seasonal_series(n=144, seed=7)])[:, :, None]
    plain, on_log = smoothing.choose_pair(values, 12)
    np.testing.assert_array_equal(plain, smoothing.choose(values, 12))
    assert on_log[0, 0, 0] >= smoothing.LOG and np.isnan(on_log[1]).all()  # a season of constant size: none
    np.testing.assert_array_equal(smoothing.choose(values, 12, log=True), np.stack([on_log[0], plain[1]]))
    at = np.arange(96, 132)
    series, origins = np.repeat([0, 1], at.size), np.tile(at, 2)
    truth = smoothing.observed_after(values, series, origins, 12)
    member = smoothing.forecast(values, plain, 12, series, origins, 12)
    logged = smoothing.forecast(values, on_log, 12, series, origins, 12)

    def error(pipeline, params, ahead):
        rows = series == 0
        return np.abs(smoothing.mix(pipeline, ahead, None, params[series, :, -1]) - truth)[rows].sum()

    # the pipeline no better than the own member: the member on the logarithm leads by far, and is taken
    pipeline = member.copy()
    own = smoothing.weigh(plain, pipeline, member, truth, series)
    out = smoothing.prefer_log(own, on_log, pipeline, member, truth, values, 12, series, origins, 12)
    np.testing.assert_array_equal(out[0, 0, :-1], on_log[0, 0, :-1])
    assert error(pipeline, out, logged) <= smoothing.MARGIN * error(pipeline, own, member)
    np.testing.assert_array_equal(out[1], own[1])  # no member on the logarithm: its own
    np.testing.assert_array_equal(own, smoothing.weigh(plain, pipeline, member, truth, series))  # not modified
    # a pipeline close to exact: either member's weight is 0, no lead, the own member stays
    pipeline = truth + rng.normal(0, 0.01, truth.shape)
    own = smoothing.weigh(plain, pipeline, member, truth, series)
    out = smoothing.prefer_log(own, on_log, pipeline, member, truth, values, 12, series, origins, 12)
    np.testing.assert_array_equal(out, own)
    assert own[0, 0, -1] == 0.0


def test_forecasts_read_the_record_from_its_first_observation():
    y = seasonal_series(seed=2)
    padded = np.concatenate([np.full(30, np.nan), y])
    params = smoothing.choose(y[None, :, None], 12)
    late = smoothing.forecast(padded[None, :, None], params, 12, np.array([0, 0]), np.array([20, 149]), 12)
    early = smoothing.forecast(y[None, :, None], params, 12, np.array([0]), np.array([119]), 12)
    assert np.isnan(late[0]).all()  # before the first observation: nothing to forecast from
    np.testing.assert_allclose(late[1], early[0])
    # the seasonal forecast tracks the season it was never shown
    t = np.arange(120, 132)
    assert np.abs(early[0, :, 0] - (5 + 2 * np.sin(2 * np.pi * t / 12))).mean() < 0.5


def test_a_forecast_never_reads_steps_after_its_origin():
    rng = np.random.default_rng(4)
    y = seasonal_series(n=80, seed=4, trend=0.05)
    for season, forms in ((12, (0, 1, 2, 3)), (None, (0, 2))):
        for form in forms:
            params = smoothing.choose(y[None, :, None], season)
            params[0, 0, :5] = [form, 0.3, 0.03, 0.9, 0.1]
            origins = np.arange(80)
            base = smoothing.forecast(y[None, :, None], params, season, np.zeros(80, int), origins, 6)
            for o in (0, 4, 9, 11, 12, 23, 30):  # the future of each origin changed: its forecast is not
                later = y.copy()
                later[o + 1:] += rng.normal(0, 50, 79 - o)
                moved = smoothing.forecast(later[None, :, None], params, season, np.zeros(1, int), np.array([o]), 6)
                np.testing.assert_array_equal(moved[0], base[o])
            # the member starts once its initial state has been read: NaN before, numbers after
            start = {0: 10, 1: 12, 2: 10, 3: 24}[form]
            assert np.isnan(base[:start - 1]).all() and np.isfinite(base[start - 1:]).all()


def stations(n_time=90, n_series=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_time)
    flow = 10 + 3 * np.sin(2 * np.pi * t / 7)[None] * np.arange(1, n_series + 1)[:, None] \
        + 0.05 * t[None] + rng.normal(0, 0.3, (n_series, n_time))
    return xr.Dataset({"flow": (("station", "time"), flow), "rain": (("time", "station"),
                                                                      rng.gamma(1.0, 1.0, (n_time, n_series)))},
                      coords={"time": pd.date_range("2000-01-01", periods=n_time, freq="D"),
                              "station": [f"st{i}" for i in range(n_series)]})


def without_member(fc):
    off = copy.copy(fc)
    return off._set_smoothing(None, None)


def member_of(fc, ds, origins, station=None):
    """The member's forecasts written out from the module's functions: (S, n_origins, horizon); with
    ``station``, every member chosen as a new series' is in a backtest, on the record up to the first origin."""
    y = ds["flow"].transpose("station", "time").values[:, :, None].astype(np.float64)
    if station is None:
        params = fc.smoothing_
    else:  # chosen on the record up to the first origin, and screened on its last fifth
        own = y[:, :origins[0] + 1]
        params = smoothing.choose(own, fc.season_)
        last = own.shape[1] - fc.horizon - 1
        start = fc.lookback - 1 + int(np.ceil(0.8 * (last - fc.lookback + 2))) - 1
        at = np.arange(start, last + 1)
        params = smoothing.screen(own, params, fc._codes[[0, 0, 0]], fc.season_, np.repeat(np.arange(3), at.size),
                                  np.tile(at, 3), fc.horizon, fc.member_median_)
    n = y.shape[0]
    out = smoothing.forecast(y, params, fc.season_, np.repeat(np.arange(n), len(origins)),
                             np.tile(origins, n), fc.horizon, fc.member_median_)
    return out[..., 0].reshape(n, len(origins), fc.horizon)


def weighted(fc, off, member):
    """The Forecaster's mix written out: ``off`` (the pipeline's, (S, ...)) moved to ``member`` by each
    fitted series' weight (the last column of ``smoothing_``)."""
    w = fc.smoothing_[:, 0, -1].reshape((-1,) + (1,) * (np.ndim(off) - 1))
    return off + w * (member - off)


@pytest.fixture(scope="module")
def data():
    return stations()


@pytest.fixture(scope="module")
def fitted(data):
    return numlstm.Forecaster(**TINY, smoothing=True).fit(data, "flow", covariates=["rain"])


def test_forecast_is_the_weighted_mean_of_the_pipeline_and_the_member(data, fitted):
    assert fitted.smoothing_.shape == (3, 1, 6) and np.isfinite(fitted.smoothing_).all()
    assert np.isin(fitted.smoothing_[..., -1], smoothing.CHOICES).all()
    assert fitted.season_ == 7 and (fitted.smoothing_[:, 0, 0] % 2 == 1).all()  # every station has its season
    start = data["time"].values[60]
    on = fitted.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    off = without_member(fitted).backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    member = member_of(fitted, data, np.arange(60, 90 - 3))
    np.testing.assert_allclose(on, weighted(fitted, off, member), rtol=1e-5)
    # the member helps here: the seasonal stations are what it models
    obs = np.stack([data["flow"].values[:, o + 1:o + 4] for o in range(60, 87)], axis=1)
    assert np.abs(on - obs).mean() < np.abs(off - obs).mean()


def test_the_fit_takes_a_member_on_the_logarithm_where_it_leads(tmp_path):
    """Two stations whose weekly cycle grows with their level take a form on the logarithm (the tiny
    pipeline loses to it on the validation windows), the third, its cycle of constant size, its own;
    the forecasts mix in the exponential of that form's, from the end of the record as from a backtest's
    origins, and the model file keeps it."""
    rng = np.random.default_rng(3)
    t = np.arange(150)
    grow = np.exp(2 + 0.02 * t + 0.3 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.02, (2, 150)))
    flat = 10 + 3 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, (1, 150))
    data = xr.Dataset({"flow": (("station", "time"), np.concatenate([grow, flat]))},
                      coords={"time": pd.date_range("2000-01-01", periods=150, freq="D"), "station": ["a", "b", "c"]})
    fc = numlstm.Forecaster(**MEMBER).fit(data, "flow")
    codes = fc.smoothing_[:, 0, 0]
    assert (codes[:2] >= smoothing.LOG).all() and codes[2] < smoothing.LOG
    y = data["flow"].values[:, :, None]
    plain, on_log = smoothing.choose_pair(y, 7)
    np.testing.assert_array_equal(fc.smoothing_[:2, :, :-1], on_log[:2, :, :-1])
    np.testing.assert_array_equal(fc.smoothing_[2, :, :-1], plain[2, :, :-1])
    off = without_member(fc)
    member = smoothing.from_end(y, fc.smoothing_, 7, 3, median=True)[..., 0]
    want = weighted(fc, off.predict()["flow"].transpose("station", "time").values, member)
    np.testing.assert_allclose(fc.predict()["flow"].transpose("station", "time").values, want, rtol=1e-5)
    xr.testing.assert_allclose(fc.predict(), fc.predict(data))
    start = data["time"].values[120]
    on = fc.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    bt = off.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    np.testing.assert_allclose(on, weighted(fc, bt, member_of(fc, data, np.arange(120, 147))), rtol=1e-5)
    fc.save(tmp_path / "log.nc")
    back = numlstm.load(tmp_path / "log.nc")
    np.testing.assert_array_equal(back.smoothing_, fc.smoothing_)
    xr.testing.assert_identical(back.predict(data), fc.predict(data))


def test_predict_reads_the_whole_record(data, fitted):
    # predict() from the fit's end equals predict(data): the member's forecast was kept at fit
    xr.testing.assert_allclose(fitted.predict(), fitted.predict(data))
    edited = data.copy(deep=True)
    edited["flow"][:, :10] += 5.0  # long before the last lookback steps: only the member sees it
    moved = fitted.predict(edited)["flow"] - fitted.predict(data)["flow"]
    assert float(np.abs(moved).max()) > 1e-3
    off = without_member(fitted)
    xr.testing.assert_identical(off.predict(edited), off.predict(data))


def test_smoothing_false_has_no_member(data):
    fc = numlstm.Forecaster(**TINY, smoothing=False).fit(data, "flow")
    assert fc.smoothing_ is None
    xr.testing.assert_identical(fc.predict(data), without_member(fc).predict(data))
    with pytest.raises(TypeError, match="smoothing must be 'auto' .* True .* or False .*, got 'yes'"):
        numlstm.Forecaster(**TINY, smoothing="yes").fit(data, "flow")
    assert numlstm.Forecaster().smoothing == "auto"  # on by default without covariates
    assert numlstm.Forecaster(**TINY, smoothing=False).fit(data, "flow").smoothing_ is None
    # "auto": on without covariates, off with them; True forces it
    assert numlstm.Forecaster(**MEMBER).fit(data, "flow", covariates=["rain"]).smoothing_ is None
    assert numlstm.Forecaster(**TINY, smoothing=True).fit(data, "flow", covariates=["rain"]).smoothing_ is not None


def test_bands_and_samples_move_with_their_centre(data):
    fc = numlstm.Forecaster(**MEMBER, quantiles=[0.1, 0.5, 0.9]).fit(data, "flow")
    on, off = fc.predict(data)["flow"].values, without_member(fc).predict(data)["flow"].values
    shift = on - off
    np.testing.assert_allclose(shift, shift[..., 1:2].repeat(3, axis=-1), rtol=1e-4, atol=1e-4)  # one shift per band
    member = member_of(fc, data, np.array([89]))[:, 0]
    np.testing.assert_allclose(on[..., 1], weighted(fc, off[..., 1], member), rtol=1e-5)
    # a band all above the median has no centre to move: the network's band is left whole
    upper = numlstm.Forecaster(**MEMBER, quantiles=[0.8, 0.9]).fit(data, "flow")
    assert upper.smoothing_ is not None and (upper.smoothing_[..., -1] == smoothing.WEIGHT).all()  # none chosen
    xr.testing.assert_identical(upper.predict(data), without_member(upper).predict(data))
    drop = numlstm.Forecaster(**MEMBER, dropout=0.2).fit(data, "flow")
    on = drop.predict(data, samples=5)["flow"].values
    off = without_member(drop).predict(data, samples=5)["flow"].values
    np.testing.assert_allclose(on - off, (on - off)[..., :1].repeat(5, axis=-1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(on.mean(-1), weighted(drop, off.mean(-1), member_of(drop, data, np.array([89]))[:, 0]),
                               rtol=1e-5)


def test_new_series_choose_their_member_from_their_own_history(data):
    fc = numlstm.Forecaster(**MEMBER).fit(data.sel(station=["st0", "st1"]), "flow")
    bt = fc.backtest(data, start=data["time"].values[60])["flow"].sel(station="st2")
    off = without_member(fc).backtest(data, start=data["time"].values[60])["flow"].sel(station="st2")
    member = member_of(fc, data, np.arange(60, 87), station="st2")[2]
    member = np.where(np.isfinite(member), member, off.transpose("init_time", "lead").values)  # screened out: none
    np.testing.assert_allclose(bt.transpose("init_time", "lead").values,  # a new series: the weight a half
                               0.5 * (off.transpose("init_time", "lead").values + member), rtol=1e-5)


def test_a_short_record_is_forecast_by_the_pipeline_alone(data, fitted):
    short = data.isel(time=slice(-fitted.lookback, None))  # shorter than the member's start-up
    xr.testing.assert_identical(fitted.predict(short), without_member(fitted).predict(short))
    pickled_before = copy.copy(fitted)  # a model from before the member has no such attributes
    del pickled_before.smoothing_, pickled_before._smoothing_tail
    xr.testing.assert_identical(pickled_before.predict(data), without_member(fitted).predict(data))


def test_lazy_and_local_forecasts_mix_the_member(data, fitted):
    lazy = fitted.predict(data.chunk({"station": 1}))
    xr.testing.assert_allclose(lazy.compute(), fitted.predict(data))
    local = numlstm.Forecaster(**MEMBER, mode="local").fit(data, "flow")
    # chosen per series in either mode; the weight by each mode's own pipeline
    np.testing.assert_allclose(local.smoothing_[..., :-1], fitted.smoothing_[..., :-1])
    on, off = local.predict(data)["flow"].values, without_member(local).predict(data)["flow"].values
    np.testing.assert_allclose(on, weighted(local, off, member_of(local, data, np.array([89]))[:, 0]), rtol=1e-5)


def test_warm_start_keeps_the_member_and_moves_its_forecast_on(data):
    fc = numlstm.Forecaster(**MEMBER).fit(data.isel(time=slice(0, 70)), "flow")
    chosen = fc.smoothing_.copy()
    fc.fit(data, "flow", warm_start=True)
    np.testing.assert_array_equal(fc.smoothing_, chosen)
    xr.testing.assert_allclose(fc.predict(), fc.predict(data))  # the kept forecast moved to the data's end


def test_the_member_survives_the_model_file(tmp_path, data, fitted):
    path = tmp_path / "m.nc"
    fitted.save(path)
    back = numlstm.load(path)
    np.testing.assert_array_equal(back.smoothing_, fitted.smoothing_)
    xr.testing.assert_identical(back.predict(), fitted.predict())
    xr.testing.assert_identical(back.predict(data), fitted.predict(data))
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    assert ds.attrs["numlstm_format_version"] == 10  # since the member's move to its errors' median
    bad = ds.copy(deep=True)
    bad["smoothing"][0, 0, 0] = 8.0
    bad.to_netcdf(tmp_path / "bad.nc", engine="scipy")
    with pytest.raises(ValueError, match="'smoothing' holds a form that is not one of 0-7"):
        numlstm.load(tmp_path / "bad.nc")
    bad["smoothing"][0, 0, 0] = 5.0  # a form on the logarithm in a file from before them
    bad.attrs["numlstm_format_version"] = 8
    bad.to_netcdf(tmp_path / "bad8.nc", engine="scipy")
    with pytest.raises(ValueError, match="'smoothing' holds a form that is not one of 0-3"):
        numlstm.load(tmp_path / "bad8.nc")
    half = ds.drop_vars("smoothing_forecast")
    half.to_netcdf(tmp_path / "half.nc", engine="scipy")
    with pytest.raises(ValueError, match="'smoothing_forecast' is missing"):
        numlstm.load(tmp_path / "half.nc")
    none = ds.drop_vars(["smoothing", "smoothing_forecast"])  # a file without a member forecasts without one
    none.to_netcdf(tmp_path / "none.nc", engine="scipy")
    old = numlstm.load(tmp_path / "none.nc")
    assert old.smoothing_ is None
    xr.testing.assert_allclose(old.predict(data), without_member(fitted).predict(data))


def test_user_data_is_unchanged(data, fitted):
    before = data.copy(deep=True)
    fitted.predict(data)
    fitted.backtest(data, start=data["time"].values[50])
    numlstm.Forecaster(**MEMBER).fit(data, "flow")
    xr.testing.assert_identical(data, before)


def test_a_member_that_loses_to_the_naive_forecast_on_validation_is_screened_out():
    """Held values (persistence exact but at rare jumps; the member lags behind each jump) lose their
    member; noise around a level (persistence copies the noise, the member averages it) keeps it."""
    rng = np.random.default_rng(3)
    n = 400
    held = np.repeat(rng.integers(0, 5, n // 40).astype(float), 40)  # a new value every 40 days
    noisy = 10.0 + rng.standard_normal(n)
    ds = xr.Dataset({"flow": (("time", "station"), np.column_stack([held, noisy]))},
                    coords={"time": pd.date_range("2000-01-01", periods=n, freq="D"), "station": ["held", "noisy"]})
    y = ds["flow"].transpose("station", "time").values[:, :, None]
    chosen = smoothing.choose(y, 7)
    assert np.isfinite(chosen[:, 0, 0]).all()
    origins = np.arange(300, n - 3)
    series = np.repeat([0, 1], origins.size)
    codes = np.ones((2, 3, 1), dtype=np.int8)  # persistence at every lead
    screened = smoothing.screen(y, chosen, codes, 7, series, np.tile(origins, 2), 3)
    assert np.isnan(screened[0]).all() and (screened[1] == chosen[1]).all()
    # by hand, the member's and persistence's errors on those windows
    member = smoothing.forecast(y, chosen, 7, series, np.tile(origins, 2), 3)[..., 0].reshape(2, -1, 3)
    truth = y[:, origins[:, None] + np.arange(1, 4), 0]
    persistence = y[:, origins, 0][:, :, None]
    ok = np.isfinite(member)
    err_m = [np.abs(member[s] - truth[s])[ok[s]].mean() for s in range(2)]
    err_p = [np.abs(persistence[s] - truth[s])[ok[s]].mean() for s in range(2)]
    assert err_m[0] > err_p[0] and err_m[1] < err_p[1], (err_m, err_p)
    # a fit screens on its validation windows: the held series forecasts by the pipeline alone
    fc = numlstm.Forecaster(**MEMBER).fit(ds, "flow")
    assert np.isnan(fc.smoothing_[0]).all() and np.isfinite(fc.smoothing_[1, 0, 0])
    assert smoothing.screen(y, chosen, codes, 7, series[:0], origins[:0], 3).tolist() == chosen.tolist()


def test_weigh_moves_off_a_half_only_on_a_clear_lead():
    """Per series: the member exact (weight 1), the pipeline exact (0), the two 5% apart (a half:
    inside the margin), a member screened out (NaN stays), a series with no observed step (a half)."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(5, 8, 3, 1))
    pipeline, member = truth + rng.normal(size=truth.shape), truth + rng.normal(size=truth.shape)
    member[0] = truth[0]
    pipeline[1] = truth[1]
    member[2] = truth[2] + 1.0
    pipeline[2] = truth[2] + 1.05  # the member alone 2.5% better than a half, 5% than the pipeline
    truth[4] = np.nan
    params = np.tile(np.array([0.0, 0.3, 0.0, 0.0, 0.0, smoothing.WEIGHT]), (5, 1, 1))
    params[3] = np.nan
    series = np.repeat(np.arange(5), 8)
    out = smoothing.weigh(params, *(a.reshape(40, 3, 1) for a in (pipeline, member, truth)), series)
    np.testing.assert_array_equal(out[:, 0, -1], [1.0, 0.0, 0.5, np.nan, 0.5])
    np.testing.assert_array_equal(out[..., :-1], params[..., :-1])  # the member itself is unchanged
    assert params[0, 0, -1] == smoothing.WEIGHT  # a copy
    # the margin by hand: mixes at weights 0, 1/2, 1 on series 2; the best (1) is not 10% below 1/2's
    errors = [np.abs(pipeline[2] + w * (member[2] - pipeline[2]) - truth[2]).sum() for w in (0.0, 0.5, 1.0)]
    assert errors[2] < errors[1] and errors[2] > smoothing.MARGIN * errors[1]
    # mix at a weight per row: 0 is the pipeline, 1 the member
    mixed = smoothing.mix(pipeline[:2, 0], member[:2, 0], None, np.array([[0.0], [1.0]]))
    np.testing.assert_array_equal(mixed, [pipeline[0, 0], member[1, 0]])


def test_weights_are_chosen_on_the_fits_validation_windows(data):
    """Every weight is the one the rule picks from the pipeline's and the member's forecasts from each
    origin of the fit's validation windows, written out here from the model's own backtest. Nearly
    noiseless weekly cycles: the member (a seasonal form) is close to exact, the tiny network is not."""
    from numlstm.forecast import skill

    rng = np.random.default_rng(2)
    data = data.copy(deep=True)
    cycle = 10 + 3 * np.sin(2 * np.pi * np.arange(90) / 7)
    data["flow"].values[:] = cycle + rng.normal(0, 1, (3, 90)) * np.array([0.05, 0.05, 1.0])[:, None]
    fc = numlstm.Forecaster(**MEMBER).fit(data, "flow")
    assert (fc.smoothing_[..., -1] == 1.0).any()  # the member alone somewhere: the weights were chosen
    cut = skill.validation_cut(data.sizes["time"], fc.lookback, fc.horizon, fc.validation_fraction)
    plain = without_member(fc)
    plain.nonnegative_ = None
    start = data["time"].values[cut - 1]
    off = plain.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    origins = np.arange(cut - 1, data.sizes["time"] - fc.horizon)
    member = member_of(fc, data, origins)
    y = data["flow"].transpose("station", "time").values
    truth = y[:, origins[:, None] + np.arange(1, fc.horizon + 1)]
    errors = np.stack([np.abs(off + w * (member - off) - truth).sum(axis=(1, 2)) for w in smoothing.CHOICES])
    best = errors.argmin(axis=0)
    want = np.where(errors[best, np.arange(3)] <= smoothing.MARGIN * errors[0], np.take(smoothing.CHOICES, best),
                    smoothing.WEIGHT)
    np.testing.assert_array_equal(fc.smoothing_[:, 0, -1], want)
    # a weight of 0 forecasts as the pipeline, 1 as the member alone
    for w in (0.0, 1.0):
        fixed = copy.copy(fc)
        fixed.smoothing_ = fc.smoothing_.copy()
        fixed.smoothing_[..., -1] = w
        bt = fixed.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
        np.testing.assert_allclose(bt, member if w else off, rtol=1e-5, atol=1e-5)


def test_models_from_before_the_weights_mix_half_and_half(tmp_path, data, fitted):
    halves = copy.copy(fitted)
    halves.smoothing_ = fitted.smoothing_.copy()
    halves.smoothing_[..., -1] = smoothing.WEIGHT
    before = copy.copy(fitted)
    before.smoothing_ = fitted.smoothing_[..., :-1]  # five columns, as a model from before the weights held it
    pickled_before = pickle.loads(pickle.dumps(before))  # unpickled: the half added
    np.testing.assert_array_equal(pickled_before.smoothing_, halves.smoothing_)
    np.testing.assert_array_equal(copy.copy(before).smoothing_, halves.smoothing_)  # copied too
    xr.testing.assert_identical(pickled_before.predict(data), halves.predict(data))
    xr.testing.assert_identical(pickled_before.predict(), halves.predict())
    start = data["time"].values[60]
    xr.testing.assert_identical(pickled_before.backtest(data, start=start), halves.backtest(data, start=start))
    pickled_before.save(tmp_path / "before.nc")  # written with the half it mixed with
    np.testing.assert_array_equal(numlstm.load(tmp_path / "before.nc").smoothing_, halves.smoothing_)
    warm = copy.deepcopy(pickled_before).fit(data, "flow", covariates=["rain"], warm_start=True)
    np.testing.assert_array_equal(warm.smoothing_, halves.smoothing_)  # kept, with its half
    path = tmp_path / "m.nc"
    fitted.save(path)
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    np.testing.assert_array_equal(ds["smoothing"].values, fitted.smoothing_)
    v7 = ds.isel(numlstm_smoothing_param=slice(0, 5))  # a version 7 file: five columns, no weight
    v7.attrs["numlstm_format_version"] = 7
    v7.to_netcdf(tmp_path / "v7.nc", engine="scipy")
    old = numlstm.load(tmp_path / "v7.nc")
    np.testing.assert_array_equal(old.smoothing_[..., -1], smoothing.WEIGHT)
    xr.testing.assert_allclose(old.predict(data), halves.predict(data))
    v7.attrs["numlstm_format_version"] = 8  # five columns in a version 8 file
    v7.to_netcdf(tmp_path / "short.nc", engine="scipy")
    with pytest.raises(ValueError, match=r"'smoothing' has shape \(3, 1, 5\), not \(3, 1, 6\)"):
        numlstm.load(tmp_path / "short.nc")
    bad = ds.copy(deep=True)
    bad["smoothing"][0, 0, -1] = -1.0
    bad.to_netcdf(tmp_path / "bad.nc", engine="scipy")
    with pytest.raises(ValueError, match="'smoothing' holds .* not numbers from 0 to 1"):
        numlstm.load(tmp_path / "bad.nc")


def test_error_shifts_equal_numpy_on_every_form_with_few_and_many_queries():
    """The kernel against the plain-Python filter: per lead, the median less the mean of the errors
    known at each query, by a selection each (a few queries) and by the ranked prefixes (many)."""
    rng = np.random.default_rng(0)
    for trial in range(40):
        m = int(rng.choice([1, 4]))
        n_time, horizon = int(rng.integers(12, 60)), int(rng.integers(1, 5))
        y = rng.gamma(0.5, 2.0, n_time) + 0.1 * np.arange(n_time) * (trial % 2)
        y[1:][rng.random(n_time - 1) < 0.15] = np.nan
        if trial % 3 == 0:
            y = np.round(y)  # ties
        alpha, beta, phi, gamma = 0.3, 0.05 * (trial % 2), 0.9 * (trial % 2), 0.1 * (m > 1)
        s0 = rng.normal(0, 0.5, m)
        _, ahead = reference_filter(y, m, alpha, beta, phi, gamma, 1.0, 0.2 * (trial % 2), s0, horizon)
        first = int(rng.integers(0, 6))
        for n_queries in (1, 3, 20):
            queries = np.sort(rng.integers(0, n_time + 3, n_queries)).astype(np.int64)
            out = np.full((n_queries, horizon), np.nan)
            kernels.error_shifts(y, m, np.array([alpha, beta, phi, gamma]), 1.0, 0.2 * (trial % 2), s0, first,
                                 queries, out)
            for i, q in enumerate(queries):
                for h in range(horizon):
                    e = [y[t + h + 1] - ahead[t][h] for t in range(first, n_time - h - 1)
                         if t + h + 1 <= q and np.isfinite(y[t + h + 1])]
                    want = np.median(e) - np.mean(e) if e else 0.0
                    assert out[i, h] == pytest.approx(want, abs=1e-9), (trial, n_queries, i, h)


def test_median_shifts_are_the_median_less_the_mean_of_the_errors_known_at_the_origin():
    rng = np.random.default_rng(1)
    y = rng.gamma(0.3, 3.0, 300)  # rain-like: mostly near 0, a long tail
    y[rng.random(300) < 0.1] = np.nan
    y[0] = 1.0
    params = np.array([0, 0.1, 0, 0, 0, 0.5])
    level, slope, s0, steps = smoothing._initial(y, 1, False, False)
    queries = np.array([15, 40, 299])
    got = smoothing.median_shifts(y, 1, params, (level, slope, s0), steps, queries, 3)
    # the reference: the filter's forecasts from every origin written out in NumPy
    first = steps - 1
    fits = {}
    lev = level
    for t in range(y.size):
        if np.isfinite(y[t]):
            lev = lev + 0.1 * (y[t] - lev)
        fits[t] = lev
    for i, t in enumerate(queries):
        for h in range(3):
            e = [y[s + h + 1] - fits[s] for s in range(first, y.size - 1)
                 if s + h + 1 <= t and s + h + 1 < y.size and np.isfinite(y[s + h + 1])]
            assert got[i, h] == pytest.approx(np.median(e) - np.mean(e) if e else 0.0, abs=1e-10)
    assert (got[-1] < -0.3).all()  # the mean of a right-skewed series lies above its median


def test_the_median_move_takes_a_level_member_toward_a_skewed_series_median():
    rng = np.random.default_rng(2)
    rain = np.where(rng.random(400) < 0.7, 0.0, rng.gamma(1.0, 5.0, 400))
    values = rain[None, :, None]
    params = np.array([[[0, 0.02, 0, 0, 0, 0.5]]])
    series, origins = np.zeros(20, dtype=np.intp), np.arange(350, 370)
    mean_member = smoothing.forecast(values, params, None, series, origins, 3)
    median_member = smoothing.forecast(values, params, None, series, origins, 3, median=True)
    truth = smoothing.observed_after(values, series, origins, 3)
    assert np.nanmean(mean_member) > 1.0 and np.nanmean(median_member) < 0.5 * np.nanmean(mean_member)
    assert np.nanmean(np.abs(median_member - truth)) < np.nanmean(np.abs(mean_member - truth))
    np.testing.assert_array_equal(smoothing.forecast(values, params, None, series, origins, 3), mean_member)


def rain_like(n_series=2, n_time=240, seed=4):
    """Stations of daily rain: dry on most days (the median 0), a long tail on the others."""
    rng = np.random.default_rng(seed)
    rain = np.where(rng.random((n_series, n_time)) < 0.7, 0.0, rng.gamma(1.0, 6.0, (n_series, n_time)))
    return xr.Dataset({"flow": (("station", "time"), rain)},
                      coords={"time": pd.date_range("2000-01-01", periods=n_time, freq="D"),
                              "station": [f"st{i}" for i in range(n_series)]})


def floored(fc, forecasts):
    """The floor at 0 and the snap written out for stations observed at 0 (``forecasts`` (S, ...)): below
    half a station's smallest positive value, 0."""
    gap = (fc.zeros_[1][:, 0] / 2).reshape((-1,) + (1,) * (forecasts.ndim - 1))
    out = np.maximum(forecasts, 0.0)
    return np.where(out < gap, 0.0, out)


def test_the_member_forecasts_its_errors_median_unless_the_loss_is_squared(tmp_path):
    """Under the absolute error (the default) the member's forecasts move to the median of its errors,
    from the end of the record as from a backtest's origins, and the model file keeps the move; under
    the squared error they stay the filter's mean; a file from before the move forecasts the mean."""
    data = rain_like()
    fc = numlstm.Forecaster(**MEMBER).fit(data, "flow")
    assert fc.member_median_ is True
    assert np.isfinite(fc.smoothing_[:, 0, 0]).any()  # a member survived the screen
    y = data["flow"].transpose("station", "time").values[:, :, None]
    median, mean = (smoothing.from_end(y, fc.smoothing_, fc.season_, 3, m)[..., 0] for m in (True, False))
    kept = np.isfinite(fc.smoothing_[:, 0, 0])
    assert (median[kept] < mean[kept] - 0.5).all()  # the rain's median lies far below its mean
    off = without_member(fc)
    got = fc.predict()["flow"].transpose("station", "time").values
    pipeline = off.predict()["flow"].transpose("station", "time").values
    want = np.where(kept[:, None], weighted(fc, pipeline, median), pipeline)
    np.testing.assert_allclose(got, floored(fc, want), rtol=1e-5, atol=1e-6)
    start = data["time"].values[200]
    on = fc.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    bt = off.backtest(data, start=start)["flow"].transpose("station", "init_time", "lead").values
    member = member_of(fc, data, np.arange(200, 237))
    np.testing.assert_allclose(on, floored(fc, np.where(np.isfinite(member), weighted(fc, bt, member), bt)),
                               rtol=1e-5, atol=1e-6)
    fc.save(tmp_path / "median.nc")
    back = numlstm.load(tmp_path / "median.nc")
    assert back.member_median_ is True
    xr.testing.assert_identical(back.predict(data), fc.predict(data))
    with xr.open_dataset(tmp_path / "median.nc") as ds:
        ds = ds.load()
    config = json.loads(ds.attrs["numlstm_config"])
    del config["skill"]["member_median"]  # a version 9 file, from before the move
    ds.attrs.update(numlstm_config=json.dumps(config), numlstm_format_version=9)
    ds.to_netcdf(tmp_path / "v9.nc", engine="scipy")
    old = numlstm.load(tmp_path / "v9.nc")
    assert old.member_median_ is False
    assert not np.allclose(old.predict(data)["flow"].values, fc.predict(data)["flow"].values)
    ds.attrs.update(numlstm_format_version=10)  # the entry missing from a version 10 file
    ds.to_netcdf(tmp_path / "bad.nc", engine="scipy")
    with pytest.raises(ValueError, match="lacks 'member_median', which every file of version 10"):
        numlstm.load(tmp_path / "bad.nc")
    config["skill"]["member_median"] = "yes"
    ds.attrs.update(numlstm_config=json.dumps(config))
    ds.to_netcdf(tmp_path / "bad.nc", engine="scipy")
    with pytest.raises(ValueError, match="member_median is 'yes', not true or false"):
        numlstm.load(tmp_path / "bad.nc")
    squared = numlstm.Forecaster(**MEMBER, loss="mse").fit(data, "flow")
    assert squared.member_median_ is False
    y_mean = smoothing.from_end(y, squared.smoothing_, squared.season_, 3)[..., 0]
    kept = np.isfinite(squared.smoothing_[:, 0, 0])
    pipeline = without_member(squared).predict()["flow"].transpose("station", "time").values
    want = np.where(kept[:, None], weighted(squared, pipeline, y_mean), pipeline)
    np.testing.assert_allclose(squared.predict()["flow"].transpose("station", "time").values,
                               floored(squared, want), rtol=1e-5, atol=1e-6)
