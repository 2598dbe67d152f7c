"""LSTMRegressor / LSTMClassifier: behaviour, reproducibility, training options."""

import logging

import numpy as np
import pytest

import numlstm
from numlstm import LSTMClassifier, LSTMRegressor


@pytest.fixture(scope="module")
def sine():
    t = np.arange(240, dtype=np.float32)
    s = np.sin(t / 6)
    X = np.stack([s[i:i + 10] for i in range(220)])
    return X, s[10:230]


def test_regressor_learns_a_sine(sine):
    X, y = sine
    model = LSTMRegressor(units=12, epochs=25, random_state=0).fit(X, y)
    assert model is not None and model.n_features_in_ == 1 and model.n_outputs_ == 1
    assert model.history_["loss"][-1] < 0.1 * model.history_["loss"][0]
    assert np.sqrt(np.mean((model.predict(X) - y) ** 2)) < 0.15
    assert model.predict(X).shape == (220,) and model.predict(X).dtype == np.float32


def test_same_seed_same_predictions(sine, backend):
    X, y = sine[0][:16, -4:], sine[1][:16]  # small, for the simulator: the GPU's run-to-run determinism too
    kw = dict(units=4, epochs=2, batch_size=8, device=backend)
    a = LSTMRegressor(random_state=7, **kw).fit(X, y)
    b = LSTMRegressor(random_state=7, **kw).fit(X, y)
    c = LSTMRegressor(random_state=8, **kw).fit(X, y)
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_multi_output_and_stacked_float64(sine):
    X, y = sine
    Y = np.stack([y, -y], axis=1)
    model = LSTMRegressor(units=[6, 5], layers=2, epochs=2, dtype="float64", random_state=0).fit(X, Y)
    assert model.predict(X).shape == (220, 2) and model.predict(X).dtype == np.float64
    assert [w["U"].shape for w in model.get_weights()["layers"]] == [(6, 24), (5, 20)]


def test_nan_targets_are_masked(sine):
    X, y = sine
    y = y.copy()
    y[::3] = np.nan
    model = LSTMRegressor(units=4, epochs=2, random_state=0).fit(X, y)
    assert np.isfinite(model.history_["loss"]).all()


def test_validation_and_early_stopping_restore_best(sine):
    X, y = sine
    model = LSTMRegressor(units=4, epochs=40, learning_rate=0.05, validation_fraction=0.25, early_stopping=True,
                          patience=2, random_state=0).fit(X, y)
    val = model.history_["val_loss"]
    assert len(val) == len(model.history_["loss"]) == model.n_epochs_
    n_val = int(np.ceil(0.25 * len(X)))
    Xv, yv = X[-n_val:], y[-n_val:]
    restored = np.mean((model.predict(Xv) - yv) ** 2)
    assert restored == pytest.approx(min(val), rel=1e-4)


def test_lbfgs_honours_early_stopping_and_restores_the_best_weights(sine):
    # L-BFGS once ignored early_stopping; it now goes through the same epoch record as Adam.
    X, y = sine
    noisy = y + np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)  # overfits soon
    model = LSTMRegressor(units=8, epochs=200, optimizer="lbfgs", validation_fraction=0.25, early_stopping=True,
                          patience=3, random_state=0).fit(X, noisy)
    val = model.history_["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 1 + 3 < 200  # stopped `patience` iterations after the best
    n_val = int(np.ceil(0.25 * len(X)))
    restored = np.mean((model.predict(X[-n_val:]) - noisy[-n_val:]) ** 2)
    assert restored == pytest.approx(val[best], rel=1e-4)


@pytest.mark.parametrize("optimizer", ["sgd", numlstm.optimizers.SGD(0.05, momentum=0.9, nesterov=True), "lbfgs"])
def test_other_optimizers_reduce_the_loss(sine, optimizer):
    X, y = sine
    model = LSTMRegressor(units=6, epochs=15, optimizer=optimizer, learning_rate=0.1, random_state=0).fit(X, y)
    assert model.history_["loss"][-1] < model.history_["loss"][0]


@pytest.mark.filterwarnings("ignore:.*overflow encountered:RuntimeWarning")  # the CUDA simulator's NumPy
def test_non_finite_loss_names_epoch_and_batch_and_keeps_weights(sine, backend):
    X, y = sine[0][:40, -4:], sine[1][:40]  # small, for the simulator
    model = LSTMRegressor(units=4, epochs=5, batch_size=4, optimizer="sgd", learning_rate=1e30, random_state=0,
                          device=backend)
    with pytest.raises(numlstm.NonFiniteLossError, match=r"epoch \d+, batch \d+ of 10; training stopped"):
        model.fit(X, y * 1e30)
    assert np.isfinite(model.network_.params).all()


def test_clipnorm_bounds_each_step(sine):
    X, y = sine
    model = LSTMRegressor(units=4, epochs=1, batch_size=220, optimizer="sgd", learning_rate=1.0, clipnorm=1e-3,
                          random_state=0)
    start = LSTMRegressor(units=4, epochs=1, random_state=0)
    model.fit(X, y)
    # same init (same seed), one full-batch step of length lr * clipnorm
    from numlstm.core.network import Network
    init = Network(1, [4], 1, np.float32).initialize(np.random.default_rng(0)).params
    assert np.linalg.norm(model.network_.params - init) == pytest.approx(1e-3, rel=1e-3)
    del start


def test_quantile_and_gaussian_losses(sine):
    X, y = sine
    q = LSTMRegressor(units=4, epochs=3, loss=numlstm.losses.Pinball([0.1, 0.5, 0.9]), random_state=0).fit(X, y)
    out = q.predict(X)
    assert out.shape == (220, 3) and (np.diff(out, axis=1) >= 0).all()
    g = LSTMRegressor(units=4, epochs=3, loss="gaussian_nll", random_state=0).fit(X, y)
    mean, std = g.predict(X, return_std=True)
    assert mean.shape == std.shape == (220,) and (std > 0).all()
    h = LSTMRegressor(units=4, epochs=2, loss=numlstm.losses.Huber(0.5), random_state=0).fit(X, y)
    assert h.predict(X).shape == (220,)


def test_binary_and_multiclass_classifier(rng):
    X = rng.standard_normal((150, 8)).astype(np.float32)
    y2 = (X.sum(axis=1) > 0).astype(int)
    clf = LSTMClassifier(units=8, epochs=30, random_state=0).fit(X, y2)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert (clf.predict(X) == y2).mean() > 0.85
    y3 = np.digitize(X.sum(axis=1), [-1.5, 1.5])
    clf3 = LSTMClassifier(units=8, epochs=30, random_state=0).fit(X, np.array(["lo", "mid", "hi"])[y3])
    assert clf3.classes_.tolist() == ["hi", "lo", "mid"] and clf3.predict_proba(X).shape == (150, 3)
    assert (clf3.predict(X) == np.array(["lo", "mid", "hi"])[y3]).mean() > 0.7


def test_sklearn_protocol():
    model = LSTMRegressor(units=3)
    params = model.get_params()
    assert params["units"] == 3 and params["loss"] == "mse" and "verbose" in params
    assert model.set_params(epochs=5, units=4) is model and model.epochs == 5
    assert repr(model) == "LSTMRegressor(units=4, epochs=5)"
    clone = LSTMRegressor(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert not hasattr(model, "network_")


def test_get_set_weights_round_trip(sine):
    X, y = sine
    model = LSTMRegressor(units=4, epochs=1, random_state=0).fit(X, y)
    weights = model.get_weights()
    other = LSTMRegressor(units=4, epochs=1, random_state=1).fit(X, y)
    np.testing.assert_array_equal(other.set_weights(weights).predict(X), model.predict(X))


def test_verbose_levels(sine, caplog, capsys):
    X, y = sine
    with caplog.at_level(logging.INFO, logger="numlstm"):
        LSTMRegressor(units=2, epochs=3, verbose=2, random_state=0).fit(X, y)
    assert [r.getMessage().split(" - ")[0] for r in caplog.records] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    LSTMRegressor(units=2, epochs=2, verbose=1, random_state=0).fit(X, y)
    assert "2/2" in capsys.readouterr().err  # tqdm's bar
    LSTMRegressor(units=2, epochs=2, verbose=0, random_state=0).fit(X, y)
    assert capsys.readouterr().err == ""
