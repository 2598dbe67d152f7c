"""Training and forecasting with device='cuda' against the CPU, on a GPU or the CUDA simulator.

Run with NUMBA_ENABLE_CUDASIM=1 (a separate pytest process, as ``.ci/run``
does) where there is no GPU. Launch sizes are patched small so that the
simulator's one-Python-thread-per-CUDA-thread stays quick and multi-block
paths run. These compare the GPU with the CPU; what must hold on every engine
(gradients by finite differences, interrupts and resumed fits, determinism,
non-finite losses) is tested once, with the ``backend`` fixture of conftest.py.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from conftest import cuda_marks
from numlstm.core import losses
from numlstm.core.network import Network
from numlstm.core.optimizers import Adam
from numlstm.core.cpu_engine import batch_loss_grad

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]


def _data(rng, n=7, T=3, I=2, O=2):
    X = rng.standard_normal((n, T, I))
    Y = rng.standard_normal((n, O))
    M = (rng.random((n, O)) > 0.2).astype(np.float64)
    return X, Y, M


@pytest.mark.parametrize("loss_id, lparams, n_out", [(losses.MSE, np.zeros(1), 2), (losses.MAE, np.zeros(1), 2),
                                                     (losses.PINBALL, np.array([0.1, 0.9]), 4)])
def test_batch_gradients_match_the_cpu(rng, loss_id, lparams, n_out):
    """One batch through two layers, the head, a masked loss: every gradient, float64."""
    from numba import cuda

    from numlstm.core import gpu

    X, Y, M = _data(rng)
    net = Network(2, [3, 2], n_out, np.float64).initialize(rng)
    want = np.zeros_like(net.params)
    loss_cpu = batch_loss_grad(net.params, want, net.table, net.head, X, Y, M, loss_id, lparams, 1)
    trainer = gpu.Trainer(net, X, Y, M, 7, loss_id, lparams, Adam(), None)
    d_losses = cuda.to_device(np.zeros(1))
    trainer._batch(*(cuda.to_device(a) for a in (X, Y, M)), d_losses, 0)
    np.testing.assert_allclose(trainer.grads.copy_to_host(), want, rtol=1e-10, atol=1e-12)
    assert d_losses.copy_to_host()[0] == pytest.approx(loss_cpu, rel=1e-12)


def test_regressor_fit_on_cuda_matches_cpu(rng):
    X, Y, _ = _data(rng, n=9)
    kwargs = dict(units=3, layers=2, epochs=3, batch_size=4, dtype="float64", random_state=0, clipnorm=0.5)
    cpu = numlstm.LSTMRegressor(device="cpu", **kwargs).fit(X, Y)
    gpu = numlstm.LSTMRegressor(device="cuda", **kwargs).fit(X, Y)
    assert gpu.device_ == "cuda"
    np.testing.assert_allclose(gpu.history_["loss"], cpu.history_["loss"], rtol=1e-10)
    np.testing.assert_allclose(gpu.network_.params, cpu.network_.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-9, atol=1e-12)


def test_classifier_and_early_stopping_on_cuda(rng):
    X = rng.standard_normal((10, 3, 2))
    y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    kwargs = dict(units=2, epochs=3, batch_size=5, dtype="float64", random_state=0, validation_fraction=0.3,
                  early_stopping=True, patience=1)
    cpu = numlstm.LSTMClassifier(**kwargs).fit(X, y)
    gpu = numlstm.LSTMClassifier(device="cuda", **kwargs).fit(X, y)
    np.testing.assert_allclose(gpu.history_["val_loss"], cpu.history_["val_loss"], rtol=1e-10)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), rtol=1e-9)


def test_forecaster_on_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    ds = xr.Dataset({"y": (("time", "site"), rng.standard_normal((16, 2)))},
                    coords={"time": pd.date_range("2000-01-01", periods=16, freq="D"), "site": ["a", "b"]})
    kwargs = dict(lookback=3, horizon=2, units=2, epochs=2, batch_size=8, dtype="float64", random_state=0,
                  quantiles=[0.2, 0.8])
    cpu = numlstm.Forecaster(**kwargs).fit(ds, "y")
    gpu = numlstm.Forecaster(device="cuda", **kwargs).fit(ds, "y")
    assert gpu.device_ == "cuda"
    xr.testing.assert_allclose(gpu.predict(), cpu.predict(), rtol=1e-9)


def test_lbfgs_is_cpu_only(rng):
    X, Y, _ = _data(rng)
    with pytest.raises(ValueError, match="optimizer='lbfgs' cannot run on the GPU.*the CPU of this process only"):
        numlstm.LSTMRegressor(units=2, epochs=1, optimizer="lbfgs", device="cuda").fit(X, Y)
