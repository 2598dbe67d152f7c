"""Interrupted and resumed fits with device='cuda', on a GPU or the CUDA simulator: the GPU
trainer goes through the same epoch loop as the CPU's (numlstm.core.training.fit)."""

import numpy as np
import pytest

import numlstm
from conftest import cuda_marks
from numlstm.core.training import FitInterruptedWarning

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]

KW = dict(units=3, batch_size=4, dtype="float64", random_state=0, device="cuda")


class Killed(RuntimeError):
    pass


def stop_at(monkeypatch, call, exc):
    from numlstm.core import gpu

    original = gpu.Trainer.epoch
    calls = {"n": 0}

    def epoch(self, order, batch_losses):
        failed = original(self, order, batch_losses)  # the weights on the device have moved on
        calls["n"] += 1
        if calls["n"] == call:
            raise exc()
        return failed

    monkeypatch.setattr(gpu.Trainer, "epoch", epoch)


def data(n=9):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3, 2)), rng.standard_normal(n)


def test_interrupted_cuda_fit_keeps_the_completed_epochs(monkeypatch):
    X, y = data()
    reference = numlstm.LSTMRegressor(epochs=2, **KW).fit(X, y)
    stop_at(monkeypatch, 3, KeyboardInterrupt)
    model = numlstm.LSTMRegressor(epochs=6, **KW)
    with pytest.warns(FitInterruptedWarning, match="after 2 completed epoch"), pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert model.history_ == reference.history_
    np.testing.assert_array_equal(model.network_.params, reference.network_.params)


def test_killed_cuda_fit_resumes(monkeypatch, tmp_path):
    X, y = data()
    whole = numlstm.LSTMRegressor(epochs=4, **KW).fit(X, y)
    run = tmp_path / "run.nc"
    with monkeypatch.context() as patch:
        stop_at(patch, 3, Killed)
        with pytest.raises(Killed):
            numlstm.LSTMRegressor(epochs=4, **KW).fit(X, y, checkpoint=run, checkpoint_every=2)
    resumed = numlstm.LSTMRegressor(epochs=4, **KW).fit(X, y, resume=run)
    np.testing.assert_allclose(resumed.history_["loss"], whole.history_["loss"], rtol=1e-12)
    np.testing.assert_allclose(resumed.network_.params, whole.network_.params, rtol=1e-12, atol=1e-14)
