"""The Forecaster's ``loss``: the network's training loss for point forecasts."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from numlstm.core import losses, training
from numlstm.forecast import inputs, skill, streaming

TINY = dict(lookback=8, horizon=3, units=8, epochs=30, batch_size=32, random_state=0)


def intermittent(n=600, seed=0):
    """Rain-like: 0 on four steps of five, an exponential amount on the fifth (median 0, mean 0.6)."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.2, rng.exponential(3.0, n), 0.0)
    return xr.Dataset({"rain": ("time", y)}, coords={"time": pd.date_range("2000-01-01", periods=n, freq="D")})


def test_the_loss_is_checked():
    data = intermittent(100)
    with pytest.raises(ValueError, match=r"loss must be 'auto'.*'mae'.*'mse'.*got 'huber'"):
        numlstm.Forecaster(**TINY, loss="huber").fit(data, "rain")
    with pytest.raises(ValueError, match=r"loss='mae' with quantiles=\[0.1, 0.9\].*leave loss='auto'"):
        numlstm.Forecaster(**TINY, loss="mae", quantiles=[0.1, 0.9]).fit(data, "rain")
    assert numlstm.Forecaster().loss == "auto"


def test_auto_is_the_absolute_error_and_quantiles_keep_the_pinball():
    assert inputs.DEFAULT_LOSS == "mae"  # since the seventh held-out skill check (benchmarks/results)
    assert inputs._check_loss("auto", None) == "mae" and inputs._check_loss("mse", None) == "mse"
    assert inputs._check_loss("auto", [0.1, 0.9]) == "pinball"


@pytest.mark.parametrize("how", ["global", "local", "stream"])
def test_every_fit_trains_on_the_loss_asked_for(monkeypatch, how):
    """The loss reaches the trainer of an in-memory, a local and a streamed (out-of-core) fit."""
    seen = []
    if how == "stream":
        original = streaming.train
        monkeypatch.setattr(streaming, "train", lambda *a, **k: seen.append(k["loss_id"]) or original(*a, **k))
    else:
        original = training.fit
        monkeypatch.setattr(training, "fit", lambda *a, **k: seen.append(k["loss_id"]) or original(*a, **k))
    data = intermittent(120)
    kw = dict(TINY, epochs=1, mode="local" if how == "local" else "global")
    for loss, want in (("auto", losses.MAE), ("mse", losses.MSE), ("mae", losses.MAE)):
        seen.clear()
        fit_data = data.chunk({"time": 60}) if how == "stream" else data
        numlstm.Forecaster(**kw, loss=loss).fit(fit_data, "rain", **({"stream": True} if how == "stream" else {}))
        assert seen and set(seen) == {want}, (loss, seen)


def test_the_absolute_ridge_reaches_the_median_regression():
    """The linear stage's ridge refitted on the absolute error: at a tiny penalty its absolute error is
    within 1% of the least-absolute-deviations optimum (a linear program) and well below the
    least-squares fit's, on residuals skewed as rain or river flow are."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(4)
    n, p = 300, 4
    Z = np.column_stack([rng.standard_normal((n, p - 1)), np.ones(n)])
    R = Z @ np.array([[0.5, -0.2], [0.3, 0.1], [0.0, 0.4], [0.2, -0.1]]) + rng.exponential(1.0, (n, 2))
    ls = np.linalg.solve(Z.T @ Z + 1e-4 * n * np.eye(p), Z.T @ R)
    lad = skill._least_absolute(Z, R, 1e-4, np.eye(p), ls)
    for j in range(2):
        cost = np.concatenate([np.zeros(p), np.ones(2 * n)])  # |e| = u + v, Z b + u - v = r
        lp = linprog(cost, A_eq=np.hstack([Z, np.eye(n), -np.eye(n)]), b_eq=R[:, j],
                     bounds=[(None, None)] * p + [(0, None)] * (2 * n)).x[:p]
        l1 = [np.abs(R[:, j] - Z @ b).sum() for b in (ls[:, j], lad[:, j], lp)]
        assert l1[1] <= 1.01 * l1[2] and l1[1] < 0.97 * l1[0], l1


def test_the_linear_stage_fits_the_loss_the_network_is_trained_on(monkeypatch):
    """On skewed residuals the absolute-error stage's drift is near their median (ten reweighted
    steps reach it to a few per cent), the squared-error stage's near their mean (both shrunk by the
    penalty chosen); a fit passes its loss to every series' stage (a call-through spy), in global
    and local mode."""
    rng = np.random.default_rng(5)
    n = 300
    origins = np.arange(n)
    Z, R = np.ones((n, 1)), rng.exponential(1.0, (n, 1))
    train, val, M = origins + 2 < 250, origins >= 249, np.ones((n, 1), dtype=bool)
    squared = skill.fit_linear(Z, R, M, train, val, origins)[0, 0]
    absolute = skill.fit_linear(Z, R, M, train, val, origins, absolute=True)[0, 0]
    mean, median = R[train].mean(), np.median(R[train])
    assert 0.8 * mean < squared <= mean and 0.8 * median < absolute < 0.5 * (median + mean), (squared, absolute)

    seen = []
    original = skill.fit_linear
    monkeypatch.setattr(skill, "fit_linear", lambda *a, **k: seen.append(k.get("absolute")) or original(*a, **k))
    data = intermittent(120)
    for mode in ("global", "local"):
        for loss, want in (("auto", True), ("mse", False)):
            seen.clear()
            numlstm.Forecaster(**dict(TINY, epochs=1, mode=mode), loss=loss).fit(data, "rain")
            assert seen and set(seen) == {want}, (mode, loss, seen)


def test_the_absolute_error_forecasts_a_median():
    """On intermittent data the squared error's forecasts sit near the mean (0.6), the absolute
    error's nearer the median (0): lower forecasts, and a lower absolute error on later data."""
    data = intermittent()
    train, test = data.isel(time=slice(0, 450)), data
    kw = dict(TINY, baseline=None)  # the network forecasts the values, nothing in front of it
    out = {}
    for loss in ("mse", "mae"):
        fc = numlstm.Forecaster(**kw, loss=loss).fit(train, "rain")
        bt = fc.backtest(test, start=test["time"].values[450], stride=3)["rain"]
        starts = 450 + 3 * np.arange(bt.sizes["init_time"])
        truth = test["rain"].values[starts[:, None] + np.arange(1, 4)]
        ok = np.isfinite(bt.values) & np.isfinite(truth)
        out[loss] = (float(np.median(bt.values[ok])), float(np.abs(bt.values - truth)[ok].mean()))
    assert out["mse"][0] > 0.45, out
    assert out["mae"][0] < out["mse"][0] - 0.15, out
    assert out["mae"][1] < out["mse"][1], out


def test_the_loss_survives_the_model_file_and_older_files_trained_on_squares(tmp_path):
    data = intermittent(200)
    fc = numlstm.Forecaster(**dict(TINY, epochs=2), loss="mae").fit(data, "rain")
    fc.save(tmp_path / "m.nc")
    back = numlstm.load(tmp_path / "m.nc")
    assert back.loss == "mae"
    xr.testing.assert_identical(back.predict(), fc.predict())
    ds = xr.load_dataset(tmp_path / "m.nc", engine="scipy")
    cfg = json.loads(ds.attrs["numlstm_config"])
    del cfg["params"]["loss"]  # a file from before the option
    ds.attrs["numlstm_config"] = json.dumps(cfg)
    ds.to_netcdf(tmp_path / "old.nc", engine="scipy")
    old = numlstm.load(tmp_path / "old.nc")
    assert old.loss == "mse"
    xr.testing.assert_identical(old.predict(), fc.predict())  # the weights forecast as saved
    # a file records the loss "auto" meant, so a warm start keeps it if the default ever changes
    auto = numlstm.Forecaster(**dict(TINY, epochs=1)).fit(data, "rain")
    auto.save(tmp_path / "auto.nc")
    assert auto.loss == "auto" and numlstm.load(tmp_path / "auto.nc").loss == "mae"


def test_quantile_model_files_from_before_the_option_still_load(tmp_path):
    data = intermittent(200)
    fc = numlstm.Forecaster(**dict(TINY, epochs=1), quantiles=[0.1, 0.5, 0.9]).fit(data, "rain")
    fc.save(tmp_path / "q.nc")
    assert numlstm.load(tmp_path / "q.nc").loss == "auto"
    ds = xr.load_dataset(tmp_path / "q.nc", engine="scipy")
    cfg = json.loads(ds.attrs["numlstm_config"])
    del cfg["params"]["loss"]
    ds.attrs["numlstm_config"] = json.dumps(cfg)
    ds.to_netcdf(tmp_path / "old.nc", engine="scipy")
    old = numlstm.load(tmp_path / "old.nc")
    assert old.loss == "auto"  # a quantile model trained on the pinball loss, as it always was
    xr.testing.assert_identical(old.predict(), fc.predict())
