"""GRU networks (cell="gru") in the core, the estimators and the model file, on the CPU.

The batch gradient of a stack of GRU layers and the dense head is checked two
ways in float64: against central finite differences, and against the NumPy
reference layers of ``reference.py`` composed by hand (forward through every
layer, the head and the loss; backward through them again).
"""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
import reference as ref
from numlstm import LSTMClassifier, LSTMRegressor
from numlstm.core import losses
from numlstm.core.network import Network
from numlstm.core.cpu_engine import batch_loss_grad, dataset_loss
from numlstm.core.training import predict

LOSSES = [(losses.MSE, np.zeros(1), 1), (losses.PINBALL, np.array([0.1, 0.5, 0.9]), 3)]
LOSS_IDS = ["mse", "pinball"]


def _gru_net(rng, n_in=2, units=(4, 3), n_out=2, dtype=np.float64):
    net = Network(n_in, units, n_out, dtype, cell="gru").initialize(rng)
    net.params += 0.2 * rng.standard_normal(net.n_params)  # off the zero biases
    return net


def _batch(rng, n=6, T=5, F=2, O=2):
    X = rng.standard_normal((n, T, F))
    Y = rng.standard_normal((n, O))
    M = np.ones_like(Y)
    M[1, 0] = M[4, 1] = 0  # masked targets
    return X, Y, M


def _numpy_loss(loss_id, lparams, pred, Y, M):
    """The mean loss over unmasked targets and its gradient, in NumPy."""
    count = M.sum()
    if loss_id == losses.MSE:
        e = pred - Y
        return (M * e ** 2).sum() / count, 2 * M * e / count
    Q = lparams.size
    e = Y[:, :, None] - pred.reshape(Y.shape + (Q,))
    total = np.where(e >= 0, lparams * e, (lparams - 1) * e)
    d = np.where(e >= 0, -lparams, 1 - lparams) * M[:, :, None] / (count * Q)
    return (M[:, :, None] * total).sum() / (count * Q), d.reshape(pred.shape)


def _numpy_network_loss_grad(net, X, Y, M, loss_id, lparams):
    """Loss and flat gradient of ``net`` from the NumPy reference GRU layers."""
    layers = [net.layer(net.params, k) for k in range(len(net.hidden_sizes))]
    Wd, bd = net.head_views(net.params)
    inputs = [X]
    for W, U, b in layers:
        inputs.append(ref.gru_forward(inputs[-1], W, U, b)[0])
    top = inputs[-1]
    loss, dpred = _numpy_loss(loss_id, lparams, top[:, -1] @ Wd + bd, Y, M)
    grads = np.zeros_like(net.params)
    dWd, dbd = net.head_views(grads)
    dWd[:] = top[:, -1].T @ dpred
    dbd[:] = dpred.sum(axis=0)
    dh = np.zeros_like(top)
    dh[:, -1] = dpred @ Wd.T
    for k in range(len(layers) - 1, -1, -1):
        W, U, b = layers[k]
        g = ref.gru_backward(inputs[k], W, U, b, dh)
        for view, name in zip(net.layer(grads, k), ("dW", "dU", "db")):
            view[...] = g[name]
        dh = g["dx"]
    return loss, grads


def _loss_grad(net, params, X, Y, M, loss_id, lparams, n_threads=2):
    grads = np.zeros_like(params)
    loss = batch_loss_grad(params, grads, net.table, net.head, X, Y, M, loss_id, lparams, n_threads)
    return loss, grads


@pytest.mark.parametrize("loss_id, lparams, per_target", LOSSES, ids=LOSS_IDS)
def test_gru_network_gradient_matches_numpy_reference(rng, loss_id, lparams, per_target):
    X, Y, M = _batch(rng)
    net = _gru_net(rng, n_out=2 * per_target)
    loss, grads = _loss_grad(net, net.params, X, Y, M, loss_id, lparams)
    want_loss, want = _numpy_network_loss_grad(net, X, Y, M, loss_id, lparams)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(grads, want, rtol=1e-10, atol=1e-12)
    _, one_thread = _loss_grad(net, net.params, X, Y, M, loss_id, lparams, n_threads=1)
    np.testing.assert_allclose(one_thread, grads, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss_id, lparams, per_target", LOSSES, ids=LOSS_IDS)
def test_gru_network_gradient_by_finite_differences(rng, loss_id, lparams, per_target):
    X, Y, M = _batch(rng)
    net = _gru_net(rng, n_out=2 * per_target)
    _, grads = _loss_grad(net, net.params, X, Y, M, loss_id, lparams)
    eps = 1e-6
    numeric = np.empty_like(grads)
    for i in range(net.n_params):
        plus, minus = net.params.copy(), net.params.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric[i] = (_loss_grad(net, plus, X, Y, M, loss_id, lparams)[0]
                      - _loss_grad(net, minus, X, Y, M, loss_id, lparams)[0]) / (2 * eps)
    np.testing.assert_allclose(grads, numeric, rtol=1e-5, atol=1e-8)


def test_gru_prediction_matches_reference(rng, dtype):
    net = _gru_net(rng, n_in=3, units=(5, 4), n_out=2, dtype=dtype)
    X = rng.standard_normal((7, 6, 3)).astype(dtype)
    h = X.astype(np.float64)
    for k in range(2):
        h = ref.gru_forward(h, *(a.astype(np.float64) for a in net.layer(net.params, k)))[0]
    Wd, bd = (a.astype(np.float64) for a in net.head_views(net.params))
    got = predict(net, X)
    assert got.dtype == dtype
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, h[:, -1] @ Wd + bd, **tol)


def test_dataset_loss_of_a_gru_network_is_the_batch_loss(rng):
    X, Y, M = _batch(rng)
    net = _gru_net(rng)
    loss, _ = _loss_grad(net, net.params, X, Y, M, losses.MSE, np.zeros(1))
    whole = dataset_loss(net.params, net.table, net.head, X, Y, M, losses.MSE, np.zeros(1), 2)
    assert whole == pytest.approx(loss, rel=1e-12)


def test_gru_network_layout_and_keras_initialisation(rng):
    net = Network(3, (8, 5), 2, np.float64, cell="gru").initialize(rng)
    sizes = [3 * 24 + 8 * 24 + 2 * 24, 8 * 15 + 5 * 15 + 2 * 15]
    assert net.cell == "gru" and net.n_params == sum(sizes) + 5 * 2 + 2
    W, U, b = net.layer(net.params, 0)
    assert (W.shape, U.shape, b.shape) == ((3, 24), (8, 24), (2, 24))
    assert np.abs(W).max() <= np.sqrt(6 / (3 + 24))  # glorot-uniform over (input, 3H)
    np.testing.assert_allclose(U @ U.T, np.eye(8), atol=1e-12)  # orthogonal rows
    assert not b.any()  # a GRU has no forget bias: all zero, as Keras
    assert np.shares_memory(W, net.params) and np.shares_memory(b, net.params)
    assert [v.shape for v in net.layer(net.params, 1)] == [(8, 15), (5, 15), (2, 15)]


def test_network_weights_carry_the_cell(rng):
    gru = Network(2, (3,), 1, np.float64, cell="gru").initialize(rng)
    weights = gru.get_weights()
    assert weights["cell"] == "gru" and weights["layers"][0]["b"].shape == (2, 9)
    other = Network(2, (3,), 1, np.float64, cell="gru").set_weights(weights)
    np.testing.assert_array_equal(other.params, gru.params)
    lstm = Network(2, (3,), 1, np.float64).initialize(rng)
    assert lstm.get_weights()["cell"] == "lstm"
    with pytest.raises(ValueError, match=r"weights\['cell'\] is 'gru' but this model has 'lstm' layers; .* "
                                         r"cell='gru'"):
        lstm.set_weights(weights)
    del weights["cell"]  # e.g. from numlstm.interop: the shapes tell
    with pytest.raises(ValueError, match=r"weights\['layers'\]\[0\]\['W'\] has shape \(2, 9\); expected \(2, 12\)\. "
                                         r"These look like the weights of GRU layers .* cell='gru'"):
        lstm.set_weights(weights)
    with pytest.raises(ValueError, match=r"cell must be 'lstm' or 'gru' .*, got 'rnn'\. Pass cell='lstm'"):
        Network(2, (3,), 1, np.float64, cell="rnn")


# --- estimators --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sine():
    t = np.arange(160, dtype=np.float32)
    s = np.sin(t / 5)
    X = np.stack([s[i:i + 6] for i in range(150)])
    return X, s[6:156]


def test_gru_regressor_learns(sine):
    X, y = sine
    model = LSTMRegressor(units=8, epochs=15, batch_size=16, learning_rate=0.01, random_state=0, cell="gru")
    model.fit(X, y)
    assert model.network_.cell == "gru"
    loss = model.history_["loss"]
    assert loss[-1] < 0.3 * loss[0]
    pred = model.predict(X)
    assert pred.shape == (150,) and pred.dtype == np.float32
    assert np.sqrt(np.mean((pred - y) ** 2)) < 0.3


def test_gru_regressor_float64_stacked_multi_output_with_validation(sine):
    X, y = sine
    Y = np.stack([y, -y], axis=1)
    model = LSTMRegressor(units=[5, 4], layers=2, epochs=3, batch_size=8, dtype="float64", validation_fraction=0.2,
                          early_stopping=True, patience=5, random_state=0, cell="gru").fit(X, Y)
    assert model.predict(X).shape == (150, 2) and model.predict(X).dtype == np.float64
    assert [w["U"].shape for w in model.get_weights()["layers"]] == [(5, 15), (4, 12)]
    assert len(model.history_["val_loss"]) == model.n_epochs_
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_gru_regressor_same_seed_same_predictions_and_weights_round_trip(sine):
    X, y = sine
    kwargs = dict(units=4, epochs=2, dtype="float64", cell="gru")
    a = LSTMRegressor(random_state=3, **kwargs).fit(X, y)
    b = LSTMRegressor(random_state=3, **kwargs).fit(X, y)
    c = LSTMRegressor(random_state=4, **kwargs).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))
    weights = a.get_weights()
    assert weights["cell"] == "gru" and weights["layers"][0]["b"].shape == (2, 12)
    np.testing.assert_array_equal(c.set_weights(weights).predict(X), a.predict(X))
    lstm = LSTMRegressor(units=4, epochs=1, dtype="float64", random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"weights\['cell'\] is 'gru' but this model has 'lstm' layers"):
        lstm.set_weights(weights)


def test_gru_regressor_with_lbfgs_and_pinball(sine):
    X, y = sine
    lbfgs = LSTMRegressor(units=4, epochs=8, optimizer="lbfgs", dtype="float64", random_state=0, cell="gru")
    lbfgs.fit(X, y)
    assert lbfgs.history_["loss"][-1] < lbfgs.history_["loss"][0]
    q = LSTMRegressor(units=4, epochs=2, loss=numlstm.losses.Pinball([0.2, 0.8]), dtype="float64", random_state=0,
                      cell="gru").fit(X, y)
    out = q.predict(X)
    assert out.shape == (150, 2) and (np.diff(out, axis=1) >= 0).all()


def test_gru_classifier(rng):
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y2 = (X.sum(axis=1) > 0).astype(int)
    clf = LSTMClassifier(units=6, epochs=20, learning_rate=0.01, random_state=0, cell="gru").fit(X, y2)
    assert clf.network_.cell == "gru" and clf.history_["loss"][-1] < clf.history_["loss"][0]
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert (clf.predict(X) == y2).mean() > 0.8
    labels = np.array(["lo", "mid", "hi"])[np.digitize(X.sum(axis=1), [-1.0, 1.0])]
    clf3 = LSTMClassifier(units=4, epochs=2, random_state=0, cell="gru").fit(X, labels)
    assert clf3.predict_proba(X).shape == (120, 3) and set(clf3.predict(X)) <= {"lo", "mid", "hi"}


def test_cell_parameter_protocol_and_validation(sine):
    X, y = sine
    model = LSTMRegressor(units=3)
    assert model.get_params()["cell"] == "lstm" and LSTMClassifier().get_params()["cell"] == "lstm"
    assert model.set_params(cell="gru") is model and model.cell == "gru"
    assert repr(model) == "LSTMRegressor(units=3, cell='gru')"
    assert LSTMRegressor(**model.get_params()).get_params() == model.get_params()
    for estimator in (LSTMRegressor, LSTMClassifier):
        for bad in ("rnn", None, 3):
            with pytest.raises(ValueError, match=rf"cell must be 'lstm' or 'gru' \(the recurrent layer type\), "
                                                 rf"got {bad!r}\. Pass cell='lstm' \(the default\) or cell='gru'"):
                estimator(epochs=1, cell=bad).fit(X, (y > 0).astype(int))
    assert not hasattr(LSTMRegressor(cell="rnn"), "network_")  # __init__ only stores


def test_data_parallel_shard_gradients_of_a_gru_network_add_up(rng):
    """The distributed trainer's worker function on a GRU network: the shards' sums
    are the whole batch's mean loss and gradient."""
    from numlstm.core.distributed import _shard_gradient

    X, Y, M = _batch(rng, n=8)
    net = _gru_net(rng)
    loss, grads = _loss_grad(net, net.params, X, Y, M, losses.MSE, np.zeros(1))
    parts = [_shard_gradient((X[lo:hi], Y[lo:hi], M[lo:hi]), np.arange(hi - lo), net.params, net.table, net.head,
                             losses.MSE, np.zeros(1)) for lo, hi in ((0, 3), (3, 8))]
    count = sum(c for _, _, c in parts)
    assert sum(l_sum for _, l_sum, _ in parts) / count == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(sum(g for g, _, _ in parts) / count, grads, rtol=1e-10, atol=1e-13)


# --- the model file ----------------------------------------------------------------------------


@pytest.mark.parametrize("local", [False, True], ids=["global", "local"])
def test_model_file_weights_round_trip_for_gru(rng, local):
    from numlstm.forecast import modelfile

    net = _gru_net(rng, n_in=3, units=(4, 2), n_out=5)
    local_params = np.stack([net.params, -net.params, 2 * net.params]) if local else None
    ds = xr.Dataset(modelfile.weight_variables(net, local_params))
    lead = ("numlstm_series",) if local else ()
    assert ds["gru0_W"].dims == lead + ("gru0_input", "gru0_gate") and ds["gru0_W"].shape[-2:] == (3, 12)
    assert ds["gru1_U"].dims == lead + ("gru1_unit", "gru1_gate") and ds["gru1_U"].shape[-2:] == (2, 6)
    assert ds["gru0_b"].dims == lead + ("gru0_bias", "gru0_gate") and ds["gru0_b"].shape[-2:] == (2, 12)
    assert not any(name.startswith("lstm") for name in ds.data_vars)
    config = json.loads(json.dumps(modelfile.network_config(net)))
    assert config["cell"] == "gru"
    back, back_local = modelfile.network_from_dataset(ds, config)
    assert back.cell == "gru" and back.hidden_sizes == (4, 2)
    if local:
        np.testing.assert_array_equal(back_local, local_params)
    else:
        assert back_local is None
        np.testing.assert_array_equal(back.params, net.params)


def test_model_file_without_a_cell_is_an_lstm_network(rng):
    """Files written before GRU networks have no "cell" in their network config."""
    from numlstm.forecast import modelfile

    net = Network(2, (3,), 1, np.float64).initialize(rng)
    ds = xr.Dataset(modelfile.weight_variables(net))
    assert ds["lstm0_b"].dims == ("lstm0_gate",)
    config = modelfile.network_config(net)
    del config["cell"]
    back, _ = modelfile.network_from_dataset(ds, config)
    assert back.cell == "lstm"
    np.testing.assert_array_equal(back.params, net.params)


@pytest.mark.slow
def test_forecaster_model_file_round_trip_of_a_gru_network(tmp_path):
    """A fitted Forecaster whose network is a GRU one saves and loads through the model
    file (the Forecaster builds LSTM networks for now: its network is swapped here)."""
    from numlstm import io
    from numlstm.forecast import modelfile

    rng = np.random.default_rng(0)
    ds = xr.Dataset({"y": (("time", "site"), rng.standard_normal((30, 2)))},
                    coords={"time": pd.date_range("2000-01-01", periods=30, freq="D"), "site": ["a", "b"]})
    fc = numlstm.Forecaster(lookback=4, horizon=2, units=3, epochs=1, batch_size=16, dtype="float64",
                            random_state=0).fit(ds, "y")
    lstm_file = modelfile.to_dataset(fc)
    assert lstm_file.attrs["numlstm_format_version"] == 10 and "lstm0_W" in lstm_file  # every file since the move
    old = fc.network_
    fc.network_ = Network(old.input_size, old.hidden_sizes, old.output_size, old.dtype, cell="gru").initialize(rng)
    want = fc.predict()
    io.write_dataset(modelfile.to_dataset(fc), tmp_path / "gru.nc")
    on_disk = xr.load_dataset(tmp_path / "gru.nc")
    assert on_disk.attrs["numlstm_format_version"] == 10
    assert "gru0_W" in on_disk and "lstm0_W" not in on_disk
    assert json.loads(on_disk.attrs["numlstm_config"])["network"]["cell"] == "gru"
    loaded = numlstm.load(tmp_path / "gru.nc")
    assert loaded.network_.cell == "gru"
    np.testing.assert_array_equal(loaded.network_.params, fc.network_.params)
    xr.testing.assert_identical(loaded.predict(), want)


def test_forecaster_with_gru_cells_fits_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(60)
    ds = xr.Dataset({"y": (("time", "site"), np.sin(t / 4.0)[:, None] + 0.1 * rng.standard_normal((60, 2)))},
                    coords={"time": pd.date_range("2000-01-01", periods=60, freq="D"), "site": ["a", "b"]})
    kw = dict(lookback=6, horizon=2, units=4, epochs=3, batch_size=16, random_state=0)
    gru = numlstm.Forecaster(cell="gru", **kw).fit(ds, "y")
    lstm = numlstm.Forecaster(**kw).fit(ds, "y")
    assert gru.network_.cell == "gru" and 3 * gru.network_.n_params < 4 * lstm.network_.n_params
    out = gru.predict()
    assert out["y"].shape == (2, 2) and np.isfinite(out["y"]).all()
    gru.save(tmp_path / "gru.nc")
    back = numlstm.load(tmp_path / "gru.nc")
    assert back.cell == "gru"
    xr.testing.assert_identical(back.predict(), out)
    with pytest.raises(ValueError, match="cell must be 'lstm' or 'gru'"):
        numlstm.Forecaster(cell="rnn", **kw).fit(ds, "y")
