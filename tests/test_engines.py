"""Engines: a device, a dask client and streaming resolved once into an Engine whose
declared capabilities decide what a fit may use, with one message for every refusal."""

import numpy as np
import pytest

import numlstm
from numlstm.core import engines
from numlstm.core.training import resolve_engine


def test_the_engine_is_resolved_in_one_place():
    assert resolve_engine("cpu") is engines.CPU
    assert resolve_engine("cpu", streamed=True) is engines.STREAMED
    with pytest.raises(ValueError, match="streamed .* fit trains on this process's CPU.*stream=False"):
        resolve_engine("cuda", streamed=True)
    with pytest.raises(ValueError, match="client= trains on the workers' CPUs; use device='cpu' with a client"):
        resolve_engine("cuda", client="a client")  # refused before the client is used


def test_capabilities_are_declared_and_enforced_with_the_same_message():
    assert all(getattr(engines.CPU, c) for c in ("dropout", "dropout_plans", "lbfgs", "tokens", "checkpoint",
                                                 "per_series"))
    assert not engines.STREAMED.lbfgs and not engines.STREAMED.checkpoint and not engines.STREAMED.per_series
    engines.CPU.require("lbfgs", "optimizer='lbfgs'", "unused")  # declared: nothing raised
    with pytest.raises(ValueError) as raised:
        engines.STREAMED.require("lbfgs", "optimizer='lbfgs'", "load the data.")
    assert str(raised.value) == ("optimizer='lbfgs' cannot run on a streamed (out-of-core) fit (the 'streamed' "
                                 "engine); load the data.")


def test_every_front_door_trains_through_the_cpu_engine_trainer(monkeypatch):
    """The estimators, the Forecaster and numlstm.keras all drive engines.CpuTrainer through
    training.run_epochs: counting its epochs counts every fit's epochs."""
    from numlstm import keras
    from numlstm.core import training

    loops = []
    original = training.run_epochs

    def counted(net, trainer, record, epochs, train, evaluate=None):
        loops.append(type(trainer).__name__)
        return original(net, trainer, record, epochs, train, evaluate)

    monkeypatch.setattr(training, "run_epochs", counted)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 4, 1)), rng.standard_normal(12)
    numlstm.LSTMRegressor(units=2, epochs=2).fit(X, y)
    model = keras.Sequential([keras.layers.LSTM(2, input_shape=(4, 1)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    assert len(model.fit(X.astype("float32"), y.astype("float32"), epochs=2, verbose=0).history["loss"]) == 2
    assert loops == ["CpuTrainer", "CpuTrainer"]
