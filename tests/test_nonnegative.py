"""The Forecaster's ``nonnegative``: forecasts of series that were never below 0 are floored at 0."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from numlstm.forecast import skill

TINY = dict(lookback=8, horizon=4, units=8, epochs=20, batch_size=32, random_state=0)


def draining(n=300, n_series=1, seed=0):
    """Tanks that drain by 1 a day, at random speeds, until empty, sit empty a few days and are refilled
    to 10: never below 0, and a forecast that carries the fall on goes below it."""
    rng = np.random.default_rng(seed)
    y = np.empty((n, n_series))
    for s in range(n_series):
        level, empty = 10.0, 0
        for t in range(n):
            if level <= 0 and empty >= 3:
                level, empty = 10.0, 0
            elif level <= 0:
                empty += 1
            y[t, s] = level
            level = max(0.0, level - rng.uniform(0.6, 1.6))
    return xr.Dataset({"stock": (("time", "tank"), y)},
                      coords={"time": pd.date_range("2000-01-01", periods=n, freq="D"),
                              "tank": [f"t{s}" for s in range(n_series)]})


def test_the_flags_follow_the_observed_values():
    v = np.array([[[0.0, 1.0], [0.0, -2.0], [np.nan, 3.0]],
                  [[np.nan, 0.5], [np.nan, 0.5], [np.nan, 0.5]]])  # 2 series, 3 steps, 2 targets
    np.testing.assert_array_equal(skill.nonnegative_of(v, "auto"), [[True, False], [False, True]])
    np.testing.assert_array_equal(skill.nonnegative_of(v, True), np.ones((2, 2), bool))
    np.testing.assert_array_equal(skill.nonnegative_of(v, False), np.zeros((2, 2), bool))
    out = np.array([[[-1.0, -1.0], [np.nan, 2.0]], [[-3.0, -0.5], [1.0, -0.1]]])  # (n, horizon, k)
    skill.floor_at_zero(out, np.array([[True, False], [False, True]]), np.array([0, 1]))
    np.testing.assert_array_equal(out, [[[0.0, -1.0], [np.nan, 2.0]], [[-3.0, 0.0], [1.0, 0.0]]])


def test_the_floor_removes_negative_forecasts_and_only_lowers_the_error():
    data = draining(400)
    kept = data.copy(deep=True)
    fc = numlstm.Forecaster(**TINY).fit(data.isel(time=slice(0, 300)), "stock")
    assert fc.nonnegative == "auto" and fc.nonnegative_.tolist() == [[True]]
    unfloored = copy.copy(fc)
    unfloored.nonnegative_ = np.zeros_like(fc.nonnegative_)
    bt, raw = (m.backtest(data, start="2000-10-27") for m in (fc, unfloored))
    assert (raw["stock"].values < 0).sum() > 10  # the fall carried on below empty
    assert (bt["stock"].values >= 0).all()
    gap = fc.zeros_[1][0, 0] / 2  # the tank sat empty: forecasts below half its smallest level snap to 0 too
    assert fc.zeros_[0].tolist() == [[True]] and 0 < gap < 1
    floored = np.maximum(raw["stock"].values, 0)
    np.testing.assert_array_equal(bt["stock"].values, np.where(floored < gap, 0.0, floored))
    truth = data["stock"].sel(time=bt["valid_time"]).values
    err = [np.abs(b["stock"].values - truth).mean() for b in (bt, raw)]
    assert err[0] < err[1], err
    assert (fc.predict(data)["stock"].values >= 0).all() and (fc.predict()["stock"].values >= 0).all()
    xr.testing.assert_identical(data, kept)  # the user's data untouched


def test_series_that_went_below_zero_are_not_floored_and_false_floors_nothing():
    data = draining(300, n_series=2)
    data["stock"][5, 1] = -0.5  # one reading below 0: that tank is not floored
    fc = numlstm.Forecaster(**TINY).fit(data, "stock")
    assert fc.nonnegative_.tolist() == [[True], [False]]
    off = numlstm.Forecaster(**TINY, nonnegative=False).fit(data, "stock")
    assert off.nonnegative_.tolist() == [[False], [False]]
    bt, raw = (m.backtest(data, start="2000-08-01") for m in (fc, off))
    xr.testing.assert_identical(bt.sel(tank="t1"), raw.sel(tank="t1"))  # the same weights: the floor alone differs
    assert (raw["stock"].sel(tank="t0").values < 0).any() and (bt["stock"].sel(tank="t0").values >= 0).all()
    on = numlstm.Forecaster(**TINY, nonnegative=True).fit(data, "stock")
    assert on.nonnegative_.tolist() == [[True], [True]] and (on.backtest(data, start="2000-08-01")["stock"] >= 0).all()


def test_new_series_are_floored_by_their_own_history():
    data = draining(300, n_series=2)
    fc = numlstm.Forecaster(**TINY).fit(data.sel(tank=["t0"]), "stock")
    unfloored = copy.copy(fc)
    unfloored.nonnegative = False
    new = data.assign_coords(tank=["t0", "new"])
    below = new.copy(deep=True)
    below["stock"][10, 1] = -1.0  # the new tank's history has a value below 0 before the backtest's origins
    bt, raw, bt_below = fc.backtest(new, start="2000-08-01"), unfloored.backtest(new, start="2000-08-01"), \
        fc.backtest(below, start="2000-08-01")
    assert (raw["stock"].sel(tank="new").values < 0).any()
    assert (bt["stock"].sel(tank="new").values >= 0).all()
    assert (bt_below["stock"].sel(tank="new").values < 0).any()  # its own scaling moved a little: not identical
    assert (fc.predict(new)["stock"].values >= 0).all()


def test_quantile_bands_are_floored_and_never_cross():
    data = draining(300)
    fc = numlstm.Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(data, "stock")
    bt = fc.backtest(data, start="2000-08-01")["stock"].transpose(..., "quantile").values
    assert (bt >= 0).all() and (np.diff(bt, axis=-1) >= 0).all()
    assert (bt[..., 0] == 0).any()  # the low quantile was floored somewhere


def test_the_flags_survive_the_model_file_and_older_files_floor_nothing(tmp_path):
    data = draining(300, n_series=2)
    data["stock"][5, 1] = -0.5
    fc = numlstm.Forecaster(**dict(TINY, epochs=2)).fit(data, "stock")
    fc.save(tmp_path / "m.nc")
    back = numlstm.load(tmp_path / "m.nc")
    assert back.nonnegative == "auto" and back.nonnegative_.tolist() == [[True], [False]]
    xr.testing.assert_identical(back.backtest(data, start="2000-08-01"), fc.backtest(data, start="2000-08-01"))
    ds = xr.load_dataset(tmp_path / "m.nc", engine="scipy")
    cfg = json.loads(ds.attrs["numlstm_config"])
    del cfg["params"]["nonnegative"], cfg["skill"]["nonnegative"]  # a file from before the floor
    ds.attrs["numlstm_config"] = json.dumps(cfg)
    ds.to_netcdf(tmp_path / "old.nc", engine="scipy")
    old = numlstm.load(tmp_path / "old.nc")
    assert old.nonnegative is False and old.nonnegative_ is None
    unfloored = copy.copy(fc)
    unfloored.nonnegative_ = None  # as a model pickled before the floor
    xr.testing.assert_identical(old.backtest(data, start="2000-08-01"), unfloored.backtest(data, start="2000-08-01"))
    cfg["skill"]["nonnegative"] = [[True]]  # one flag for two series
    ds.attrs["numlstm_config"] = json.dumps(cfg)
    ds.to_netcdf(tmp_path / "bad.nc", engine="scipy")
    with pytest.raises(ValueError, match=r"'skill.nonnegative' has shape \(1, 1\), not \(2, 1\)"):
        numlstm.load(tmp_path / "bad.nc")


def test_a_warm_start_lifts_a_flag_the_new_data_contradicts_and_streamed_fits_set_them():
    data = draining(300, n_series=2)
    fc = numlstm.Forecaster(**dict(TINY, epochs=2)).fit(data, "stock")
    assert fc.nonnegative_.tolist() == [[True], [True]]
    later = data.isel(time=slice(200, None)).copy(deep=True)
    later["stock"][3, 0] = -0.2
    fc.fit(later, "stock", warm_start=True)
    assert fc.nonnegative_.tolist() == [[False], [True]]
    data["stock"][7, 1] = -1.0
    streamed = numlstm.Forecaster(**dict(TINY, epochs=1)).fit(data.chunk({"tank": 1}), "stock", stream=True)
    assert streamed.nonnegative_.tolist() == [[True], [False]]
    assert (streamed.predict()["stock"].sel(tank="t0").values >= 0).all()


@pytest.mark.parametrize("bad", ["yes", 1.5, None])
def test_the_option_is_checked(bad):
    with pytest.raises(TypeError, match=r"nonnegative must be 'auto' .*True .*False .*got"):
        numlstm.Forecaster(**TINY, nonnegative=bad).fit(draining(100), "stock")
