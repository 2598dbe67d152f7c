"""Floored forecasts snap to 0 below half a series' smallest positive value when the series was
observed at exactly 0 (a rain gauge counting whole millimetres: a forecast of 0.3 mm is a value it
never reports, and 0 is nearer the truth on every dry day)."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from numlstm.forecast import skill

TINY = dict(lookback=8, horizon=4, units=8, epochs=20, batch_size=32, random_state=0)
START = "2000-08-01"


def showers(n=300, n_series=2, seed=0):
    """Gauges in whole millimetres: wet spells of 6 days in 20, dry (exactly 0) in between."""
    rng = np.random.default_rng(seed)
    wet = (np.arange(n)[:, None] % 20 < 6) & (rng.random((n, n_series)) < 0.8)
    y = np.where(wet, np.ceil(rng.gamma(2.0, 2.0, (n, n_series))), 0.0)
    return xr.Dataset({"rain": (("time", "gauge"), y)},
                      coords={"time": pd.date_range("2000-01-01", periods=n, freq="D"),
                              "gauge": [f"g{s}" for s in range(n_series)]})


def unsnapped(fc):
    """The same fitted model without the snap (as a model pickled before it)."""
    raw = copy.copy(fc)
    raw.zeros_ = None
    return raw


def test_the_gaps_follow_the_observed_values():
    v = np.array([[[0.0, 1.0, 0.0], [2.0, 3.0, 0.0], [0.4, np.nan, 0.0]]])  # 1 series, 3 steps, 3 targets
    zero, smallest = skill.zeros_of(v)
    assert zero.tolist() == [[True, False, True]] and smallest.tolist() == [[0.4, 1.0, np.inf]]
    gaps = skill.zero_gaps([[True, True, True]], zero, smallest)
    assert gaps.tolist() == [[0.2, 0.0, np.inf]]  # no exact 0: no gap; never above 0: every positive forecast
    assert skill.zero_gaps([[False, True, False]], zero, smallest).tolist() == [[0.0, 0.0, 0.0]]  # floor off
    out = np.array([[[0.1, 0.1, 5.0], [0.2, -1.0, np.nan], [-0.1, 0.3, 1e-9]]])  # (n, horizon, k)
    skill.floor_at_zero(out, np.ones((1, 3), bool), np.array([0]), gaps)
    np.testing.assert_array_equal(out, [[[0.0, 0.1, 0.0], [0.2, 0.0, np.nan], [0.0, 0.3, 0.0]]])
    band = np.array([[[[-0.5, 0.1, 0.15, 0.3, 2.0]]]])  # (n, horizon, k, quantile): stays in order
    skill.floor_at_zero(band, np.ones((1, 1), bool), np.array([0]), gaps[:, :1])
    np.testing.assert_array_equal(band, [[[[0.0, 0.0, 0.0, 0.3, 2.0]]]])


def test_forecasts_in_the_gap_snap_to_zero_and_the_error_falls():
    data = showers()
    kept = data.copy(deep=True)
    fc = numlstm.Forecaster(**TINY).fit(data.isel(time=slice(0, 240)), "rain")
    assert fc.nonnegative_.tolist() == [[True], [True]]
    assert fc.zeros_[0].tolist() == [[True], [True]] and fc.zeros_[1].tolist() == [[1.0], [1.0]]
    bt, raw = fc.backtest(data, start=START), unsnapped(fc).backtest(data, start=START)
    b, r = bt["rain"].values, raw["rain"].values
    assert ((r > 0) & (r < 0.5)).sum() > 20  # the network's dry-day forecasts: a few tenths of a millimetre
    np.testing.assert_array_equal(b, np.where(r < 0.5, 0.0, r))  # half the smallest gauge reading, 1 mm
    truth = data["rain"].sel(time=bt["valid_time"]).values
    assert np.abs(b - truth).mean() < np.abs(r - truth).mean()
    p = fc.predict()["rain"].values
    assert not ((p > 0) & (p < 0.5)).any()
    xr.testing.assert_identical(data, kept)  # the user's data untouched


def test_nothing_snaps_without_an_exact_zero_or_without_the_floor():
    data = showers()
    wet = data + 0.01  # the same gauges never at exactly 0
    fc = numlstm.Forecaster(**TINY).fit(wet, "rain")
    assert fc.zeros_[0].tolist() == [[False], [False]] and fc.nonnegative_.tolist() == [[True], [True]]
    xr.testing.assert_identical(fc.backtest(wet, start=START), unsnapped(fc).backtest(wet, start=START))
    off = numlstm.Forecaster(**TINY, nonnegative=False).fit(data, "rain")
    assert off.zeros_[0].tolist() == [[True], [True]]  # observed, but nothing is floored: nothing snaps
    xr.testing.assert_identical(off.backtest(data, start=START), unsnapped(off).backtest(data, start=START))
    assert (off.backtest(data, start=START)["rain"].values < 0).any()


def test_new_series_snap_by_their_own_history():
    data = showers(n_series=1)
    fc = numlstm.Forecaster(**TINY).fit(data, "rain")
    new = xr.concat([data, data.assign_coords(gauge=["g1"]), 10 * data.assign_coords(gauge=["g2"])], "gauge")
    off = unsnapped(fc)  # new series take floor and gap from their history; this one neither
    off.nonnegative, off.nonnegative_ = False, np.zeros((1, 1), bool)
    bt, raw = fc.backtest(new, start=START), off.backtest(new, start=START)
    for gauge, gap in (("g1", 0.5), ("g2", 5.0)):  # g2 in tenths: its smallest reading 10, its gap 5
        b, r = (x["rain"].sel(gauge=gauge).values for x in (bt, raw))
        np.testing.assert_array_equal(b, np.where(r < gap, 0.0, r))
        assert ((r > 0) & (r < gap)).sum() > 20
    history = new.isel(time=slice(0, 200)).copy(deep=True)  # before the backtest's first origin: its gap counts
    history["rain"][5, 1] = 0.2
    later = xr.concat([history, new.isel(time=slice(200, None))], "time")
    r = off.backtest(later, start=START)["rain"].sel(gauge="g1").values
    np.testing.assert_array_equal(fc.backtest(later, start=START)["rain"].sel(gauge="g1").values,
                                  np.where(r < 0.1, 0.0, r))
    assert ((r > 0.1) & (r < 0.5)).any()  # forecasts the whole history's gap would have snapped
    old = unsnapped(fc)  # a model from before the snap snaps nothing, new series neither: they are floored
    np.testing.assert_array_equal(old.backtest(new, start=START)["rain"].sel(gauge="g1").values,
                                  np.maximum(raw["rain"].sel(gauge="g1").values, 0))


def test_dask_data_gives_new_series_their_whole_history():
    data = showers(n=305, n_series=1)  # ends in a wet spell
    fc = numlstm.Forecaster(**TINY, smoothing=False).fit(data, "rain")  # no member: a record is cut to lookback
    new = xr.concat([data, data.assign_coords(gauge=["g1"])], "gauge")
    eager = fc.predict(new)
    lazy = fc.predict(new.chunk({"gauge": 1}))
    assert lazy.chunks
    xr.testing.assert_allclose(lazy.compute(), eager)  # the new gauge scaled, floored and snapped alike
    assert (eager["rain"].sel(gauge="g1") > 0).all()


def test_a_warm_start_from_a_model_before_the_snap_does_not_start_it():
    data = showers()
    fc = unsnapped(numlstm.Forecaster(**dict(TINY, epochs=2)).fit(data.isel(time=slice(0, 200)), "rain"))
    fc.fit(data.isel(time=slice(200, None)), "rain", warm_start=True)
    assert fc.zeros_ is None


def test_quantiles_and_samples_snap_and_stay_in_order():
    data = showers()
    fc = numlstm.Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(data, "rain")
    bt = fc.backtest(data, start=START)["rain"].transpose(..., "quantile").values
    raw = unsnapped(fc).backtest(data, start=START)["rain"].transpose(..., "quantile").values
    floored = np.maximum(raw, 0)
    np.testing.assert_array_equal(bt, np.where(floored < 0.5, 0.0, floored))
    assert ((raw > 0) & (raw < 0.5)).any() and (np.diff(bt, axis=-1) >= 0).all()
    drop = numlstm.Forecaster(**dict(TINY, epochs=5), dropout=0.2).fit(data, "rain")
    s = drop.predict(samples=30, seed=1)["rain"].values
    s_raw = unsnapped(drop).predict(samples=30, seed=1)["rain"].values
    assert ((s_raw > 0) & (s_raw < 0.5)).any()
    np.testing.assert_array_equal(s, np.where(s_raw < 0.5, 0.0, s_raw))


def test_the_snap_survives_the_model_file_and_older_files_snap_nothing(tmp_path):
    data = showers()
    data["rain"][:, 1] += 0.25  # the second gauge never at 0
    fc = numlstm.Forecaster(**dict(TINY, epochs=2)).fit(data, "rain")
    fc.save(tmp_path / "m.nc")
    back = numlstm.load(tmp_path / "m.nc")
    assert back.zeros_[0].tolist() == [[True], [False]] and back.zeros_[1].tolist() == [[1.0], [0.25]]
    xr.testing.assert_identical(back.backtest(data, start=START), fc.backtest(data, start=START))
    ds = xr.load_dataset(tmp_path / "m.nc", engine="scipy")
    assert ds.attrs["numlstm_format_version"] == 10
    cfg = json.loads(ds.attrs["numlstm_config"])
    assert cfg["skill"]["zeros"] == {"observed": [[True], [False]], "smallest": [[1.0], [0.25]]}
    del cfg["skill"]["zeros"]  # a file from before the snap
    ds.attrs["numlstm_config"] = json.dumps(cfg)
    ds.to_netcdf(tmp_path / "old.nc", engine="scipy")
    old = numlstm.load(tmp_path / "old.nc")
    assert old.zeros_ is None
    bt = unsnapped(fc).backtest(data, start=START)
    assert not bt.identical(fc.backtest(data, start=START))  # the snap moved forecasts of g0
    xr.testing.assert_identical(old.backtest(data, start=START), bt)
    for bad, match in (({"observed": [[True]], "smallest": [[1.0]]}, r"'skill.zeros' has shape \(1, 1\), not \(2, 1\)"),
                       ({"observed": [[True], [False]], "smallest": [[-1.0], [None]]}, "zeros is .* positive values"),
                       ([[True]], "zeros is .*not {'observed'")):
        cfg["skill"]["zeros"] = bad
        ds.attrs["numlstm_config"] = json.dumps(cfg)
        ds.to_netcdf(tmp_path / "bad.nc", engine="scipy")
        with pytest.raises(ValueError, match=match):
            numlstm.load(tmp_path / "bad.nc")


def test_a_warm_start_adds_what_it_sees_and_streamed_fits_gather_the_same():
    data = showers()
    data["rain"][:, 0] += 2.0  # gauge g0 at 2 mm or more until day 200, then dry spells at 0 and 0.5 mm
    data["rain"][200:, 0] = np.where(data["rain"][200:, 0] > 2.0, data["rain"][200:, 0] - 2.0, 0.0)
    data["rain"][210, 0] = 0.5
    fc = numlstm.Forecaster(**dict(TINY, epochs=2)).fit(data.isel(time=slice(0, 200)), "rain")
    assert fc.zeros_[0].tolist() == [[False], [True]] and fc.zeros_[1].tolist() == [[2.0], [1.0]]
    fc.fit(data.isel(time=slice(200, None)), "rain", warm_start=True)
    assert fc.zeros_[0].tolist() == [[True], [True]] and fc.zeros_[1].tolist() == [[0.5], [1.0]]
    memory = numlstm.Forecaster(**dict(TINY, epochs=1)).fit(data, "rain")
    streamed = numlstm.Forecaster(**dict(TINY, epochs=1)).fit(data.chunk({"gauge": 1}), "rain", stream=True)
    for a, b in zip(streamed.zeros_, memory.zeros_):
        np.testing.assert_array_equal(a, b)
    p = streamed.predict()["rain"]
    assert not ((p > 0) & (p < xr.DataArray([0.25, 0.5], dims="gauge"))).any()
