"""numlstm.metrics: hand-computed values, NaN handling, labels, and messages."""

import math
from statistics import NormalDist

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numlstm import metrics

nan = np.nan
ALL = [metrics.mae, metrics.rmse, metrics.nse, metrics.kge, lambda o, p, **k: metrics.mase(o, p, scale=2.0, **k)]
ALL_IDS = ["mae", "rmse", "nse", "kge", "mase"]


def series(values, name="q", units="m3 s-1", **attrs):
    return xr.DataArray(np.asarray(values, dtype=float), dims="time", coords={"time": np.arange(len(values))},
                        name=name, attrs={"units": units, **attrs})


# obs/pred share three valid pairs: (1, 2), (2, 2), (4, 1); errors pred - obs = 1, 0, -3
OBS = [1.0, 2.0, 4.0, nan, 3.0]
PRED = [2.0, 2.0, 1.0, 5.0, nan]


def two_level(obs=(1.0, 3.0), q10=(0.0, 4.0), q90=(3.0, 2.0)):
    pred = xr.DataArray(np.array([q10, q90]).T, dims=("time", "quantile"),
                        coords={"time": np.arange(len(obs)), "quantile": [0.1, 0.9]}, name="q")
    return series(obs), pred


# ------------------------------------------------------------------ values by hand


def test_mae_rmse_by_hand():
    obs, pred = series(OBS), series(PRED)
    assert float(metrics.mae(obs, pred)) == pytest.approx(4 / 3)
    assert float(metrics.rmse(obs, pred)) == pytest.approx(math.sqrt(10 / 3))


def test_nse_by_hand():
    # valid obs 1, 2, 4: mean 7/3, sum of squared deviations 42/9; squared errors sum to 10
    assert float(metrics.nse(series(OBS), series(PRED))) == pytest.approx(1 - 10 / (42 / 9))


def test_kge_by_hand():
    o, p = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])  # the valid pairs
    r = np.corrcoef(o, p)[0, 1]
    alpha, beta = p.std() / o.std(), p.mean() / o.mean()
    expected = 1 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)
    assert r == pytest.approx(-5 / math.sqrt(28))  # the same numbers, by hand
    assert float(metrics.kge(series(OBS), series(PRED))) == pytest.approx(expected)


def test_mase_with_train_and_with_scale():
    obs, pred = series(OBS), series(PRED)
    train = series([1.0, 3.0, 2.0, 4.0])  # one-step naive errors 2, 1, 2: scale 5/3
    assert float(metrics.mase(obs, pred, train=train)) == pytest.approx((4 / 3) / (5 / 3))
    assert float(metrics.mase(obs, pred, scale=2.0)) == pytest.approx(2 / 3)
    assert float(metrics.mase(obs, pred, scale=xr.DataArray(2.0))) == pytest.approx(2 / 3)
    # season 2 on 1, 2, 4, 3, 5: errors 3, 1, 1 -> 5/3; a NaN in train drops the pairs it is in
    assert float(metrics.mase(obs, pred, train=series([1.0, 2.0, 4.0, 3.0, 5.0]), season=2)) == pytest.approx(0.8)
    assert float(metrics.mase(obs, pred, train=series([1.0, 3.0, nan, 4.0, 6.0]))) == pytest.approx((4 / 3) / 2)


def test_mase_scale_per_station():
    coords = {"time": [0, 1], "station": ["a", "b"]}
    obs = xr.DataArray([[0.0, 0.0], [0.0, 0.0]], dims=("time", "station"), coords=coords)
    pred = xr.DataArray([[1.0, 10.0], [3.0, 30.0]], dims=("time", "station"), coords=coords)
    scale = xr.DataArray([1.0, 10.0], dims="station", coords={"station": ["a", "b"]})
    per_station = metrics.mase(obs, pred, scale=scale)
    np.testing.assert_allclose(per_station.values, [2.0, 2.0])
    assert per_station.station.values.tolist() == ["a", "b"]
    # pooled over stations, the scaled errors weigh alike: mean(1, 3, 1, 3) = 2
    assert float(metrics.mase(obs, pred, scale=scale, dim=None)) == pytest.approx(2.0)
    train = xr.DataArray([[0.0, 0.0], [1.0, 10.0], [0.0, 0.0]], dims=("time", "station"),
                         coords={"time": [-3, -2, -1], "station": ["a", "b"]})
    np.testing.assert_allclose(metrics.mase(obs, pred, train=train).values, [2.0, 2.0])


def test_pinball_and_crps_two_levels_by_hand():
    obs, pred = two_level()
    # level 0.1: e = obs - pred = 1, -1 -> 0.1 * 1, 0.9 * 1 -> mean 0.5
    # level 0.9: e = -2, 1 -> 0.1 * 2, 0.9 * 1 -> mean 0.55
    per_level = metrics.pinball(obs, pred, keep_quantiles=True)
    assert per_level.dims == ("quantile",)
    np.testing.assert_allclose(per_level.values, [0.5, 0.55])
    assert float(metrics.pinball(obs, pred)) == pytest.approx(0.525)
    assert float(metrics.crps(obs, pred)) == pytest.approx(1.05)
    assert metrics.crps(obs, pred).attrs["units"] == "m3 s-1"


def test_pinball_nan_per_level():
    obs, pred = two_level()
    pred[1, 0] = nan  # level 0.1 keeps only its first pair (loss 0.1)
    np.testing.assert_allclose(metrics.pinball(obs, pred, keep_quantiles=True).values, [0.1, 0.55])
    assert float(metrics.pinball(obs, pred)) == pytest.approx((0.1 + 0.55) / 2)


def test_crps_approaches_closed_form_for_a_normal_forecast():
    standard = NormalDist()
    levels = (np.arange(1, 200) - 0.5) / 199
    obs = series([0.3, -1.2])
    pred = xr.DataArray(np.array([[standard.inv_cdf(q) for q in levels]] * 2), dims=("time", "quantile"),
                        coords={"time": obs.time, "quantile": levels})

    def exact(y):  # Gneiting & Raftery (2007), eq. (5), for N(0, 1)
        return y * (2 * standard.cdf(y) - 1) + 2 * standard.pdf(y) - 1 / math.sqrt(math.pi)

    got = metrics.crps(obs, pred, dim="time")
    assert float(got) == pytest.approx((exact(0.3) + exact(-1.2)) / 2, abs=2e-3)


def test_perfect_forecast():
    obs = series([1.0, 4.0, 2.0, nan, 3.0])
    assert float(metrics.mae(obs, obs)) == 0
    assert float(metrics.rmse(obs, obs)) == 0
    assert float(metrics.mase(obs, obs, scale=1.0)) == 0
    assert float(metrics.nse(obs, obs)) == 1
    assert float(metrics.kge(obs, obs)) == pytest.approx(1)


# ------------------------------------------------------------------ NaN, dims, Datasets


@pytest.mark.parametrize("metric", ALL, ids=ALL_IDS)
def test_all_nan_gives_nan_quietly(metric):
    obs = series([1.0, nan, 3.0])
    pred = series([nan, 2.0, nan])
    assert np.isnan(float(metric(obs, pred)))


def test_all_nan_pinball_quietly():
    obs, pred = two_level(obs=(nan, nan))
    assert np.isnan(float(metrics.pinball(obs, pred)))
    assert np.isnan(metrics.crps(obs, pred).values).all()


def test_constant_observations_give_nan_not_warnings():
    obs, pred = series([2.0, 2.0, 2.0]), series([1.0, 2.0, 3.0])
    assert np.isnan(float(metrics.nse(obs, pred)))
    assert np.isnan(float(metrics.kge(obs, pred)))
    assert np.isnan(float(metrics.mase(obs, pred, train=obs)))  # zero naive error


def backtest_like(rng):
    shape = (4, 3, 2)
    coords = {"init_time": np.arange(4), "lead": np.arange(1, 4), "station": ["a", "b"]}
    obs = xr.DataArray(rng.normal(size=shape), dims=("init_time", "lead", "station"), coords=coords, name="q",
                       attrs={"units": "m"})
    pred = obs + xr.DataArray(rng.normal(size=shape), dims=obs.dims, coords=coords)
    obs[0, 0, 0] = nan
    pred[1, 2, 0] = nan
    pred[:, :, 1] = nan  # station b has no valid pair
    obs = obs.assign_coords(valid_time=obs.init_time + obs.lead)
    return obs, pred


def test_multi_dim_keeps_station(rng):
    obs, pred = backtest_like(rng)
    o, p = obs.values, pred.values
    valid = ~np.isnan(o) & ~np.isnan(p)
    a = valid[:, :, 0]
    got = metrics.mae(obs, pred, dim=["init_time", "lead"])
    assert got.dims == ("station",) and got.station.values.tolist() == ["a", "b"]
    assert "valid_time" not in got.coords
    np.testing.assert_allclose(got.values[0], np.abs(p[:, :, 0] - o[:, :, 0])[a].mean())
    assert np.isnan(got.values[1])
    np.testing.assert_allclose(metrics.rmse(obs, pred, dim=("init_time", "lead")).values[0],
                               np.sqrt(((p[:, :, 0] - o[:, :, 0])[a] ** 2).mean()))
    oa, pa = o[:, :, 0][a], p[:, :, 0][a]
    np.testing.assert_allclose(metrics.nse(obs, pred, dim=["init_time", "lead"]).values[0],
                               1 - ((pa - oa) ** 2).sum() / ((oa - oa.mean()) ** 2).sum())
    by_lead = metrics.mae(obs, pred, dim="init_time")
    assert by_lead.dims == ("lead", "station")
    everything = metrics.mae(obs, pred, dim=None)
    assert everything.dims == ()
    np.testing.assert_allclose(float(everything), np.abs(p - o)[valid].mean())


def test_attrs_and_name():
    obs = series(OBS, long_name="streamflow")
    pred = series(PRED, name="forecast")
    assert metrics.mae(obs, pred).attrs == {"long_name": "mean absolute error of streamflow", "units": "m3 s-1"}
    assert metrics.rmse(obs, pred).name == "q"
    for metric in (metrics.nse, metrics.kge):
        assert metric(obs, pred).attrs["units"] == "1"
    assert metrics.mase(obs, pred, scale=1.0).attrs["units"] == "1"
    assert "units" not in metrics.mae(obs.drop_attrs(), pred).attrs


def test_dtype_kept_and_integers_accepted():
    obs, pred = series(OBS).astype(np.float32), series(PRED).astype(np.float32)
    for metric in ALL:
        assert metric(obs, pred).dtype == np.float32
    ints = xr.DataArray([1, 2, 4], dims="time")
    assert float(metrics.mae(ints, ints + 1)) == 1.0


def test_dataset_scores_variables_present_in_both():
    obs = xr.Dataset({"q": series(OBS), "t": series([1.0, 2.0, 3.0, 4.0, 5.0], units="K"),
                      "only_obs": series([0.0] * 5)})
    pred = xr.Dataset({"q": series(PRED), "t": series([2.0, 2.0, 3.0, 4.0, 5.0], units="K"),
                       "only_pred": series([0.0] * 5)})
    got = metrics.mae(obs, pred)
    assert isinstance(got, xr.Dataset) and set(got.data_vars) == {"q", "t"}
    assert float(got.q) == pytest.approx(4 / 3) and float(got.t) == pytest.approx(0.2)
    assert got.t.attrs["units"] == "K"
    scale = xr.Dataset({"q": 2.0, "t": 0.1})
    got = metrics.mase(obs, pred, scale=scale)
    assert float(got.q) == pytest.approx(2 / 3) and float(got.t) == pytest.approx(2.0)
    # a DataArray against a Dataset is used for every variable
    assert set(metrics.rmse(obs, pred.q).data_vars) == {"q", "t", "only_obs"}


def test_dataset_quantiles():
    obs, pred = two_level()
    got = metrics.crps(obs.to_dataset(), pred.to_dataset())
    assert float(got.q) == pytest.approx(1.05)


def test_lazy_with_dask():
    dask = pytest.importorskip("dask")

    def raise_if_computed(*args, **kwargs):
        raise RuntimeError("a metric computed a dask array")

    obs, pred = series(OBS).chunk(), series(PRED).chunk()
    with dask.config.set(scheduler=raise_if_computed):
        lazy = metrics.kge(obs, pred)
    assert lazy.chunks is not None
    assert float(lazy) == pytest.approx(float(metrics.kge(series(OBS), series(PRED))))


# rounded, so that squared errors cannot underflow to 0 (which would make rmse < mae in floating point)
values = st.one_of(st.floats(-1e3, 1e3).map(lambda x: round(x, 6)), st.just(nan))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 3)), elements=values),
       hnp.arrays(np.float64, st.just(6 * 3), elements=values))
def test_rmse_at_least_mae(obs_values, pred_pool):
    pred_values = pred_pool[: obs_values.size].reshape(obs_values.shape)
    obs = xr.DataArray(obs_values, dims=("time", "station"))
    pred = xr.DataArray(pred_values, dims=("time", "station"))
    mae, rmse = metrics.mae(obs, pred).values, metrics.rmse(obs, pred).values
    empty = (np.isnan(obs_values) | np.isnan(pred_values)).all(axis=0)
    np.testing.assert_array_equal(np.isnan(mae), empty)
    np.testing.assert_array_equal(np.isnan(rmse), empty)
    assert np.all(rmse[~empty] >= mae[~empty] * (1 - 1e-12))


# ------------------------------------------------------------------ bad input


def test_not_xarray():
    with pytest.raises(TypeError, match=r"obs must be an xarray DataArray or Dataset, got ndarray.*xr\.DataArray\("):
        metrics.mae(np.zeros(3), series([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match=r"pred must be an xarray DataArray or Dataset, got list"):
        metrics.crps(series([1.0]), [1.0])
    with pytest.raises(TypeError, match=r"train must be an xarray DataArray or Dataset"):
        metrics.mase(series([1.0]), series([1.0]), train=[1.0, 2.0])


def test_unknown_dim():
    obs, pred = series(OBS), series(PRED)
    with pytest.raises(ValueError, match=r"dim 'tim' is not a dimension of obs or pred; their dimensions are "
                                         r"\('time',\).*dim=None"):
        metrics.rmse(obs, pred, dim="tim")
    with pytest.raises(ValueError, match=r"dim 'lead' is not a dimension"):
        metrics.kge(obs, pred, dim=["time", "lead"])
    with pytest.raises(ValueError, match=r"dim is empty"):
        metrics.mae(obs, pred, dim=[])
    with pytest.raises(TypeError, match=r"dim must be a dimension name, a list of names, or None, got int"):
        metrics.mae(obs, pred, dim=0)
    with pytest.raises(ValueError, match=r"dim 'tim' is not a dimension of obs\['q'\] or pred\['q'\]"):
        metrics.mae(obs.to_dataset(), pred.to_dataset(), dim="tim")


def test_misaligned_coordinates():
    obs, pred = series(OBS), series(PRED)
    shifted = pred.assign_coords(time=pred.time + 1)
    with pytest.raises(ValueError, match=r"obs and pred have different coordinates along 'time' \(obs: 5 labels, "
                                         r"0 to 4; pred: 5 labels, 1 to 5\).*xr\.align\(obs, pred, join='inner'\)"):
        metrics.mae(obs, shifted)
    with pytest.raises(ValueError, match=r"along 'time' \(obs: 5 labels, 0 to 4; pred: 3 labels"):
        metrics.nse(obs, pred.isel(time=slice(0, 3)))
    scale = xr.DataArray([1.0, 1.0], dims="station", coords={"station": ["a", "b"]})
    obs2 = obs.expand_dims(station=["a", "c"])
    with pytest.raises(ValueError, match=r"obs and scale have different coordinates along 'station'"):
        metrics.mase(obs2, obs2, scale=scale)


def test_non_numeric():
    obs = xr.DataArray(["a", "b"], dims="time")
    with pytest.raises(TypeError, match=r"obs must hold numeric \(integer or float\) data, got dtype <U1.*astype"):
        metrics.mae(obs, series([1.0, 2.0]))
    ds = xr.Dataset({"q": series([1.0, 2.0]), "flag": ("time", [True, False])})
    with pytest.raises(TypeError, match=r"pred\['flag'\] must hold numeric"):
        metrics.rmse(ds.assign(flag=ds.q), ds)


def test_dataset_without_common_variables():
    with pytest.raises(ValueError, match=r"no data variables in common \(obs: \['q'\], pred: \['x'\]\)"):
        metrics.mae(series(OBS).to_dataset(), series(PRED, name="x").to_dataset())


def test_mase_needs_one_scale():
    obs, pred = series(OBS), series(PRED)
    with pytest.raises(ValueError, match=r"pass train= .* or scale="):
        metrics.mase(obs, pred)
    with pytest.raises(ValueError, match=r"one of scale= or train=.*not both"):
        metrics.mase(obs, pred, scale=1.0, train=obs)
    with pytest.raises(ValueError, match=r"scale must be > 0, got 0.0"):
        metrics.mase(obs, pred, scale=0)
    with pytest.raises(ValueError, match=r"train has 2 step\(s\) along 'time'; a season=2 naive forecast needs "
                                         r"at least 3"):
        metrics.mase(obs, pred, train=series([1.0, 2.0]), season=2)
    with pytest.raises(ValueError, match=r"train has no 'date' dimension.*time_dim="):
        metrics.mase(obs, pred, train=series([1.0, 2.0]), time_dim="date")
    with pytest.raises(TypeError, match=r"scale is a Dataset but obs and pred are DataArrays"):
        metrics.mase(obs, pred, scale=xr.Dataset({"q": 1.0}))
    with pytest.raises(ValueError, match=r"scale is a Dataset without the variable 'q'"):
        metrics.mase(obs.to_dataset(), pred.to_dataset(), scale=xr.Dataset({"x": 1.0}))


@pytest.mark.parametrize("metric", [metrics.pinball, metrics.crps], ids=["pinball", "crps"])
def test_bad_quantiles(metric):
    obs, pred = two_level()
    with pytest.raises(ValueError, match=r"pred has no 'quantile' dimension.*expand_dims"):
        metric(obs, obs)
    with pytest.raises(ValueError, match=r"'quantile' dimension has no coordinate.*assign_coords"):
        metric(obs, pred.drop_vars("quantile"))
    with pytest.raises(ValueError, match=r"strictly between 0 and 1, got \[10.0, 90.0\]\. For percentiles"):
        metric(obs, pred.assign_coords(quantile=[10.0, 90.0]))
    with pytest.raises(ValueError, match=r"strictly between 0 and 1, got \[1.0\]"):
        metric(obs, pred.assign_coords(quantile=[0.5, 1.0]))
    with pytest.raises(ValueError, match=r"obs has a 'quantile' dimension"):
        metric(pred, pred)
    with pytest.raises(ValueError, match=r"pred has no 'q' dimension"):
        metric(obs, pred, quantile_dim="q")


def test_pinball_quantile_in_dim():
    obs, pred = two_level()
    assert float(metrics.pinball(obs, pred, dim=["time", "quantile"])) == pytest.approx(0.525)
    assert float(metrics.pinball(obs, pred, dim=None)) == pytest.approx(0.525)
    np.testing.assert_allclose(metrics.pinball(obs, pred, dim=None, keep_quantiles=True).values, [0.5, 0.55])
    with pytest.raises(ValueError, match=r"dim includes 'quantile' but keep_quantiles=True"):
        metrics.pinball(obs, pred, dim=["time", "quantile"], keep_quantiles=True)


def test_coverage_and_pit_histogram_of_calibrated_quantiles():
    rng = np.random.default_rng(0)
    obs = xr.DataArray(rng.standard_normal((4000, 2)), dims=("time", "station"), name="flow")
    levels = [0.1, 0.5, 0.9]
    ppf = [NormalDist().inv_cdf(q) for q in levels]
    pred = xr.DataArray(np.broadcast_to(ppf, (4000, 2, 3)).copy(),
                        dims=("time", "station", "quantile"), coords={"quantile": levels})
    cov = metrics.coverage(obs, pred)
    assert cov.dims == ("station",) and np.allclose(cov.values, 0.8, atol=0.03)
    assert np.allclose(metrics.coverage(obs, pred, lower=0.5, upper=0.9, dim=None), 0.4, atol=0.03)
    pit = metrics.pit_histogram(obs, pred, dim=None)
    assert pit.dims == ("bin",) and pit["bin_lower"].values.tolist() == [0.0, 0.1, 0.5, 0.9]
    np.testing.assert_allclose(pit.values, [0.1, 0.4, 0.4, 0.1], atol=0.03)
    np.testing.assert_allclose(float(pit.sum()), 1.0)
    nan_obs = obs.copy()
    nan_obs[0] = np.nan  # left out
    assert np.isfinite(metrics.coverage(nan_obs, pred, dim=None))
    with pytest.raises(ValueError, match="lower=0.2 is not a level"):
        metrics.coverage(obs, pred, lower=0.2)
    with pytest.raises(ValueError, match="has no 'quantile' dimension"):
        metrics.pit_histogram(obs, obs)
