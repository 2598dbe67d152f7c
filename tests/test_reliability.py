"""Nothing lost when things go wrong: interrupted fits, checkpoints and resumed fits.

An interrupt is raised deterministically by wrapping the trainer's ``epoch``
(numlstm's own function): the wrapped epoch runs, then Ctrl-C "arrives" in the
middle of the epoch's bookkeeping, as it would in a notebook. The tests taking
the ``backend`` fixture run on the CPU and, marked ``cuda``, on the GPU engine
(a GPU, or the simulator): every engine goes through the same epoch loop.
One test sends a real SIGINT to a fit in a subprocess.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import numlstm
from conftest import on_backends, trainer_class
from numlstm.core import checkpoint, engines
from numlstm.core.training import FitInterruptedWarning


class Killed(RuntimeError):
    """Stands for a fit killed outright (wall-time limit, crash): no handler runs."""


def interrupt_at(monkeypatch, call, exc=KeyboardInterrupt, backend="cpu"):
    """Raise ``exc`` right after the ``call``-th epoch of ``backend``'s trainer (counting from 1)
    has updated the weights, before the epoch is recorded: its weights must not be kept."""
    cls = trainer_class(backend)
    original = cls.epoch
    calls = {"n": 0}

    def epoch(self, order, batch_losses):
        failed = original(self, order, batch_losses)  # the weights (on the device) have moved on
        calls["n"] += 1
        if calls["n"] == call:
            raise exc()
        return failed

    monkeypatch.setattr(cls, "epoch", epoch)
    return calls


def windows(n=60, T=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, 2))
    y = X[:, -1, 0] * 0.5 + X[:, :, 1].mean(axis=1)
    return X, y


KW = dict(units=5, batch_size=16, random_state=3, dtype="float64")


def sized(backend):
    """``(X, y)`` and the estimator settings for ``backend``: on the GPU engine (the simulator,
    one Python thread per CUDA thread) a few windows in small batches, still several per epoch."""
    if backend == "cuda":
        return windows(n=10, T=3), dict(KW, units=3, batch_size=4)
    return windows(), KW


@pytest.mark.parametrize("early_stopping, backend", on_backends((False,), (True,), cuda=[(True,)]),
                         indirect=["backend"])
def test_interrupted_regressor_keeps_the_completed_epochs(monkeypatch, early_stopping, backend):
    (X, y), base = sized(backend)
    kw = dict(base, early_stopping=early_stopping, validation_fraction=0.25 if early_stopping else 0.0, patience=50,
              device=backend)
    reference = numlstm.LSTMRegressor(epochs=3, **kw).fit(X, y)
    interrupt_at(monkeypatch, 4, backend=backend)
    model = numlstm.LSTMRegressor(epochs=10, **kw)
    with pytest.warns(FitInterruptedWarning, match="after 3 completed epoch"), pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert model.n_epochs_ == 3
    assert model.history_ == reference.history_
    np.testing.assert_array_equal(model.network_.params, reference.network_.params)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_interrupted_fit_keeps_the_best_epoch_when_a_later_one_was_worse(monkeypatch):
    # The CPU trainer trains net.params in place: restoring the trainer after the best
    # weights were put back used to overwrite them with the last completed epoch's.
    X, y = windows()
    kw = dict(KW, early_stopping=True, validation_fraction=0.25, patience=50, learning_rate=0.3)
    reference = numlstm.LSTMRegressor(epochs=3, **kw).fit(X, y)
    assert int(np.argmin(reference.history_["val_loss"])) == 1  # epoch 2 is the best, epoch 3 worse
    interrupt_at(monkeypatch, 4)
    model = numlstm.LSTMRegressor(epochs=10, **kw)
    with pytest.warns(FitInterruptedWarning, match="best epoch's weights"), pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert model.history_ == reference.history_
    np.testing.assert_array_equal(model.network_.params, reference.network_.params)


def test_interrupted_classifier_keeps_the_completed_epochs(monkeypatch, backend):
    (X, y), kw = sized(backend)
    labels = np.where(y > 0, "up", "down")
    reference = numlstm.LSTMClassifier(epochs=2, device=backend, **kw).fit(X, labels)
    interrupt_at(monkeypatch, 3, backend=backend)
    model = numlstm.LSTMClassifier(epochs=10, device=backend, **kw)
    with pytest.warns(FitInterruptedWarning, match="after 2 completed epoch"), pytest.raises(KeyboardInterrupt):
        model.fit(X, labels)
    assert model.history_ == reference.history_
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))


def test_interrupt_in_the_first_epoch_keeps_the_initial_weights(monkeypatch):
    X, y = windows()
    interrupt_at(monkeypatch, 1)
    model = numlstm.LSTMRegressor(epochs=5, **KW)
    with pytest.warns(FitInterruptedWarning, match="after 0 completed epoch.*initial weights"), \
            pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert model.history_ == {"loss": []}
    assert np.isfinite(model.predict(X)).all()


CONFIGS = {
    "adam": dict(),
    "dropout, validation, early stopping": dict(dropout=0.2, recurrent_dropout=0.1, validation_fraction=0.25,
                                                early_stopping=True, patience=2),
    "sgd momentum, gru": dict(optimizer=numlstm.optimizers.SGD(0.05, momentum=0.9), cell="gru", clipnorm=1.0),
}


@pytest.mark.parametrize("config, backend", on_backends(*[(c,) for c in CONFIGS],
                                                       cuda=[("dropout, validation, early stopping",)]),
                         indirect=["backend"])  # on the GPU (a minute each on the simulator): the most features
def test_a_killed_fit_resumes_to_the_uninterrupted_result(monkeypatch, tmp_path, config, backend):
    (X, y), base = sized(backend)
    kw = dict(base, epochs=7, device=backend, **CONFIGS[config])
    whole = numlstm.LSTMRegressor(**kw).fit(X, y)
    run = tmp_path / "run.nc"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 6, Killed, backend=backend)  # killed during epoch 6: the checkpoint of epoch 4 is on disk
        with pytest.raises(Killed):
            numlstm.LSTMRegressor(**kw).fit(X, y, checkpoint=run, checkpoint_every=2)
    assert run.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    resumed = numlstm.LSTMRegressor(**kw).fit(X, y, resume=run)
    assert resumed.history_ == whole.history_
    np.testing.assert_array_equal(resumed.network_.params, whole.network_.params)


def test_an_interrupt_writes_a_checkpoint_to_resume_from(monkeypatch, tmp_path):
    X, y = windows()
    whole = numlstm.LSTMRegressor(epochs=6, **KW).fit(X, y)
    run = tmp_path / "run.nc"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 4)
        with pytest.warns(FitInterruptedWarning, match="after 3 completed.*checkpoint of it was written"), \
                pytest.raises(KeyboardInterrupt):
            numlstm.LSTMRegressor(epochs=6, **KW).fit(X, y, checkpoint=run, checkpoint_every=100)
    resumed = numlstm.LSTMRegressor(epochs=6, **KW).fit(X, y, resume=run)
    assert resumed.history_ == whole.history_
    np.testing.assert_array_equal(resumed.network_.params, whole.network_.params)


def test_resume_with_more_epochs_continues_the_fit(tmp_path):
    X, y = windows()
    longer = numlstm.LSTMRegressor(epochs=4, **KW).fit(X, y)
    run = tmp_path / "run.nc"
    numlstm.LSTMRegressor(epochs=2, **KW).fit(X, y, checkpoint=run)
    more = numlstm.LSTMRegressor(epochs=4, **KW).fit(X, y, resume=run)
    assert more.history_ == longer.history_
    np.testing.assert_array_equal(more.network_.params, longer.network_.params)


def test_resume_is_checked(tmp_path):
    X, y = windows()
    run = tmp_path / "run.nc"
    numlstm.LSTMRegressor(epochs=1, **KW).fit(X, y, checkpoint=run)
    with pytest.raises(ValueError, match="checkpoint_params. has shape .166,. .* needs .223,."):
        numlstm.LSTMRegressor(epochs=2, **dict(KW, units=6)).fit(X, y, resume=run)
    for other, data in [(dict(KW, batch_size=8), (X, y)), (dict(KW, learning_rate=0.01), (X, y)),
                        (KW, (X, y + 1)), (dict(KW, clipnorm=1.0), (X, y))]:
        with pytest.raises(ValueError, match="written by a fit with other data or other settings"):
            numlstm.LSTMRegressor(epochs=2, **other).fit(*data, resume=run)
    with pytest.raises(ValueError, match="not a checkpoint of a LSTMClassifier"):
        numlstm.LSTMClassifier(epochs=2, **KW).fit(X, y > 0, resume=run)
    with pytest.raises(ValueError, match="no checkpoint file at"):
        numlstm.LSTMRegressor(epochs=2, **KW).fit(X, y, resume=tmp_path / "missing.nc")
    with pytest.raises(ValueError, match="folder .* does not exist"):
        numlstm.LSTMRegressor(epochs=2, **KW).fit(X, y, checkpoint=tmp_path / "no" / "run.nc")
    with pytest.raises(ValueError, match="checkpoint_every must be a positive int"):
        numlstm.LSTMRegressor(epochs=2, **KW).fit(X, y, checkpoint=run, checkpoint_every=0)
    with pytest.raises(ValueError, match="L-BFGS keeps its state inside scipy"):
        numlstm.LSTMRegressor(epochs=2, optimizer="lbfgs", **KW).fit(X, y, checkpoint=run)


SIGINT_SCRIPT = textwrap.dedent("""
    import signal, sys, warnings
    # A process started in the background by a non-interactive shell (CI run with `&`) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler: restore it, as a
    # terminal's foreground process has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    import numlstm

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 20, 2))
    y = X[:, -1, 0]
    model = numlstm.LSTMRegressor(units=16, epochs=100000, batch_size=8, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y, checkpoint=sys.argv[1], checkpoint_every=1)
        except KeyboardInterrupt:
            print("interrupted", model.n_epochs_, bool(np.isfinite(model.predict(X[:5])).all()))
            print("warning", "; ".join(str(w.message) for w in caught))
            sys.exit(0)
    print("not interrupted")
    sys.exit(1)
""")


def test_a_real_ctrl_c_keeps_the_fit(tmp_path):
    run = tmp_path / "run.nc"
    script = tmp_path / "fit.py"
    script.write_text(SIGINT_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, str(script), str(run)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not run.exists():  # the first epoch's checkpoint: compiled and training
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint written in 240 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    words = out.split()
    assert words[0] == "interrupted" and int(words[1]) >= 1 and words[2] == "True", out
    assert f"after {words[1]} completed epoch" in out
    saved = checkpoint.read(run)  # written at the interrupt: the last completed epoch
    assert json.loads(saved.attrs[checkpoint.STATE_ATTR])["epoch"] == int(words[1])


def stations(n_time=60, seed=0):
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    t = np.arange(n_time)
    y = np.sin(t / 5)[:, None] + 0.1 * rng.standard_normal((n_time, 3))
    return xr.Dataset({"flow": (("time", "station"), y, {"units": "m3 s-1"}),
                       "rain": (("time", "station"), rng.random((n_time, 3)))},
                      coords={"time": pd.date_range("2001-01-01", periods=n_time, freq="D"),
                              "station": ["a", "b", "c"]})


FC = dict(lookback=6, horizon=3, units=4, batch_size=16, random_state=1, dtype="float64")


@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupted_forecaster_is_fitted_and_saves(monkeypatch, tmp_path, early_stopping):
    import xarray as xr

    ds = stations()
    kw = dict(FC, early_stopping=early_stopping, validation_fraction=0.2 if early_stopping else 0.0, patience=50)
    reference = numlstm.Forecaster(epochs=2, **kw).fit(ds, "flow", covariates="rain")
    interrupt_at(monkeypatch, 3)
    fc = numlstm.Forecaster(epochs=20, **kw)
    with pytest.warns(FitInterruptedWarning, match="after 2 completed epoch"), pytest.raises(KeyboardInterrupt):
        fc.fit(ds, "flow", covariates="rain")
    assert fc.history_ == reference.history_
    xr.testing.assert_identical(fc.predict(ds), reference.predict(ds))
    fc.save(tmp_path / "kept.nc")
    xr.testing.assert_identical(numlstm.load(tmp_path / "kept.nc").predict(), reference.predict())


def test_forecaster_checkpoint_loads_and_resumes(monkeypatch, tmp_path):
    import xarray as xr

    ds = stations()
    kw = dict(FC, epochs=5, validation_fraction=0.2, dropout=0.1)
    whole = numlstm.Forecaster(**kw).fit(ds, "flow", covariates="rain")
    run = tmp_path / "run.nc"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 4, Killed)
        with pytest.raises(Killed):
            numlstm.Forecaster(**kw).fit(ds, "flow", covariates="rain", checkpoint=run, checkpoint_every=3)
    at_three = numlstm.load(run)  # a checkpoint is a model file of the fit so far
    assert len(at_three.history_["loss"]) == 3
    assert at_three.predict(ds)["flow"].notnull().all()
    resumed = numlstm.Forecaster(**kw).fit(ds, "flow", covariates="rain", resume=run)
    assert resumed.history_ == whole.history_
    np.testing.assert_array_equal(resumed.network_.params, whole.network_.params)
    xr.testing.assert_identical(resumed.predict(ds), whole.predict(ds))
    numlstm.LSTMRegressor(epochs=1, **KW).fit(*windows(), checkpoint=tmp_path / "est.nc")
    with pytest.raises(ValueError, match="not a Forecaster checkpoint"):
        numlstm.Forecaster(**kw).fit(ds, "flow", covariates="rain", resume=tmp_path / "est.nc")
    with pytest.raises(ValueError, match="mode='global'"):
        numlstm.Forecaster(**dict(kw, mode="local")).fit(ds, "flow", checkpoint=run)


def test_interrupted_streamed_fit_is_fitted_with_the_completed_epochs(monkeypatch):
    import xarray as xr

    ds = stations().chunk({"station": 1})
    original = engines.CpuTrainer.batch
    calls = {"n": 0, "stop": None}

    def one_batch(*args):
        calls["n"] += 1
        if calls["n"] == calls["stop"]:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(engines.CpuTrainer, "batch", one_batch)
    reference = numlstm.Forecaster(epochs=1, **FC).fit(ds, "flow", stream=True)
    calls["n"], calls["stop"] = 0, calls["n"] + 2  # the second batch of the second epoch
    fc = numlstm.Forecaster(epochs=5, **FC)
    with pytest.warns(FitInterruptedWarning, match="after 1 completed epoch"), pytest.raises(KeyboardInterrupt):
        fc.fit(ds, "flow", stream=True)
    assert fc.history_ == reference.history_ and fc.n_windows_ == reference.n_windows_
    np.testing.assert_array_equal(fc.network_.params, reference.network_.params)
    xr.testing.assert_identical(fc.predict(), reference.predict())
