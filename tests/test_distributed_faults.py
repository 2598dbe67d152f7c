"""Faults in the distributed paths, on a real (tiny) dask.distributed LocalCluster: a worker
killed during a client= fit or a lazy forecast, a cluster whose workers do not come back,
and forecasts from many threads at once."""

import functools
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from numlstm.core import distributed as data_parallel

distributed = pytest.importorskip("distributed")

KW = dict(lookback=4, horizon=2, units=3, epochs=3, batch_size=16, dtype="float64", random_state=0)


def sites(n_site=3, n_time=40, seed=0):
    rng = np.random.default_rng(seed)
    return xr.Dataset({"y": (("time", "site"), np.cumsum(rng.standard_normal((n_time, n_site)), axis=0)),
                       "x": (("time", "site"), rng.standard_normal((n_time, n_site)))},
                      coords={"time": pd.date_range("2000-01-01", periods=n_time, freq="D"),
                              "site": [f"s{k}" for k in range(n_site)]})


def cluster(n_workers=2):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                    dashboard_address=":0", silence_logs=50)


def at_epoch(monkeypatch, call, action):
    """Run ``action(trainer)`` as the ``call``-th epoch of a client= fit begins (numlstm's own function)."""
    original = data_parallel.DistributedTrainer.epoch
    calls = {"n": 0}

    def epoch(self, order, batch_losses):
        calls["n"] += 1
        if calls["n"] == call:
            action(self)
        return original(self, order, batch_losses)

    monkeypatch.setattr(data_parallel.DistributedTrainer, "epoch", epoch)


def kill_a_worker(client):
    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)


def test_a_worker_killed_during_a_client_fit_is_survived(monkeypatch):
    ds = sites()
    here = numlstm.Forecaster(**KW).fit(ds, "y", covariates="x")
    with cluster() as c, distributed.Client(c) as client:
        at_epoch(monkeypatch, 2, lambda trainer: kill_a_worker(client))
        start = time.monotonic()
        there = numlstm.Forecaster(**KW).fit(ds, "y", covariates="x", client=client)
        assert time.monotonic() - start < 120
    # The lost shard's batch was computed again: the same numbers as a fit without a cluster.
    np.testing.assert_allclose(there.history_["loss"], here.history_["loss"], rtol=1e-10)
    np.testing.assert_allclose(there.network_.params, here.network_.params, rtol=1e-9, atol=1e-12)


_REAL_SHARD_GRADIENT = data_parallel._shard_gradient


def _die_once_mid_batch(marker, *args):
    """A batch's gradient task: the first worker to run one dies (SIGKILL) while running it,
    taking its shard with it; every other call computes the gradient."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return _REAL_SHARD_GRADIENT(*args)
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_dying_mid_batch_costs_seconds_not_the_batch_timeout(monkeypatch, tmp_path):
    # On a loaded CI machine a worker killed between batches died while its batch ran, and the
    # client sat out the whole 600 s BATCH_TIMEOUT; the lost shard must be noticed at once.
    ds = sites()
    here = numlstm.Forecaster(**KW).fit(ds, "y", covariates="x")
    marker = tmp_path / "died"
    monkeypatch.setattr(data_parallel, "_shard_gradient", functools.partial(_die_once_mid_batch, str(marker)))
    with cluster() as c, distributed.Client(c) as client:
        start = time.monotonic()
        there = numlstm.Forecaster(**KW).fit(ds, "y", covariates="x", client=client)
        assert time.monotonic() - start < 60
    assert marker.exists()  # a worker did die mid-batch
    np.testing.assert_allclose(there.history_["loss"], here.history_["loss"], rtol=1e-10)
    np.testing.assert_allclose(there.network_.params, here.network_.params, rtol=1e-9, atol=1e-12)


def test_a_cluster_that_loses_every_worker_fails_clearly_in_bounded_time(monkeypatch):
    monkeypatch.setattr(data_parallel, "WORKER_WAIT", 3.0)
    monkeypatch.setattr(data_parallel, "BATCH_TIMEOUT", 10.0)
    ds = sites()
    with cluster(1) as c, distributed.Client(c) as client:
        def lose_everything(trainer):
            pids = client.run(os.getpid)
            c.scale(0)  # no nanny left to restart the worker
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)

        at_epoch(monkeypatch, 2, lose_everything)
        fc = numlstm.Forecaster(**KW)
        start = time.monotonic()
        with pytest.raises(data_parallel.WorkerLostError, match="lost its workers during the client= fit"):
            fc.fit(ds, "y", covariates="x", client=client)
        assert time.monotonic() - start < 90


def _kill_worker_once(block, marker):
    """A task of the data's graph: the first worker to run it dies (SIGKILL), as a worker
    killed by the out-of-memory killer would; the retried task returns the block."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return block
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_during_a_lazy_forecast_is_survived(tmp_path):
    ds = sites(n_site=4)
    fc = numlstm.Forecaster(**KW).fit(ds, "y", covariates="x")
    expected = fc.predict(ds)
    lazy_data = ds.chunk({"site": 1})
    lazy_data["y"] = lazy_data["y"].map_blocks(_kill_worker_once, args=[str(tmp_path / "killed")],
                                               template=lazy_data["y"])
    with cluster() as c, distributed.Client(c) as client:
        lazy = fc.predict(lazy_data)
        assert lazy["y"].chunks is not None
        future = client.compute(lazy)
        result = future.result(timeout=120)
    assert (tmp_path / "killed").exists()  # a worker did die
    xr.testing.assert_allclose(result, expected, rtol=1e-12)


def test_forecasts_from_many_threads_equal_serial_ones():
    ds = sites(n_site=6, n_time=60)
    fc = numlstm.Forecaster(**dict(KW, quantiles=[0.1, 0.5, 0.9])).fit(ds, "y", covariates="x")
    sampler = numlstm.Forecaster(**dict(KW, dropout=0.2)).fit(ds, "y", covariates="x")
    jobs = [("predict", dict(site=[f"s{k}"])) for k in range(6)] + [("predict", None), ("samples", None),
                                                                     ("backtest", None)] * 3

    def run(job):
        kind, sel = job
        data = ds if sel is None else ds.sel(sel)
        if kind == "predict":
            return fc.predict(data)
        if kind == "samples":
            return sampler.predict(data, samples=5, seed=1)
        return fc.backtest(data, start="2000-02-01")

    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            together = list(pool.map(run, jobs))
            for a, b in zip(together, serial):
                xr.testing.assert_identical(a, b)


def test_ctrl_c_during_a_client_fit_keeps_the_completed_epochs(monkeypatch):
    from numlstm.core.training import FitInterruptedWarning

    ds = sites()
    one_epoch = numlstm.Forecaster(**dict(KW, epochs=1)).fit(ds, "y", covariates="x")
    original = data_parallel.DistributedTrainer._batch
    calls = {"n": 0}

    def batch(self, idx):
        calls["n"] += 1
        if calls["n"] == 10:  # the third batch of the second epoch: two updates of it already applied
            raise KeyboardInterrupt
        return original(self, idx)

    monkeypatch.setattr(data_parallel.DistributedTrainer, "_batch", batch)
    with cluster() as c, distributed.Client(c) as client:
        fc = numlstm.Forecaster(**KW)
        with pytest.warns(FitInterruptedWarning, match="after 1 completed epoch"), pytest.raises(KeyboardInterrupt):
            fc.fit(ds, "y", covariates="x", client=client)
        for _ in range(50):  # the shards are released all the same
            if not any(client.has_what().values()):
                break
            time.sleep(0.1)
        assert not any(client.has_what().values())
    assert len(fc.history_["loss"]) == 1
    np.testing.assert_allclose(fc.network_.params, one_epoch.network_.params, rtol=1e-9, atol=1e-12)
    xr.testing.assert_allclose(fc.predict(ds), one_epoch.predict(ds))
