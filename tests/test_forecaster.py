"""The xarray Forecaster: fit, predict, backtest, labels, missing values, model files."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import numlstm
from numlstm import MissingInputWarning, NotFittedError
from numlstm.forecast import baselines, skill
from numlstm.forecast.streaming import line_r2, trending
from numlstm.forecast.windows import window_inputs

TINY = dict(lookback=6, horizon=3, units=4, epochs=2, batch_size=16, random_state=0)


def stations(n_time=80, n_series=3, times=None, seed=0):
    """Seasonal flow at a few stations, with rain, a non-index lat(station) and attrs everywhere."""
    rng = np.random.default_rng(seed)
    if times is None:
        times = pd.date_range("2000-01-01", periods=n_time, freq="D")
    t = np.arange(n_time)
    flow = 10 + 3 * np.sin(2 * np.pi * t / 20)[None] * np.arange(1, n_series + 1)[:, None] \
        + rng.normal(0, 0.1, (n_series, n_time))
    ds = xr.Dataset(
        {
            "flow": (("station", "time"), flow, {"units": "m3 s-1", "long_name": "river flow"}),
            "rain": (("time", "station"), rng.gamma(1.0, 1.0, (n_time, n_series)), {"units": "mm"}),
            "temp": (("time",), rng.normal(size=n_time)),
        },
        coords={"time": times, "station": [f"st{i}" for i in range(n_series)],
                "lat": ("station", np.linspace(40, 41, n_series), {"units": "degrees_north"})},
        attrs={"title": "synthetic stations"},
    )
    ds["time"].attrs["long_name"] = "time of observation"
    return ds


@pytest.fixture(scope="module")
def data():
    return stations()


@pytest.fixture(scope="module")
def fitted(data):
    return numlstm.Forecaster(**TINY).fit(data, "flow", covariates=["rain"])


# ------------------------------------------------------------------ labels


def test_predict_continues_time_and_keeps_labels(data, fitted):
    out = fitted.predict()
    assert out["flow"].dims == ("station", "time")
    assert np.array_equal(out["time"].values, pd.date_range("2000-03-21", periods=3, freq="D").values)
    assert out["station"].values.tolist() == ["st0", "st1", "st2"]
    np.testing.assert_array_equal(out["lat"].values, data["lat"].values)
    assert out["lat"].attrs == {"units": "degrees_north"}
    assert out["flow"].attrs == data["flow"].attrs
    assert out["time"].attrs == data["time"].attrs
    assert out.attrs == data.attrs
    assert out["flow"].dtype == np.float32
    assert np.isfinite(out["flow"].values).all()
    assert list(out.data_vars) == ["flow"]


def test_predict_from_given_data_equals_default_and_selects_series(data, fitted):
    xr.testing.assert_identical(fitted.predict(data), fitted.predict())
    sub = fitted.predict(data.isel(station=[2, 0]))
    np.testing.assert_allclose(sub["flow"].values, fitted.predict()["flow"].sel(station=["st2", "st0"]).values,
                               rtol=1e-6)
    assert sub["lat"].values.tolist() == [data["lat"].values[2], data["lat"].values[0]]


def test_predict_shorter_horizon_is_a_prefix(fitted):
    full, two = fitted.predict(), fitted.predict(horizon=2)
    xr.testing.assert_identical(full.isel(time=slice(0, 2)), two)


def test_predict_depends_only_on_last_lookback_steps(data, fitted):
    edited = data.copy(deep=True)
    edited["flow"][:, :10] = 0.0  # long before the last lookback steps
    xr.testing.assert_identical(fitted.predict(edited), fitted.predict(data))


def test_data_is_not_modified(data):
    before = data.copy(deep=True)
    fc = numlstm.Forecaster(**TINY).fit(data, "flow", covariates=["rain", "temp"])
    fc.predict(data)
    fc.backtest(data, start=data["time"].values[20])
    xr.testing.assert_identical(data, before)


@pytest.mark.parametrize(
    "calendar, freq",
    [("standard", "D"), ("noleap", "D"), ("360_day", "D"), ("noleap", "MS"), ("360_day", "ME"), ("all_leap", "6h"),
     ("julian", "7D")],
)
def test_cftime_calendars_continue_exactly(calendar, freq):
    times = xr.date_range("2001-01-01", periods=40, freq=freq, calendar=calendar, use_cftime=True)
    ds = stations(n_time=40, times=times)
    fc = numlstm.Forecaster(**TINY).fit(ds, "flow")
    expected = xr.date_range(times[0], periods=43, freq=freq, calendar=calendar, use_cftime=True)[40:]
    out = fc.predict()
    assert list(out["time"].values) == list(expected)


@settings(max_examples=8, deadline=None)
@given(kind=st.sampled_from(["datetime", "noleap", "360_day", "integer"]),
       freq=st.sampled_from(["D", "MS", "h", "QS-JAN"]), n_time=st.integers(12, 20))
def test_predict_time_round_trips(kind, freq, n_time):
    """The forecast's labels are exactly the next labels of the same range."""
    if kind == "integer":
        times = np.arange(5, 5 + 3 * n_time, 3)
        expected = np.arange(5 + 3 * n_time, 5 + 3 * (n_time + 3), 3)
    elif kind == "datetime":
        full = pd.date_range("1999-03-01", periods=n_time + 3, freq=freq)
        times, expected = full[:n_time], full[n_time:]
    else:
        full = xr.date_range("1999-03-01", periods=n_time + 3, freq=freq, calendar=kind, use_cftime=True)
        times, expected = full[:n_time], full[n_time:]
    ds = stations(n_time=n_time, n_series=1, times=times)
    fc = numlstm.Forecaster(lookback=4, horizon=3, units=2, epochs=1, validation_fraction=0, random_state=0)
    out = fc.fit(ds, "flow").predict()
    assert list(out["time"].values) == list(np.asarray(expected))


@pytest.mark.parametrize("freq, calendar, expected", [
    ("h", None, ("hour", "dow", "doy")),
    ("D", None, ("dow", "doy")),
    ("D", "360_day", ("doy",)),          # no weeks on the 360_day calendar
    ("7D", None, ("doy",)),              # a weekly step: the day of week never changes
    ("MS", None, ("month",)),
])
def test_auto_calendar_features_follow_the_step(freq, calendar, expected):
    if calendar:
        times = xr.date_range("2000-01-01", periods=30, freq=freq, calendar=calendar, use_cftime=True)
    else:
        times = pd.date_range("2000-01-01", periods=30, freq=freq)
    fc = numlstm.Forecaster(**TINY).fit(stations(n_time=30, n_series=1, times=times), "flow")
    assert fc.calendar_features_ == expected


def test_integer_time_axis_and_named_dataarray():
    da = xr.DataArray(np.sin(np.arange(60) / 3.0), dims="step", coords={"step": np.arange(0, 120, 2)}, name="y")
    fc = numlstm.Forecaster(**TINY).fit(da, "y", dim="step")
    assert fc.calendar_features_ == ()
    out = fc.predict()
    assert out["step"].values.tolist() == [120, 122, 124]
    assert out["y"].dims == ("step",)


def test_grid_series_dims_round_trip():
    rng = np.random.default_rng(1)
    ds = xr.Dataset({"t2m": (("time", "lat", "lon"), rng.normal(size=(50, 2, 3)))},
                    coords={"time": pd.date_range("2000-01-01", periods=50, freq="MS"), "lat": [10.0, 20.0],
                            "lon": [0.0, 1.0, 2.0]})
    fc = numlstm.Forecaster(**TINY).fit(ds, "t2m")
    assert fc.series_dims_ == ("lat", "lon")
    out = fc.predict()
    assert out["t2m"].dims == ("time", "lat", "lon")
    assert out["t2m"].shape == (3, 2, 3)
    one = fc.predict(ds.sel(lat=[20.0], lon=[2.0, 0.0]))
    np.testing.assert_allclose(one["t2m"].values, out["t2m"].sel(lat=[20.0], lon=[2.0, 0.0]).values, rtol=1e-6)


def test_multiple_targets_and_float64():
    ds = stations(n_time=60)
    fc = numlstm.Forecaster(**{**TINY, "quantiles": None}, dtype="float64").fit(ds, ["flow", "rain"])
    out = fc.predict()
    assert set(out.data_vars) == {"flow", "rain"}
    assert out["rain"].dims == ("time", "station")  # each target keeps its own dimension order
    assert out["flow"].dtype == np.float64
    # the linear stage reads each target's lags level-free: per target and output, its lag coefficients sum to 0
    lags = fc.linear_[:-1].reshape(TINY["lookback"], 2, -1)
    assert np.abs(lags).max() > 1e-3
    np.testing.assert_allclose(lags.sum(axis=0), 0.0, atol=1e-9)


# ---------------------------------------------------------------- modelling


def test_quantiles_add_a_dimension_and_never_cross(data):
    fc = numlstm.Forecaster(**{**TINY, "epochs": 3}, quantiles=[0.9, 0.1, 0.5]).fit(data, "flow")
    out = fc.predict()
    assert out["flow"].dims == ("station", "time", "quantile")
    assert out["quantile"].values.tolist() == [0.1, 0.5, 0.9]
    assert (out["flow"].diff("quantile") >= 0).all()
    bt = fc.backtest(data, start=data["time"].values[40])
    assert bt["flow"].dims == ("init_time", "lead", "station", "quantile")


def test_baseline_auto_follows_the_trend_and_the_season():
    ramp = xr.Dataset({"y": ("time", 5.0 + 0.5 * np.arange(120))},
                      coords={"time": pd.date_range("2000", periods=120, freq="D")})
    fc = numlstm.Forecaster(lookback=8, horizon=4, units=8, epochs=60, random_state=0).fit(ramp, "y")
    assert fc.relative_ is True
    out = fc.predict()["y"].values
    # A trend carries on past anything seen in training.
    assert out.min() > ramp["y"].values.max()
    np.testing.assert_allclose(out, 5.0 + 0.5 * np.arange(120, 124), atol=0.6)
    # A weekly cycle in daily data: seasonal naive (one week back) wins at every lead.
    wave = xr.Dataset({"y": ("time", np.sin(2 * np.pi * np.arange(120) / 7.0))},
                      coords={"time": pd.date_range("2000", periods=120, freq="D")})
    fc = numlstm.Forecaster(**{**TINY, "lookback": 8}).fit(wave, "y")
    assert fc.season_ == 7 and (fc.baseline_ == "seasonal").all() and fc.relative_ is False
    np.testing.assert_allclose(fc.predict()["y"].values, np.sin(2 * np.pi * np.arange(120, 123) / 7.0), atol=0.05)
    assert numlstm.Forecaster(**TINY, relative=False).fit(wave, "y").baseline_.tolist() == [[["none"]] * 3]


def _penalty_by_blocks(Z, R, train, val, origins, folds, gap=None, own=False):
    """The linear stage's choice written out plainly: the index into (none, *RIDGE_GRID) with the
    least squared error summed over the validation block and up to ``folds - 1`` equal blocks of
    training windows before it, each block scored by a ridge fitted on the windows at least the
    train/validation gap before the block (``gap`` and ``own``, a block fitted on itself too: wrong
    ways, for the test to show that they choose otherwise)."""
    p = Z.shape[1]
    penalty = np.eye(p)  # the constant too

    def ridge(rows, c):
        A, b = Z[rows].T @ Z[rows], Z[rows].T @ R[rows]
        return np.zeros((p, R.shape[1])) if c is None else np.linalg.solve(A + c * rows.sum() * penalty, b)

    first, last = origins[val].min(), origins[val].max()
    width = last + 1 - first
    gap = first - origins[train].max() if gap is None else gap
    blocks = [(train, val)]
    for k in range(1, folds):
        start = first - k * width
        held = train & (origins >= start) & (origins < start + width)
        before = train & (origins <= start - gap)
        if before.sum() < 2 * p:
            break
        blocks.append((before | held if own else before, held))
    scores = [sum(((R[held] - Z[held] @ ridge(fit, c)) ** 2).sum() for fit, held in blocks)
              for c in (None,) + skill.RIDGE_GRID]
    return int(np.argmin(scores))


def test_linear_penalty_is_chosen_over_time_ordered_blocks():
    # Residuals follow the last value in every block but the validation one, where they are noise:
    # judged on that block alone the linear stage is dropped, over three blocks it is kept.
    rng = np.random.default_rng(0)
    n, horizon = 300, 2
    origins = np.arange(n)
    Z = np.column_stack([rng.standard_normal(n), np.ones(n)])
    R = 0.8 * Z[:, :1] + 0.1 * rng.standard_normal((n, 1))
    val = origins >= 250
    R[val] = rng.standard_normal((val.sum(), 1))
    train = origins + horizon < 250
    M = np.ones_like(R, dtype=bool)
    alone = skill.fit_linear(Z, R, M, train, val, origins, folds=1)
    blocks = skill.fit_linear(Z, R, M, train, val, origins, folds=3)
    np.testing.assert_array_equal(alone, 0.0)
    assert 0.7 < blocks[0, 0] < 0.9
    # too few windows before a block to fit: the blocks stop there (here: only the validation one)
    short = origins >= 196  # two windows before the first earlier block: fewer than its ridge needs
    np.testing.assert_array_equal(skill.fit_linear(Z[short], R[short], M[short], train[short], val[short],
                                                   origins[short], folds=3)[:, 0], 0.0)


def test_linear_stage_damps_a_drift_the_blocks_do_not_support():
    # The correction drifts by 0.5 a window in the early training years and by 0.2 since: the constant
    # (the drift) is shrunk with the lags, so the blocks choose a drift between none and the training
    # windows' mean (0.44), which is all a free constant could choose from.
    rng = np.random.default_rng(0)
    n, horizon = 300, 2
    origins = np.arange(n)
    Z = np.ones((n, 1))
    R = np.where(origins < 200, 0.5, 0.2)[:, None] + 0.05 * rng.standard_normal((n, 1))
    val, train = origins >= 250, origins + horizon < 250
    drift = skill.fit_linear(Z, R, np.ones_like(R, dtype=bool), train, val, origins)[0, 0]
    full = R[train].mean()
    assert 0.1 < drift < 0.8 * full, (drift, full)
    np.testing.assert_allclose(drift, full / (1 + skill.RIDGE_GRID[4]), rtol=1e-9)  # the penalty 1.0 won


def test_linear_penalty_matches_the_blocks_written_out():
    # Weak signals whose strength drifts over time, so that which penalty wins depends on which windows
    # each block's ridge sees; wild targets in the gaps before the earlier blocks, so that a ridge
    # fitted without the gap is thrown off.
    chosen = {"folds 1": [], "folds 3": [], "no gap": [], "own targets": []}
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n, horizon, p = 160, 3, 5
        origins = np.arange(n)
        Z = np.column_stack([rng.standard_normal((n, p - 1)), np.ones(n)])
        strength = np.linspace(0.6, -0.2, n)[:, None] * rng.standard_normal((1, p - 1))
        R = (Z[:, :-1] * strength).sum(axis=1, keepdims=True) + 0.5 * rng.standard_normal((n, 1))
        R = np.repeat(R, 2, axis=1) + 0.1 * rng.standard_normal((n, 2))
        train, val = origins + horizon < 130, origins >= 129  # validation from 129, 31 wide; the gap 3
        wild = [96, 97, 65, 66]  # inside the gaps before the blocks at 98 and 67
        R[wild] = 40 * Z[wild, :1]
        M = np.ones_like(R, dtype=bool)
        for folds in (1, 3):
            k = _penalty_by_blocks(Z, R, train, val, origins, folds)
            got = skill.fit_linear(Z, R, M, train, val, origins, folds=folds)
            want = (np.zeros((p, 2)) if k == 0 else
                    np.linalg.solve(Z[train].T @ Z[train] + skill.RIDGE_GRID[k - 1] * train.sum() * np.eye(p),
                                    Z[train].T @ R[train]))
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
            chosen[f"folds {folds}"].append(k)
        chosen["no gap"].append(_penalty_by_blocks(Z, R, train, val, origins, 3, gap=1))
        chosen["own targets"].append(_penalty_by_blocks(Z, R, train, val, origins, 3, own=True))
    # the blocks matter, and the wrong ways of fitting them would have chosen otherwise
    assert chosen["folds 3"] != chosen["folds 1"] and len(set(chosen["folds 3"])) > 1, chosen
    assert chosen["no gap"] != chosen["folds 3"] and chosen["own targets"] != chosen["folds 3"], chosen


def test_linear_stage_reads_the_lags_level_free():
    # Two targets, lookback 4: the ridge on each lag's difference from its target's last value in the
    # window (and the constant), mapped back onto the lags, whose coefficients then sum to 0 per target.
    rng = np.random.default_rng(3)
    n, L, k, m = 200, 4, 2, 3
    Z = np.column_stack([rng.standard_normal((n, L * k)).cumsum(axis=1), np.ones(n)])  # lag t, target j: t * k + j
    R = 0.1 * Z[:, :-1] @ rng.standard_normal((L * k, m)) + 0.3 * rng.standard_normal((n, m))
    origins = np.arange(n)
    train, val, M = origins + 3 < 160, origins >= 159, np.ones_like(R, dtype=bool)
    got = skill.fit_linear(Z, R, M, train, val, origins, n_targets=k)
    D = np.column_stack([Z[:, t * k + j] - Z[:, (L - 1) * k + j] for t in range(L - 1) for j in range(k)]
                        + [np.ones(n)])
    on_differences = skill.fit_linear(D, R, M, train, val, origins)
    want = np.zeros((L * k + 1, m))
    for t in range(L - 1):
        for j in range(k):
            want[t * k + j] = on_differences[t * k + j]
            want[(L - 1) * k + j] -= on_differences[t * k + j]
    want[-1] = on_differences[-1]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.abs(got[:-1]).max() > 0.01
    np.testing.assert_allclose(got[:-1].reshape(L, k, m).sum(axis=0), 0.0, atol=1e-12)
    # so the stage's correction does not move with a target's level
    shifted = Z.copy()
    shifted[:, 1:-1:k] += 5.0  # target 1's lags
    np.testing.assert_allclose(shifted @ got, Z @ got, atol=1e-9)
    # on the levels as they are (no n_targets) the ridge fits another stage, which does move with them
    assert np.abs(skill.fit_linear(Z, R, M, train, val, origins)[:-1].reshape(L, k, m).sum(axis=0)).max() > 1e-3


def test_forecast_is_the_mean_of_the_stages():
    wave = xr.Dataset({"y": ("time", np.sin(2 * np.pi * np.arange(200) / 7.0) + 0.02 * np.arange(200)
                             + 0.2 * np.random.default_rng(1).standard_normal(200))},
                      coords={"time": pd.date_range("2000", periods=200, freq="D")})
    # the squared error, so that the gate is open somewhere (the absolute error's correction is gated off here)
    fc = numlstm.Forecaster(lookback=14, horizon=4, units=4, epochs=3, random_state=0, loss="mse").fit(wave, "y")
    assert fc.stage_weights_ == skill.STAGE_WEIGHTS["mean"] == (2 / 3, 1 / 3)
    assert np.abs(fc.linear_[:-1]).max() > 0 and np.abs(fc.linear_[-1]).max() > 0 and fc.shrink_.max() > 0
    np.testing.assert_allclose(fc.linear_[:-1].sum(axis=0), 0.0, atol=1e-9)  # level-free on a baseline
    forecast = fc.predict()["y"].values
    gate, linear = fc.shrink_, fc.linear_
    fc.stage_weights_ = (1.0, 1.0)
    full = fc.predict()["y"].values
    fc.shrink_ = np.zeros_like(gate)
    with_lags = fc.predict()["y"].values
    fc.linear_ = np.where(np.arange(len(linear))[:, None] == len(linear) - 1, linear, 0.0)  # the constant alone
    with_drift = fc.predict()["y"].values
    np.testing.assert_allclose(forecast, (full + with_lags + with_drift) / 3, rtol=1e-5)
    assert np.abs(forecast - full).max() > 1e-3  # the weights matter here
    # no baseline: the network forecasts the values themselves, whole, and the linear stage reads the values
    plain = numlstm.Forecaster(**TINY, baseline=None).fit(wave, "y")
    assert plain.stage_weights_ == (1.0, 1.0)
    assert np.abs(plain.linear_[:-1].sum(axis=0)).max() > 1e-2


def test_stage_weights_apply_to_the_centre_of_a_band():
    base = np.zeros((1, 1, 1))
    # levels 0.5, 0.9, 0.99: the median is the first; it is weighted, the others keep their distance
    out = skill.combine(base, None, None, np.array([[[[0.0, 1.0, 2.0]]]]), (2 / 3, 1 / 3),
                        skill.median_of(np.array([[[[0.0, 1.0, 2.0]]]]), [0.5, 0.9, 0.99]))
    np.testing.assert_allclose(out.ravel(), [0.0, 1.0, 2.0])
    raw = np.array([[[[3.0, 4.0, 6.0]]]])  # levels 0.25, 0.75, 0.9: the centre 3.5 lies between the first two
    centre = skill.median_of(raw, [0.25, 0.75, 0.9])
    np.testing.assert_allclose(centre.ravel(), [3.5])
    np.testing.assert_allclose(skill.combine(base, None, None, raw, (2 / 3, 1 / 3), centre).ravel(),
                               np.array([3.0, 4.0, 6.0]) - 2 / 3 * 3.5)
    # levels all above or all below 0.5 have no centre: such a band is left as the network made it
    np.testing.assert_array_equal(skill.median_of(raw, [0.6, 0.7, 0.8]).ravel(), [0.0])
    np.testing.assert_allclose(skill.combine(base, None, None, raw, (2 / 3, 1 / 3),
                                             skill.median_of(raw, [0.1, 0.2, 0.3])).ravel(), [3.0, 4.0, 6.0])
    np.testing.assert_allclose(skill.median_of(raw[..., :1], [0.5]).ravel(), [3.0])
    # the lags at 2/3 and the drift whole; a point forecast's network correction at 1/3
    point = skill.combine(np.ones((1, 2, 1)), np.full((1, 2, 1), 3.0), np.full((1, 2, 1), 0.5),
                          np.full((1, 2, 1), 0.9), (2 / 3, 1 / 3))
    np.testing.assert_allclose(point.ravel(), [1 + 0.5 + 2 / 3 * 2.5 + 0.3] * 2)


def test_stages_sum_is_the_former_forecast_and_old_files_sum_them(tmp_path):
    wave = xr.Dataset({"y": ("time", np.sin(2 * np.pi * np.arange(150) / 7.0) + 0.02 * np.arange(150))},
                      coords={"time": pd.date_range("2000", periods=150, freq="D")})
    summed = numlstm.Forecaster(lookback=14, horizon=4, units=4, epochs=3, random_state=0, stages="sum").fit(wave, "y")
    mean = numlstm.Forecaster(lookback=14, horizon=4, units=4, epochs=3, random_state=0).fit(wave, "y")
    assert summed.stage_weights_ == (1.0, 1.0) and mean.stage_weights_ == (2 / 3, 1 / 3)
    np.testing.assert_array_equal(summed.linear_, mean.linear_)  # the same fit, forecast two ways
    mean.stage_weights_ = (1.0, 1.0)
    xr.testing.assert_identical(mean.predict(), summed.predict())
    mean.stage_weights_ = (2 / 3, 1 / 3)
    # files are format version 3 or later, which an older numlstm refuses rather than sum the stages
    for fc in (mean, summed):
        fc.save(tmp_path / "m.nc")
        assert xr.open_dataset(tmp_path / "m.nc", engine="scipy").attrs["numlstm_format_version"] >= 3
        back = numlstm.load(tmp_path / "m.nc")
        assert back.stage_weights_ == fc.stage_weights_ and back.stages == fc.stages
    # a file from before the weights (version 1, no stages anywhere) forecasts as it did, and says so
    mean.save(tmp_path / "m.nc")
    ds = xr.load_dataset(tmp_path / "m.nc", engine="scipy")
    cfg = json.loads(ds.attrs["numlstm_config"])
    del cfg["skill"]["stages"], cfg["params"]["stages"]
    ds.attrs["numlstm_config"] = json.dumps(cfg)
    ds.attrs["numlstm_format_version"] = 1
    ds.to_netcdf(tmp_path / "old.nc", engine="scipy")
    old = numlstm.load(tmp_path / "old.nc")
    assert old.stage_weights_ == (1.0, 1.0) and old.stages == "sum"
    xr.testing.assert_allclose(old.predict(), summed.predict())
    # a warm start follows the parameter
    assert mean.set_params(stages="sum").fit(wave, "y", warm_start=True).stage_weights_ == (1.0, 1.0)


def test_stage_weights_move_a_lopsided_band_by_its_median(data):
    fc = numlstm.Forecaster(**TINY, quantiles=[0.5, 0.8, 0.95]).fit(data, "flow")
    out = {}
    for w_net in (1 / 3, 1.0, 0.0):  # the lags' weight held at 2/3
        fc.stage_weights_ = (2 / 3, w_net)
        out[w_net] = fc.predict()["flow"]
    # the median: baseline and linear stage, plus a third of the network's median correction
    without, whole = out[0.0].sel(quantile=0.5), out[1.0].sel(quantile=0.5)
    np.testing.assert_allclose(out[1 / 3].sel(quantile=0.5), without + (whole - without) / 3, rtol=1e-4, atol=1e-4)
    # every level moves with it
    np.testing.assert_allclose((out[1 / 3] - out[1.0]).std("quantile").values, 0, atol=1e-4)
    assert float(np.abs(whole - without).max()) > 1e-3


def test_stage_weights_keep_a_quantile_band_whole(data):
    fc = numlstm.Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(data, "flow")
    weighted = fc.predict()["flow"]
    fc.stage_weights_ = (1.0, 1.0)
    whole = fc.predict()["flow"]
    width = weighted.sel(quantile=0.9) - weighted.sel(quantile=0.1)
    np.testing.assert_allclose(width.values, (whole.sel(quantile=0.9) - whole.sel(quantile=0.1)).values, rtol=1e-4,
                               atol=1e-4)
    assert float(np.abs(weighted - whole).max()) > 1e-3


def _trending(scaled):
    return trending(line_r2(scaled))


def test_trending_is_r_squared_of_a_line():
    t = np.arange(50.0)
    assert _trending(t[None, :, None])
    assert not _trending(np.sin(t)[None, :, None])
    noisy = np.where(t % 7 == 0, np.nan, t)  # NaN-aware
    assert _trending(noisy[None, :, None])


def test_future_covariates_are_used():
    """y is the future covariate itself: only a model that reads it can forecast y."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    ds = xr.Dataset({"y": ("time", x), "x": ("time", x)}, coords={"time": pd.date_range("2000", periods=400)})
    train = ds.isel(time=slice(0, 380))
    fc = numlstm.Forecaster(lookback=5, horizon=3, units=16, epochs=60, learning_rate=1e-2, calendar=None,
                            relative=False, random_state=0).fit(train, "y", future_covariates=["x"])
    future = ds[["x"]].isel(time=slice(380, 383))
    out = fc.predict(future_covariates=future)["y"].values
    np.testing.assert_allclose(out, x[380:383], atol=0.3)
    bt = fc.backtest(ds, start=ds["time"].values[300])
    err = np.abs(bt["y"] - baselines.observed(ds, bt)["y"]).mean()
    assert float(err) < 0.2 * float(np.abs(x).mean())


def test_network_inputs_in_chunks_equal_one_pass(monkeypatch):
    from numlstm.forecast import windows

    rng = np.random.default_rng(3)
    features = rng.standard_normal((3, 12, 4))
    features[1, 5, 0] = np.nan
    series, origin = np.repeat(np.arange(3), 6), np.tile(np.arange(2, 8), 3)
    whole = window_inputs(features, series, origin, 3, 2, np.array([2, 3]), np.float32)
    monkeypatch.setattr(windows, "WINDOW_CHUNK", 4)  # several chunks, the last one partial
    chunked = window_inputs(features, series, origin, 3, 2, np.array([2, 3]), np.float32)
    assert whole[0].dtype == np.float32 and not whole[1].all()
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])


def test_network_inputs_layout():
    features = np.arange(2 * 6 * 3, dtype=np.float64).reshape(2, 6, 3)
    X, ok = window_inputs(features, np.array([1]), np.array([2]), lookback=2, horizon=2, known=np.array([2]))
    assert X.shape == (1, 4, 4)
    np.testing.assert_array_equal(X[0, :2, :3], features[1, 1:3])
    np.testing.assert_array_equal(X[0, :, 3], [1, 1, 0, 0])  # flag: past 1, future 0
    np.testing.assert_array_equal(X[0, 2:, :2], 0)  # unknown future features are 0
    np.testing.assert_array_equal(X[0, 2:, 2], features[1, 3:5, 2])
    assert ok.tolist() == [True]
    features[1, 4, 2] = np.nan
    X, ok = window_inputs(features, np.array([1]), np.array([2]), 2, 2, np.array([2]))
    assert ok.tolist() == [False] and np.isfinite(X).all()


def test_static_covariates_are_scaled_across_series(data):
    ds = data.assign(elevation=("station", [100.0, 300.0, 500.0]))
    fc = numlstm.Forecaster(**TINY).fit(ds, "flow", covariates=["elevation"])
    k = fc.covariates_.index("elevation") + len(fc.targets_)
    np.testing.assert_allclose(fc.scaler_.mean[:, k], 300.0)
    np.testing.assert_allclose(fc.scaler_.std[:, k], np.std([100.0, 300.0, 500.0]))
    features, *_ = fc._prediction_features(ds, None)
    np.testing.assert_allclose(features[:, 0, k], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)


def test_fit_is_reproducible(data):
    a = numlstm.Forecaster(**TINY).fit(data, "flow").predict()
    b = numlstm.Forecaster(**TINY).fit(data, "flow").predict()
    xr.testing.assert_identical(a, b)


def test_validation_history_and_early_stopping(data):
    fc = numlstm.Forecaster(**{**TINY, "epochs": 50}, validation_fraction=0.3, early_stopping=True,
                            patience=2).fit(data, "flow")
    assert len(fc.history_["val_loss"]) == len(fc.history_["loss"]) <= 50
    fc = numlstm.Forecaster(**TINY, validation_fraction=0).fit(data, "flow")
    assert "val_loss" not in fc.history_
    assert fc.n_windows_ == 3 * (80 - 6 - 3 + 1)


# ----------------------------------------------------------------- missing


def test_nan_targets_masked_and_nan_series_warned():
    ds = stations(n_time=60)
    ds["flow"][0, 10:15] = np.nan  # a gap: windows across it are skipped, targets masked
    ds["flow"][2, :] = np.nan  # a dead station
    with pytest.warns(MissingInputWarning, match="1 of 3 series have no observed target") as warned:
        fc = numlstm.Forecaster(**TINY).fit(ds, "flow")
    assert warned[0].filename == __file__  # the warning points at the user's line
    with pytest.warns(MissingInputWarning, match="1 of 3 forecast"):
        out = fc.predict()
    assert np.isnan(out["flow"].sel(station="st2")).all()
    assert np.isfinite(out["flow"].sel(station=["st0", "st1"])).all()


def test_windows_with_missing_inputs_are_kept(data):
    full = numlstm.Forecaster(**TINY, validation_fraction=0).fit(data, "flow")
    gappy = data.copy(deep=True)
    gappy["rain"][40, 0] = np.nan  # a missing input is filled in the model's view: no window is lost
    fc = numlstm.Forecaster(**TINY, validation_fraction=0).fit(gappy, "flow", covariates=["rain"])
    assert fc.n_windows_ == full.n_windows_ == 3 * (80 - 6 - 3 + 1)


# --------------------------------------------------------------- backtest


def test_backtest_matches_predict_at_each_origin(data, fitted):
    bt = fitted.backtest(data, start=data["time"].values[30], stride=10)
    assert bt["flow"].dims == ("init_time", "lead", "station")
    assert bt.sizes["init_time"] == 5 and bt["lead"].values.tolist() == [1, 2, 3]
    for i, t0 in enumerate(bt["init_time"].values):
        single = fitted.predict(data.sel(time=slice(None, t0)))
        np.testing.assert_allclose(bt["flow"].isel(init_time=i).values.T, single["flow"].values, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_array_equal(bt["valid_time"].isel(init_time=i).values, single["time"].values)
    assert bt["lat"].attrs == {"units": "degrees_north"}


def test_backtest_uses_only_complete_horizons(data, fitted):
    bt = fitted.backtest(data, start="2000-01-01")
    assert bt["init_time"].values[0] == data["time"].values[5]  # lookback - 1
    assert bt["valid_time"].values[-1, -1] == data["time"].values[-1]
    with pytest.raises(ValueError, match="no forecast origin from start"):
        fitted.backtest(data, start="2001-01-01")


def test_baselines_by_hand():
    ds = xr.Dataset({"y": ("time", np.arange(10.0) ** 2)}, coords={"time": np.arange(10)})
    fc = numlstm.Forecaster(lookback=2, horizon=3, units=2, epochs=1, validation_fraction=0, random_state=0)
    bt = fc.fit(ds, "y").backtest(ds, start=5)
    assert bt["init_time"].values.tolist() == [5, 6]
    np.testing.assert_array_equal(baselines.observed(ds, bt)["y"].values, [[36, 49, 64], [49, 64, 81]])
    np.testing.assert_array_equal(baselines.persistence(ds, bt)["y"].values, [[25, 25, 25], [36, 36, 36]])
    # season 2: one season back, or two when one season back is after the origin.
    np.testing.assert_array_equal(baselines.seasonal_naive(ds, bt, 2)["y"].values, [[16, 25, 16], [25, 36, 25]])


# -------------------------------------------------------------- model files


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_load_round_trip(tmp_path, data, suffix):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    fc = numlstm.Forecaster(**TINY, quantiles=[0.2, 0.8]).fit(data, "flow", covariates=["rain"])
    path = tmp_path / f"model{suffix}"
    fc.save(path)
    back = numlstm.load(path)
    xr.testing.assert_identical(back.predict(), fc.predict())
    xr.testing.assert_identical(back.backtest(data, start="2000-02-15"), fc.backtest(data, start="2000-02-15"))
    assert back.get_params() == fc.get_params()
    assert back.history_ == fc.history_
    fc.save(path)  # overwriting an existing model works
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"model{suffix}"]
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o777 if suffix == ".zarr" else 0o666) & ~umask


def test_model_file_saved_again_as_netcdf4_still_loads(tmp_path, fitted):
    pytest.importorskip("netCDF4")
    fitted.save(tmp_path / "model.nc")
    xr.load_dataset(tmp_path / "model.nc").to_netcdf(tmp_path / "edited.nc", engine="netcdf4")
    xr.testing.assert_identical(numlstm.load(tmp_path / "edited.nc").predict(), fitted.predict())


def test_model_file_is_plain_netcdf(tmp_path, fitted):
    path = tmp_path / "model.nc"
    fitted.save(path)
    assert path.read_bytes()[:3] == b"CDF"  # netCDF3, readable without the netCDF C library
    ds = xr.load_dataset(path, engine="scipy")
    assert ds.attrs["numlstm_format"] == "numlstm.Forecaster"
    assert ds.attrs["numlstm_format_version"] == 10  # since the member's move to its median
    config = json.loads(ds.attrs["numlstm_config"])
    assert config["targets"] == ["flow"] and config["covariates"] == ["rain"]
    H = 4
    # inputs: flow and rain, 4 calendar columns (day of week and of year), a missing-value indicator per
    # variable, the past/future flag
    assert ds["lstm0_W"].dims == ("lstm0_input", "lstm0_gate") and ds["lstm0_W"].shape == (2 + 4 + 2 + 1, 4 * H)
    assert ds["lstm0_U"].shape == (H, 4 * H)
    np.testing.assert_array_equal(ds["lstm0_U"].values, fitted.network_.get_weights()["layers"][0]["U"])
    assert ds["scale_mean"].dims == ("numlstm_series", "numlstm_feature")
    assert ds["numlstm_feature"].values.tolist() == ["flow", "rain"]
    assert ds["station"].values.tolist() == ["st0", "st1", "st2"]


def test_cftime_model_round_trip(tmp_path):
    times = xr.date_range("2001-01-01", periods=40, freq="D", calendar="360_day", use_cftime=True)
    fc = numlstm.Forecaster(**TINY).fit(stations(n_time=40, times=times), "flow")
    fc.save(tmp_path / "m.nc")
    xr.testing.assert_identical(numlstm.load(tmp_path / "m.nc").predict(), fc.predict())


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, fitted):
    from numlstm import io

    path = tmp_path / "model.nc"
    fitted.save(path)
    before = path.read_bytes()
    # int64 beyond int32 cannot be stored in netCDF3: xarray refuses half-way through the write.
    bad = xr.Dataset({"x": ("n", np.array([2**40], dtype=np.int64))})
    with pytest.raises(ValueError):
        io.write_dataset(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.nc"]


def test_load_rejects_other_files(tmp_path, fitted):
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("n", [1.0])}).to_netcdf(other, engine="scipy")
    with pytest.raises(ValueError, match="is not a numlstm.Forecaster model file"):
        numlstm.load(other)
    path = tmp_path / "model.nc"
    fitted.save(path)
    ds = xr.load_dataset(path, engine="scipy")
    newer = ds.copy()
    newer.attrs["numlstm_format_version"] = 99
    newer.to_netcdf(tmp_path / "newer.nc", engine="scipy")
    with pytest.raises(ValueError, match="format version 99, newer than this numlstm reads"):
        numlstm.load(tmp_path / "newer.nc")
    for bad in (np.inf, np.nan, 1.5, "2"):  # a damaged or hand-edited version (inf was an OverflowError)
        odd = ds.copy()
        odd.attrs["numlstm_format_version"] = bad
        odd.to_netcdf(tmp_path / "odd.nc", engine="scipy")
        with pytest.raises(ValueError, match="no valid 'numlstm_format_version' attribute .* a whole number"):
            numlstm.load(tmp_path / "odd.nc")
    ds.drop_vars("head_W").to_netcdf(tmp_path / "damaged.nc", engine="scipy")
    with pytest.raises(ValueError, match="incomplete or damaged"):
        numlstm.load(tmp_path / "damaged.nc")
    with pytest.raises(ValueError, match="no model file"):
        numlstm.load(tmp_path / "missing.nc")
    with pytest.raises(ValueError, match=r"must end in \.nc .* or \.zarr"):
        fitted.save(tmp_path / "model.pkl")
    assert not (tmp_path / "model.pkl").exists()


# ------------------------------------------------------------------- dask


@pytest.fixture
def no_compute():
    """A dask scheduler that raises: anything computed inside the block is a test failure."""
    dask = pytest.importorskip("dask")

    def refuse(dsk, keys, **kwargs):
        raise AssertionError("dask computed something; the result should have stayed lazy")

    with dask.config.set(scheduler=refuse):
        yield


def test_dask_backed_fit(data, fitted):
    pytest.importorskip("dask")
    lazy = data.chunk({"station": 1})
    fc = numlstm.Forecaster(**TINY).fit(lazy, "flow", covariates=["rain"])
    xr.testing.assert_identical(fc.predict(data), fitted.predict())
    assert lazy["flow"].chunks is not None  # fit worked on a copy


def test_predict_and_backtest_stay_lazy(data, fitted, no_compute):
    lazy = data.chunk({"station": 2, "time": 25})  # a time axis split across chunks is rechunked, lazily
    forecast = fitted.predict(lazy)
    backtest = fitted.backtest(lazy, start="2000-02-15", stride=3)
    assert forecast["flow"].chunks == ((2, 1), (3,))
    assert backtest["flow"].chunks[2] == (2, 1)
    assert backtest["valid_time"].chunks is None  # labels, not a task output
    baselines.persistence(lazy["flow"], backtest)  # scoring against naive forecasts stays lazy too
    baselines.observed(lazy["flow"], backtest)
    baselines.seasonal_naive(lazy["flow"], backtest, 7)


def test_lazy_forecast_holds_the_model_once(data):
    import pickle

    cloudpickle = pytest.importorskip("cloudpickle")
    fitted = numlstm.Forecaster(**{**TINY, "units": 48, "epochs": 1}).fit(data, "flow", covariates=["rain"])
    model_bytes = len(pickle.dumps(fitted))  # the weights dominate: the graph would grow by this per chunk
    for out in (fitted.predict(data.chunk({"station": 1})),
                fitted.backtest(data.chunk({"station": 1}), start="2000-02-15", stride=3)):
        graph = dict(out.__dask_graph__())
        holders = [key for key, task in graph.items() if "numlstm_model" in str(key) or "Forecaster(" in str(task)]
        assert len(holders) == 1, holders  # one key holds the model; the 3 tasks refer to it
        assert len(cloudpickle.dumps(graph)) < 2 * model_bytes  # not one copy per chunk of series


def test_lazy_results_equal_eager(data, fitted):
    dask = pytest.importorskip("dask")
    lazy = data.chunk({"station": 2, "time": 25})
    with dask.config.set(scheduler="threads"):
        xr.testing.assert_identical(fitted.predict(lazy).compute(), fitted.predict(data))
        xr.testing.assert_identical(fitted.backtest(lazy, start="2000-02-15", stride=3).compute(),
                                    fitted.backtest(data, start="2000-02-15", stride=3))
    quantile = numlstm.Forecaster(**TINY, quantiles=[0.1, 0.9]).fit(data, "flow", future_covariates=["temp"])
    future = xr.Dataset({"temp": ("time", np.zeros(3))},
                        coords={"time": pd.date_range("2000-03-21", periods=3, freq="D")})
    xr.testing.assert_identical(quantile.predict(lazy, future_covariates=future).compute(),
                                quantile.predict(data, future_covariates=future))


def test_lazy_result_writes_to_netcdf(tmp_path, data, fitted):
    pytest.importorskip("dask")
    fitted.backtest(data.chunk({"station": 1}), start="2000-03-01").to_netcdf(tmp_path / "bt.nc")
    back = xr.load_dataset(tmp_path / "bt.nc")
    np.testing.assert_allclose(back["flow"].values, fitted.backtest(data, start="2000-03-01")["flow"].values)


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(target="nope"), ValueError, r"target 'nope' not found in data; its data variables are"),
        (dict(target="flow", covariates=["wind"]), ValueError, "covariates 'wind' not found"),
        (dict(target="flow", covariates=["flow"]), ValueError, r"appear in both target and covariates"),
        (dict(target="flow", dim="date"), ValueError,
         r"target 'flow' has no 'date' dimension .*; pass dim=<the time dimension>, e.g. dim='time' \(its labels "
         r"are dates\)"),
        (dict(target=3), TypeError, "target must be a variable name or a list of names"),
        (dict(target="flow", future_covariates=["temp"], covariates=["temp"]), ValueError, "appear in both"),
    ],
)
def test_fit_bad_arguments(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        numlstm.Forecaster(**TINY).fit(data, **kwargs)


def test_fit_bad_data(data):
    fc = numlstm.Forecaster(**TINY)
    with pytest.raises(TypeError, match="data must be an xarray Dataset or a named DataArray, got ndarray"):
        fc.fit(data["flow"].values, "flow")
    with pytest.raises(ValueError, match="unnamed DataArray"):
        fc.fit(data["flow"].rename(None), "flow")
    with pytest.raises(ValueError, match=r"time is not sorted.*sortby"):
        fc.fit(data.isel(time=slice(None, None, -1)), "flow")
    with pytest.raises(ValueError, match="time has duplicate labels"):
        fc.fit(data.isel(time=[0, 1, 1, 2] + list(range(3, 80))), "flow")
    with pytest.raises(ValueError, match="irregular|gaps|freq"):
        fc.fit(data.isel(time=[0, 1, 2, 4] + list(range(5, 80))), "flow")
    with pytest.raises(ValueError, match=r"9 are needed for one training window"):
        fc.fit(data.isel(time=slice(0, 8)), "flow")
    nan = data.copy()
    nan["flow"] = nan["flow"] * np.nan
    with pytest.raises(ValueError, match="target 'flow' is NaN everywhere"):
        fc.fit(nan, "flow")
    text = data.assign(label=("time", np.array(["a"] * 80)))
    with pytest.raises(TypeError, match="variable 'label' has dtype .*must be numeric"):
        fc.fit(text, "label")
    with pytest.raises(ValueError, match="covariate 'rain' has dimension"):
        fc.fit(data.assign(rain=data["rain"].expand_dims(member=2)), "flow", covariates="rain")
    with pytest.raises(ValueError, match=r"data has repeated 'station' labels \['st0'\].*drop_duplicates\('station'\)"):
        fc.fit(data.isel(station=[0, 0, 1]), "flow")
    for name in ("flow", "rain"):
        bad = data.copy(deep=True)
        bad[name].loc[dict(station="st1", time="2000-02-10")] = np.inf if name == "flow" else -np.inf
        match = rf"data\['{name}'\] holds 1 infinite value\(s\), the first at station=st1, time=2000-02-10.*\.where\("
        with pytest.raises(ValueError, match=match):
            fc.fit(bad, "flow", covariates=["rain"])
        assert np.isinf(bad[name].sel(station="st1", time="2000-02-10"))  # the user's data as it was
    # streamed, one station a chunk: the same place (not the chunk's own position), no chunk's count
    pytest.importorskip("dask")
    bad = data.copy(deep=True).drop_vars("station")  # no labels: positions are all there is to name
    bad["flow"][2, 40] = np.inf
    with pytest.raises(ValueError, match=r"data\['flow'\] holds infinite values, the first at station=2, time="
                                         r"2000-02-10"):
        fc.fit(bad.chunk({"station": 1}), "flow", stream=True)
    with pytest.raises(ValueError, match=r"data\['flow'\] holds 1 infinite value\(s\), the first at station=2"):
        fc.fit(bad, "flow")
    with pytest.raises(ValueError, match=r"target 'flow' has no dimensions \(a single value\)"):
        fc.fit(data.isel(station=0, time=0), "flow")


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(lookback=0), ValueError, "lookback must be an integer >= 1, got 0"),
        (dict(horizon=0), ValueError, "horizon must be an integer >= 1, got 0"),
        (dict(horizon=2.5), TypeError, "horizon must be an integer"),
        (dict(quantiles=[0.5, 1.2]), ValueError, "strictly between 0 and 1"),
        (dict(quantiles=[0.5, 0.5]), ValueError, "repeats a level"),
        (dict(relative="yes"), TypeError, "relative must be 'auto', True or False"),
        (dict(baseline="mean"), ValueError, "baseline must be 'auto', 'persistence', 'seasonal' or None"),
        (dict(stages="median"), ValueError, "stages must be 'mean' .* or 'sum'"),
        (dict(season=1), ValueError, "season must be 'auto', None or a number of steps >= 2"),
        (dict(lookback=6, season=12), ValueError, "season=12 is longer than lookback=6"),
        (dict(calendar=["season"]), ValueError, "features must be one or more of"),
        (dict(validation_fraction=1.0), ValueError, "validation_fraction must be"),
        (dict(device="tpu"), ValueError, "device must be one of"),
        (dict(verbose=3), ValueError, "verbose must be 0"),
    ],
)
def test_bad_parameters(data, params, error, match):
    with pytest.raises(error, match=match):
        numlstm.Forecaster(**{**TINY, **params}).fit(data, "flow")


def test_predict_and_backtest_bad_input(data, fitted, tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        numlstm.Forecaster().predict()
    with pytest.raises(NotFittedError):
        numlstm.Forecaster().save(tmp_path / "m.nc")
    assert not (tmp_path / "m.nc").exists()
    with pytest.raises(ValueError, match="beyond the fitted horizon"):
        fitted.predict(horizon=4)
    with pytest.raises(ValueError, match="a forecast needs the last lookback = 6"):
        fitted.predict(data.isel(time=slice(0, 4)))
    with pytest.raises(ValueError, match=r"data variables \['rain'\] not found|data variables 'rain' not found"):
        fitted.predict(data.drop_vars("rain"))
    other = data.assign_coords(station=["a", "b", "c"])  # new series are forecast (issue 14): see below
    assert np.isfinite(fitted.predict(other)["flow"].values).all()
    with pytest.raises(ValueError, match="does not step by 'D'"):
        fitted.predict(data.isel(time=slice(None, None, 2)))
    with pytest.raises(TypeError, match="start=.* cannot be compared"):
        fitted.backtest(data, start=object())
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        fitted.backtest(data, start="2000-02-01", stride=0)
    renamed = r"target 'flow' has no 'time' dimension .* the model was fitted on; .*data.rename\(\{'date': 'time'\}\)"
    with pytest.raises(ValueError, match=renamed):
        fitted.predict(data.rename(time="date"))
    with pytest.raises(ValueError, match=renamed):
        fitted.backtest(data.rename(time="date"), start="2000-02-01")
    for call in (fitted.predict, lambda d: fitted.backtest(d, start="2000-02-01")):
        with pytest.raises(ValueError, match=r"data has repeated 'station' labels \['st1'\]"):
            call(data.isel(station=[1, 1, 2]))
    bad = data.copy(deep=True)
    bad["rain"].loc[dict(station="st0", time="2000-03-20")] = np.inf
    with pytest.raises(ValueError, match=r"data\['rain'\] holds 1 infinite value\(s\), the first at station=st0, "
                                         r"time=2000-03-20"):
        fitted.predict(bad)


def test_future_covariates_required_and_checked(data):
    fc = numlstm.Forecaster(**TINY).fit(data, "flow", future_covariates=["temp"])
    with pytest.raises(ValueError, match="needs their values at the next 3 'time' labels"):
        fc.predict()
    short = xr.Dataset({"temp": ("time", [0.0, 0.0])},
                       coords={"time": pd.date_range("2000-03-21", periods=2, freq="D")})
    with pytest.raises(ValueError, match=r"future_covariates\['temp'\] must cover"):
        fc.predict(future_covariates=short)
    with pytest.raises(ValueError, match="future_covariates 'temp' not found"):
        fc.predict(future_covariates=xr.Dataset({"x": ("time", [0.0])}))
    good = xr.Dataset({"temp": ("time", np.zeros(5))},
                      coords={"time": pd.date_range("2000-03-20", periods=5, freq="D")})
    assert fc.predict(future_covariates=good).sizes["time"] == 3
    per_station = good.expand_dims(station=data["station"].values).isel(station=[0, 0, 1, 2])
    with pytest.raises(ValueError, match=r"future_covariates has repeated 'station' labels"):
        fc.predict(future_covariates=per_station)
    infinite = good.copy(deep=True)
    infinite["temp"][2] = np.inf
    with pytest.raises(ValueError, match=r"future_covariates\['temp'\] holds 3 infinite value\(s\), the first "
                                         r"at station=st0, time=2000-03-22"):
        fc.predict(future_covariates=infinite)
    plain = numlstm.Forecaster(**TINY).fit(data, "flow")
    with pytest.raises(ValueError, match="fitted without any"):
        plain.predict(future_covariates=good)


def test_params_protocol():
    fc = numlstm.Forecaster(lookback=10)
    assert fc.get_params()["lookback"] == 10
    assert repr(fc) == "Forecaster(lookback=10)"
    with pytest.raises(ValueError, match="'lookbak' is not a parameter of Forecaster"):
        fc.set_params(lookbak=3)


def test_verbose_progress_goes_to_log(data, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="numlstm"):
        numlstm.Forecaster(**TINY, verbose=2).fit(data, "flow")
    assert "Epoch 1/2" in caplog.text


# ------------------------------------------------------------- local mode


def test_local_mode_fits_each_series_alone(data, tmp_path):
    kwargs = dict(TINY, relative=False, dtype="float64", random_state=7)
    local = numlstm.Forecaster(**kwargs, mode="local").fit(data, "flow", covariates=["rain"])
    assert local.local_params_.shape == (3, local.network_.n_params)
    assert len(local.history_) == 3 and all(len(h["loss"]) == TINY["epochs"] for h in local.history_)
    seeds = local.local_seeds_
    assert len(set(seeds.tolist())) == 3
    for s, site in enumerate(["st0", "st1", "st2"]):
        alone = numlstm.Forecaster(**{**kwargs, "random_state": int(seeds[s])}).fit(
            data.sel(station=[site]), "flow", covariates=["rain"])
        np.testing.assert_allclose(local.local_params_[s], alone.network_.params, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(local.predict()["flow"].sel(station=site).values,
                                   alone.predict()["flow"].sel(station=site).values, rtol=1e-10)
    local.save(tmp_path / "local.nc")
    ds = xr.load_dataset(tmp_path / "local.nc")
    assert ds["lstm0_W"].dims == ("numlstm_series", "lstm0_input", "lstm0_gate")
    back = numlstm.load(tmp_path / "local.nc")
    np.testing.assert_array_equal(back.local_params_, local.local_params_)
    np.testing.assert_array_equal(back.local_seeds_, seeds)
    xr.testing.assert_identical(back.backtest(data, start="2000-03-01"), local.backtest(data, start="2000-03-01"))


def test_local_mode_linear_stage_is_each_series_own(data):
    # on a baseline (level-free lags), each series' linear stage is the one a fit on that series alone finds
    local = numlstm.Forecaster(**TINY, dtype="float64", mode="local").fit(data, "flow", covariates=["rain"])
    for s, site in enumerate(["st0", "st1", "st2"]):
        alone = numlstm.Forecaster(**TINY, dtype="float64").fit(data.sel(station=[site]), "flow", covariates=["rain"])
        np.testing.assert_allclose(local.linear_[s], alone.linear_, rtol=1e-9, atol=1e-12)
    assert np.abs(local.linear_[:, :-1]).max() > 1e-3
    np.testing.assert_allclose(local.linear_[:, :-1].sum(axis=1), 0.0, atol=1e-9)


def test_local_mode_bad_combinations(data):
    with pytest.raises(ValueError, match="mode must be 'global'"):
        numlstm.Forecaster(**TINY, mode="per-series").fit(data, "flow")
    with pytest.raises(TypeError, match="client must be a dask.distributed Client"):
        numlstm.Forecaster(**TINY, mode="local").fit(data, "flow", client=object())


# ------------------------------------------------------------ skill (issue 14)


@pytest.mark.parametrize("name, target, covariates, start, kwargs", [
    ("seattle_weather", "temp_max", ["temp_min", "precipitation", "wind"], "2015-01-01",
     dict(lookback=30, horizon=7)),
    ("seattle_weather", "wind", None, "2015-01-01", dict(lookback=30, horizon=7)),
    ("us_population", "population", None, "2000-01-01", dict(lookback=8, horizon=4)),
])
def test_lead_one_is_no_worse_than_persistence_on_shipped_data(name, target, covariates, start, kwargs):
    ds = numlstm.datasets.load(name)
    before = ds.copy(deep=True)
    train = ds.sel(time=slice(None, np.datetime64(start) - np.timedelta64(1, "D")))
    fc = numlstm.Forecaster(**kwargs, random_state=0).fit(train, target, covariates=covariates)
    bt = fc.backtest(ds, start=start)
    obs = baselines.observed(ds, bt)
    lead1 = float(np.abs(bt[target].isel(lead=0) - obs[target].isel(lead=0)).mean())
    naive = float(np.abs(baselines.persistence(ds, bt)[target].isel(lead=0) - obs[target].isel(lead=0)).mean())
    assert lead1 <= naive
    xr.testing.assert_identical(ds, before)  # the user's data is never modified


def test_gappy_inputs_give_finite_forecasts_close_to_gap_free():
    ds = stations(n_time=300, n_series=3)
    fc = numlstm.Forecaster(lookback=20, horizon=5, units=16, epochs=30, random_state=0).fit(
        ds.isel(time=slice(0, 200)), "flow", covariates=["rain"])
    gappy = ds.copy(deep=True)
    rng = np.random.default_rng(1)
    for name in ("flow", "rain"):
        values = gappy[name].values
        values[rng.random(values.shape) < 0.1] = np.nan  # 10% of inputs missing, everywhere
    before = gappy.copy(deep=True)
    clean = fc.backtest(ds, start=ds["time"].values[200])
    holey = fc.backtest(gappy, start=ds["time"].values[200])
    assert np.isfinite(holey["flow"].values).all()
    obs = baselines.observed(ds, clean)["flow"]
    err_clean = float(np.abs(clean["flow"] - obs).mean())
    err_holey = float(np.abs(holey["flow"] - obs).mean())
    err_naive = float(np.abs(baselines.persistence(ds, clean)["flow"] - obs).mean())
    # The gaps cost less than a tenth of the naive forecast's error (this smooth series is forecast
    # 40 times better than persistence without gaps, so a ratio to the gap-free error would be harsh).
    assert err_clean < err_holey < err_clean + 0.1 * err_naive
    # one gap near the end of a record no longer blanks its forecast
    one = ds.copy(deep=True)
    one["rain"][-3, 0] = np.nan
    one["flow"][0, -10] = np.nan
    assert np.isfinite(fc.predict(one)["flow"].values).all()
    xr.testing.assert_identical(gappy, before)


def test_too_little_data_still_warns():
    ds = stations(n_time=80)
    fc = numlstm.Forecaster(**TINY).fit(ds, "flow")
    sparse = ds.copy(deep=True)
    sparse["flow"][1, -6:-1] = np.nan  # 5 of the last 6 steps missing: too little to forecast from
    with pytest.warns(MissingInputWarning, match="1 of 3 forecast"):
        out = fc.predict(sparse)
    assert np.isnan(out["flow"].sel(station="st1")).all()
    assert np.isfinite(out["flow"].sel(station=["st0", "st2"])).all()


def test_gate_and_baselines_survive_the_model_file(tmp_path):
    wave = xr.Dataset({"y": ("time", np.sin(2 * np.pi * np.arange(150) / 7.0) + 0.1 * np.arange(150) / 150)},
                      coords={"time": pd.date_range("2000", periods=150, freq="D")})
    fc = numlstm.Forecaster(lookback=14, horizon=4, units=4, epochs=3, random_state=0).fit(wave, "y")
    fc.save(tmp_path / "m.nc")
    back = numlstm.load(tmp_path / "m.nc")
    assert back.season_ == fc.season_ == 7 and (back.baseline_ == fc.baseline_).all()
    np.testing.assert_array_equal(back.shrink_, fc.shrink_)
    assert ((fc.shrink_ >= 0) & (fc.shrink_ <= 1)).all()
    assert back.stage_weights_ == fc.stage_weights_ == skill.STAGE_WEIGHTS["mean"]
    xr.testing.assert_identical(back.predict(), fc.predict())


def test_new_series_are_forecast_from_their_own_history(data):
    ds = data.assign(elevation=("station", [100.0, 300.0, 500.0]))
    fc = numlstm.Forecaster(lookback=10, horizon=3, units=8, epochs=20, random_state=0).fit(
        ds.sel(station=["st0", "st1"]), "flow", covariates=["rain", "elevation"])
    before = ds.copy(deep=True)
    # st2 was not in the fit: its scaling comes from its own record (its flow swings 3x st0's)
    out = fc.predict(ds)
    assert np.isfinite(out["flow"].values).all()
    bt = fc.backtest(ds, start=ds["time"].values[50])
    obs = baselines.observed(ds, bt)["flow"].sel(station="st2")
    err = float(np.abs(bt["flow"].sel(station="st2") - obs).mean())
    naive = float(np.abs(baselines.persistence(ds, bt)["flow"].sel(station="st2") - obs).mean())
    assert err < naive
    # a new series alone, in the middle of known ones, gives what it gives among them
    alone = fc.predict(ds.sel(station=["st2"]))
    np.testing.assert_allclose(alone["flow"].values[0], out["flow"].sel(station="st2").values, rtol=1e-6)
    xr.testing.assert_identical(ds, before)
    local = numlstm.Forecaster(**TINY, mode="local").fit(ds.sel(station=["st0", "st1"]), "flow")
    with pytest.raises(ValueError, match="1 series the model was not fitted on; a local model"):
        local.predict(ds)


def test_warm_start_continues_the_loss_curve(data):
    kw = dict(lookback=10, horizon=3, units=8, epochs=5, early_stopping=False, random_state=0)
    fc = numlstm.Forecaster(**kw).fit(data, "flow", covariates=["rain"])
    first = list(fc.history_["loss"])
    weights = fc.network_.params.copy()
    scale = fc.scaler_.mean.copy()
    fc.fit(data, "flow", covariates=["rain"], warm_start=True)
    loss = fc.history_["loss"]
    assert loss[:5] == first and len(loss) == 10
    # it goes on from where it was: the first continued epoch is close to the last one, far below the start
    assert loss[5] < 0.5 * (loss[0] + loss[4]) and not np.array_equal(fc.network_.params, weights)
    np.testing.assert_array_equal(fc.scaler_.mean, scale)
    # fine-tuning on one station (even one not in the fit) keeps the others' scaling
    one = data.sel(station=["st1"])
    fc.fit(one, "flow", covariates=["rain"], warm_start=True)
    np.testing.assert_array_equal(fc.scaler_.mean, scale)
    assert np.isfinite(fc.predict(data)["flow"].values).all()
    fresh = numlstm.Forecaster(**kw)
    with pytest.raises(NotFittedError):
        fresh.fit(data, "flow", warm_start=True)
    with pytest.raises(ValueError, match="warm_start=True needs the variables of the first fit"):
        fc.fit(data, "flow", warm_start=True)
    with pytest.raises(ValueError, match="rescale=True refits the scaling of a warm-started fit; pass warm_start"):
        fc.fit(data, "flow", covariates=["rain"], rescale=True)
    with pytest.raises(TypeError, match="rescale must be True or False, got 'yes'"):
        fc.fit(data, "flow", covariates=["rain"], warm_start=True, rescale="yes")


def test_warm_start_rescales_when_told(data, tmp_path):
    """rescale=True: the series in the data get the scaling of their own training stretch, the
    other fitted series keep theirs, static covariates keep the fit's (across series)."""
    fc = numlstm.Forecaster(lookback=10, horizon=3, units=8, epochs=2, random_state=0)
    fc.fit(data.assign(elev=("station", [100.0, 200.0, 400.0])), "flow", covariates=["rain", "elev"])
    before = fc.scaler_
    moved = data.sel(station=["st1"]).copy(deep=True)
    moved["flow"] = moved["flow"] * 3 + 50  # a new gauge: another level and spread
    moved = moved.assign(elev=("station", [200.0]))
    kept = moved.copy(deep=True)
    with pytest.raises(ValueError, match="checkpoint"):  # a fit that fails before training changes nothing
        fc.fit(moved, "flow", covariates=["rain", "elev"], warm_start=True, rescale=True,
               checkpoint=tmp_path / "ck.txt")
    assert fc.scaler_ is before and len(fc.history_["loss"]) == 2
    fc.fit(moved, "flow", covariates=["rain", "elev"], warm_start=True, rescale=True)
    xr.testing.assert_identical(moved, kept)  # the user's data as it was
    cut = 10 - 1 + int(np.ceil(0.8 * (80 - 3 - 10 + 1)))  # the fit's training stretch: as for a fresh fit
    flow = moved["flow"].values[0, :cut]
    np.testing.assert_allclose(fc.scaler_.mean[1, 0], flow.mean())
    np.testing.assert_allclose(fc.scaler_.std[1, 0], flow.std())
    np.testing.assert_array_equal(fc.scaler_.mean[[0, 2]], before.mean[[0, 2]])  # not in the data: kept
    np.testing.assert_array_equal(fc.scaler_.mean[:, 2], before.mean[:, 2])  # the static covariate: kept
    forecast = fc.predict(moved)["flow"].values
    assert np.isfinite(forecast).all() and abs(forecast.mean() - moved["flow"].values[0, -10:].mean()) < 15
    # predict() without data reads the recent past kept at fit: for st1 now the moved one, on its new scale
    np.testing.assert_allclose(fc.predict()["flow"].sel(station="st1").values, forecast[0], rtol=1e-6)
    # data that ends elsewhere cannot replace it: the fit says predict() needs data for them
    with pytest.warns(UserWarning, match=r"predict\(\) without data would read their recent past"):
        fc.fit(moved.isel(time=slice(0, -5)), "flow", covariates=["rain", "elev"], warm_start=True, rescale=True)


def test_conformal_bands_reach_their_coverage_on_held_out_data(tmp_path):
    rng = np.random.default_rng(0)
    n = 2300
    t = np.arange(n)
    y = 5 + 2 * np.sin(2 * np.pi * t / 7) + rng.standard_t(4, n) * 1.5  # heavy tails: raw bands miss
    ds = xr.Dataset({"y": ("time", y)}, coords={"time": pd.date_range("2000", periods=n, freq="D")})
    # no calendar features: fitted on under a year, they would make the held-out years differ
    fc = numlstm.Forecaster(lookback=14, horizon=3, units=8, epochs=3, quantiles=[0.1, 0.5, 0.9], calendar=None,
                            random_state=0).fit(ds.isel(time=slice(0, 300)), "y")
    held_out = ds["time"].values[1300]
    obs = baselines.observed(ds, fc.backtest(ds, start=held_out))
    before = float(numlstm.metrics.coverage(obs, fc.backtest(ds, start=held_out), dim=None)["y"])
    fc.calibrate(ds.isel(time=slice(300, 1300)), start=ds["time"].values[300])
    assert fc.calibration_.shape == (3, 1, 3)
    bt = fc.backtest(ds, start=held_out)
    after = float(numlstm.metrics.coverage(obs, bt, dim=None)["y"])
    assert abs(after - 0.8) < 0.06, (before, after)
    pit = numlstm.metrics.pit_histogram(obs, bt, dim=None)["y"]
    np.testing.assert_allclose(pit.values, [0.1, 0.4, 0.4, 0.1], atol=0.07)
    fc.save(tmp_path / "m.nc")
    back = numlstm.load(tmp_path / "m.nc")
    np.testing.assert_array_equal(back.calibration_, fc.calibration_)
    xr.testing.assert_identical(back.backtest(ds, start=held_out), bt)
    with pytest.raises(ValueError, match="calibrate adjusts quantile bands"):
        numlstm.Forecaster(**TINY).fit(ds.isel(time=slice(0, 100)), "y").calibrate(ds, start=held_out)
    # a warm start changes the network the shifts were computed for: they are dropped, with a warning,
    # once the fit is recorded (a fit that fails first leaves them)
    with pytest.raises(ValueError, match="checkpoint"):
        fc.fit(ds.isel(time=slice(300, 600)), "y", warm_start=True, checkpoint=tmp_path / "ck.txt")
    assert fc.calibration_ is not None
    with pytest.warns(UserWarning, match="no longer holds and was dropped: call calibrate"):
        fc.fit(ds.isel(time=slice(300, 600)), "y", warm_start=True)
    assert fc.calibration_ is None
