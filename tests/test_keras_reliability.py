"""numlstm.keras after Ctrl-C: ``Sequential.fit`` keeps what the completed epochs learned.

The interrupt is raised deterministically, as in test_reliability.py: right after
numlstm's compiled epoch (``cpu_engine.train_epoch`` as the CPU trainer calls it, our own function) has updated
the weights, or from a callback while the epoch is being recorded. Either way
that epoch counts for nothing.
"""

import numpy as np
import pytest

from numlstm import FitInterruptedWarning
from numlstm.core import engines
from numlstm.keras import callbacks, optimizers, utils
from numlstm.keras.layers import LSTM, Dense
from numlstm.keras.models import Sequential, load_model


def interrupt_at(monkeypatch, call):
    """Raise KeyboardInterrupt right after the ``call``-th compiled epoch (counting from 1)."""
    original = engines.train_epoch
    calls = {"n": 0}

    def train_epoch(*args, **kwargs):
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(engines, "train_epoch", train_epoch)


class InterruptAt(callbacks.Callback):
    """Ctrl-C while the other callbacks record epoch ``epoch`` (put it before them)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture
def model(monkeypatch):
    """A new model with the same initial weights and shuffling each time it is called."""
    monkeypatch.setitem(utils._state, "sequence", None)  # restored after the test

    def make():
        utils.set_random_seed(11)
        model = Sequential([LSTM(6, input_shape=(5, 2)), Dense(1)])
        model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
        return model

    return make


def data(seed=0, n=40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5, 2)).astype("float32")
    return X, (X[:, -1, 0] * 0.5 + rng.standard_normal(n) * 0.3).astype("float32")


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True))


def test_an_interrupted_fit_keeps_the_completed_epochs(monkeypatch, model, tmp_path):
    X, y = data()
    kw = dict(batch_size=8, validation_split=0.25, verbose=0)
    reference = model()
    reference.fit(X, y, epochs=3, **kw)
    interrupted = model()
    with monkeypatch.context() as patch:
        interrupt_at(patch, 4)
        with pytest.warns(FitInterruptedWarning, match=r"after 3 completed epoch\(s\) of 10; the model keeps the "
                                                       r"weights of epoch 3 and their history") as warned, \
                pytest.raises(KeyboardInterrupt):
            interrupted.fit(X, y, epochs=10, **kw)
    assert warned[0].filename == __file__  # the warning names the line that called fit
    assert same_weights(interrupted, reference)
    assert interrupted.history.history == reference.history.history
    assert len(interrupted.history.history["val_mae"]) == 3 and interrupted.history.epoch == [0, 1, 2]
    np.testing.assert_array_equal(interrupted.predict(X), reference.predict(X))
    interrupted.save(tmp_path / "model.nc")
    np.testing.assert_array_equal(load_model(tmp_path / "model.nc").predict(X), reference.predict(X))
    # The optimizer's state is that of epoch 3 too: one more epoch (same order) ends at the same weights.
    for m in (reference, interrupted):
        m.fit(X, y, epochs=1, shuffle=False, **kw)
    assert same_weights(interrupted, reference)


@pytest.mark.parametrize("monitor", ["val_loss", "loss"])
def test_an_interrupt_keeps_the_weights_early_stopping_would_restore(model, monitor):
    X, y = data(seed=2)
    if monitor == "val_loss":  # noise: val_loss soon gets worse, so the best weights are not the last ones
        y = np.random.default_rng(3).standard_normal(len(y)).astype("float32")
    kw = dict(batch_size=8, validation_split=0.3, verbose=0)
    stop = callbacks.EarlyStopping(monitor=monitor, patience=100, restore_best_weights=True)
    reference = model()
    reference.fit(X, y, epochs=6, callbacks=[stop], **kw)
    interrupted = model()
    seen = callbacks.EarlyStopping(monitor=monitor, patience=100, restore_best_weights=True)
    with pytest.warns(FitInterruptedWarning, match=r"after 6 completed epoch\(s\) of 20; the model keeps the "
                                                   r"best epoch's weights"), pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y, epochs=20, callbacks=[seen, InterruptAt(6)], **kw)  # epoch 7 is seen by `seen` only
    if monitor == "val_loss":
        assert stop.best_epoch < 5
    else:  # the loss still falls: `seen` holds the weights of epoch 7, which count for nothing
        assert stop.best_epoch == 5 and seen.best_epoch == 6
    assert same_weights(interrupted, reference)
    assert interrupted.history.history == reference.history.history


def test_an_interrupt_in_the_first_epoch_keeps_the_initial_weights(monkeypatch, model):
    X, y = data()
    initial = model()
    interrupted = model()
    interrupt_at(monkeypatch, 1)
    with pytest.warns(FitInterruptedWarning, match=r"after 0 completed epoch\(s\) of 5; the model keeps its "
                                                   "initial weights"), pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y, epochs=5, verbose=0)
    assert same_weights(interrupted, initial)
    assert interrupted.history.history == {} and interrupted.history.epoch == []
    assert np.isfinite(interrupted.predict(X)).all()
