"""Data-parallel training on a real dask.distributed LocalCluster (worker processes)."""

import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def test_data_parallel_fit_equals_local_fit(client):
    rng = np.random.default_rng(0)
    ds = xr.Dataset({"y": (("time", "site"), rng.standard_normal((30, 3))),
                     "x": (("time", "site"), rng.standard_normal((30, 3)))},
                    coords={"time": pd.date_range("2000-01-01", periods=30, freq="D"), "site": list("abc")})
    kwargs = dict(lookback=4, horizon=2, units=3, epochs=3, batch_size=16, dtype="float64", random_state=0,
                  quantiles=[0.25, 0.75], validation_fraction=0.2, clipnorm=0.5)
    local = numlstm.Forecaster(**kwargs).fit(ds, "y", covariates=["x"])
    spread = numlstm.Forecaster(**kwargs).fit(ds, "y", covariates=["x"], client=client)
    np.testing.assert_allclose(spread.history_["loss"], local.history_["loss"], rtol=1e-10)
    np.testing.assert_allclose(spread.history_["val_loss"], local.history_["val_loss"], rtol=1e-10)
    np.testing.assert_allclose(spread.network_.params, local.network_.params, rtol=1e-9, atol=1e-12)
    for _ in range(50):  # the workers drop the shards once the fit is over (the scheduler is asynchronous)
        if not any(client.has_what().values()):
            break
        time.sleep(0.1)
    assert not any(client.has_what().values())


def test_client_is_checked():
    ds = xr.Dataset({"y": ("time", np.arange(20.0))}, coords={"time": np.arange(20)})
    with pytest.raises(TypeError, match="client must be a dask.distributed Client, got str"):
        numlstm.Forecaster(lookback=3, horizon=2).fit(ds, "y", client="tcp://localhost:8786")


def test_local_mode_on_a_cluster_equals_local_mode_here(client):
    rng = np.random.default_rng(1)
    n_site = 5
    ds = xr.Dataset({"y": (("time", "site"), np.cumsum(rng.standard_normal((40, n_site)), axis=0)),
                     "x": (("time", "site"), rng.standard_normal((40, n_site)))},
                    coords={"time": pd.date_range("2000-01-01", periods=40, freq="D"), "site": list("abcde")})
    ds["y"][:, 3] = np.nan  # a site without data keeps its initial weights, here and there
    kwargs = dict(lookback=4, horizon=2, units=3, epochs=3, batch_size=8, dtype="float64", random_state=0,
                  mode="local", relative=False)
    with pytest.warns(numlstm.MissingInputWarning, match="1 of 5 series"):
        here = numlstm.Forecaster(**kwargs).fit(ds, "y", covariates=["x"])
    with pytest.warns(numlstm.MissingInputWarning, match="1 of 5 series"):
        there = numlstm.Forecaster(**kwargs).fit(ds, "y", covariates=["x"], client=client)
    np.testing.assert_array_equal(there.local_seeds_, here.local_seeds_)
    np.testing.assert_allclose(there.local_params_, here.local_params_, rtol=1e-12, atol=1e-15)
    assert [h is None for h in there.history_] == [s == 3 for s in range(n_site)]
    for a, b in zip(there.history_, here.history_):
        if a is not None:
            np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-12)
    with pytest.warns(numlstm.MissingInputWarning):
        xr.testing.assert_allclose(there.predict(), here.predict())
    for _ in range(50):
        if not any(client.has_what().values()):
            break
        time.sleep(0.1)
    assert not any(client.has_what().values())  # the tasks' results are released


def test_what_the_dask_engine_cannot_do_is_refused_by_its_capabilities(client):
    ds = xr.Dataset({"y": ("time", np.sin(np.arange(40.0)))},
                    coords={"time": pd.date_range("2000-01-01", periods=40, freq="D")})
    with pytest.raises(ValueError, match=r"dropout cannot run on a dask.distributed cluster \(client=\) "
                                         r"\(the 'dask' engine\); fit without client="):
        numlstm.Forecaster(lookback=4, horizon=2, units=2, epochs=1, dropout=0.2).fit(ds, "y", client=client)
    assert not any(client.has_what().values())  # refused before anything was sent
