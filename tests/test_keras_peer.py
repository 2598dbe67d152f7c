"""numlstm.keras against Keras 3 itself (torch backend): with the same weights the
predictions agree to 1e-5 in float32, weights move both ways, and a ``.keras`` file
written by Keras loads and predicts the same.

Keras is a test peer only (``pip install 'numlstm[keras]'``); without it these
tests are skipped with a message.
"""

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install keras torch); the "
                                                "comparisons with Keras are skipped")

from numlstm.keras import layers as nl  # noqa: E402
from numlstm.keras.models import Sequential, load_model  # noqa: E402

kl = keras.layers
# Keras' own warnings (numpy 2's __array__ copy keyword, input_shape hints) are not numlstm's: the same
# numlstm code runs warning-free in test_keras.py.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
T, F, V = 7, 3, 12  # time steps, features, vocabulary


def keras_model(stack, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.Sequential([keras.Input(shape)] + stack)
    rng = np.random.default_rng(0)  # weights far from the initial ones, so every gate matters
    model.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in model.get_weights()])
    return model


def keras_predict(model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.predict(x, verbose=0))


def float_input():
    return np.random.default_rng(1).standard_normal((9, T, F)).astype("float32")


def token_input():
    ids = np.random.default_rng(2).integers(1, V, (9, T))
    ids[0, :3] = 0  # padding at the start
    ids[1, -2:] = 0  # and at the end
    ids[2, :] = np.arange(T) % V
    return ids


CASES = {
    "lstm": (lambda k: [k.LSTM(5), k.Dense(2)], (T, F), float_input),
    "gru": (lambda k: [k.GRU(5), k.Dense(1)], (T, F), float_input),
    "stacked": (lambda k: [k.LSTM(6, return_sequences=True), k.LSTM(4, return_sequences=True), k.LSTM(3),
                           k.Dense(1)], (T, F), float_input),
    "stacked_gru": (lambda k: [k.GRU(4, return_sequences=True), k.GRU(3), k.Dense(2)], (T, F), float_input),
    "bidirectional": (lambda k: [k.Bidirectional(k.LSTM(4, return_sequences=True)), k.Bidirectional(k.LSTM(3)),
                                 k.Dense(1)], (T, F), float_input),
    "bidirectional_gru": (lambda k: [k.Bidirectional(k.GRU(4)), k.Dense(3, activation="softmax")], (T, F),
                          float_input),
    "go_backwards": (lambda k: [k.LSTM(5, go_backwards=True), k.Dense(1)], (T, F), float_input),
    "embedding": (lambda k: [k.Embedding(V, 4, mask_zero=True), k.LSTM(5), k.Dense(1, activation="sigmoid")],
                  (T,), token_input),
    "embedding_unmasked": (lambda k: [k.Embedding(V, 4), k.GRU(5), k.Dense(1)], (T,), token_input),
    "embedding_bidirectional": (lambda k: [k.Embedding(V, 4, mask_zero=True),
                                           k.Bidirectional(k.LSTM(3, return_sequences=True)),
                                           k.Bidirectional(k.LSTM(2)), k.Dense(1, activation="sigmoid")],
                                (T,), token_input),
}


@pytest.mark.parametrize("case", list(CASES))
def test_predictions_equal_keras_with_the_same_weights(case):
    stack, shape, data = CASES[case]
    peer = keras_model(stack(kl), shape)
    model = Sequential([nl.Input(shape=shape)] + stack(nl))
    model.set_weights(peer.get_weights())
    x = data()
    np.testing.assert_allclose(model.predict(x), keras_predict(peer, x), atol=1e-5, rtol=0)
    assert model.count_params() == peer.count_params()


@pytest.mark.parametrize("case", ["stacked", "embedding_bidirectional"])
def test_weights_move_from_numlstm_to_keras(case):
    stack, shape, data = CASES[case]
    model = Sequential([nl.Input(shape=shape)] + stack(nl))
    peer = keras_model(stack(kl), shape)
    peer.set_weights(model.get_weights())
    x = data()
    np.testing.assert_allclose(keras_predict(peer, x), model.predict(x), atol=1e-5, rtol=0)


def test_a_keras_file_loads_and_predicts_the_same(tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed; reading .keras files needs it")
    stack, shape, data = CASES["embedding_bidirectional"]
    peer = keras_model(stack(kl), shape)
    peer.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy",
                 metrics=["accuracy"])
    path = tmp_path / "model.keras"
    peer.save(path)
    model = load_model(path)
    x = data()
    np.testing.assert_allclose(model.predict(x), keras_predict(peer, x), atol=1e-5, rtol=0)
    assert model.loss == "binary_crossentropy" and model.metrics_names == ["loss", "accuracy"]
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    model.fit(x, np.arange(9) % 2, epochs=1, verbose=0)  # compiled from the file: ready to train


def test_a_keras_file_of_stacked_float_layers(tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed; reading .keras files needs it")
    stack, shape, data = CASES["stacked_gru"]
    peer = keras_model(stack(kl), shape)
    path = tmp_path / "gru.keras"
    peer.save(path)
    model = load_model(path)
    x = data()
    np.testing.assert_allclose(model.predict(x), keras_predict(peer, x), atol=1e-5, rtol=0)
    assert model._compiled is None  # Keras saved no compile settings


def test_a_keras_file_with_dropout_layers_loads_and_predicts_the_same(tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed; reading .keras files needs it")
    peer = keras_model([kl.Dropout(0.1), kl.LSTM(3, return_sequences=True), kl.Dropout(0.2), kl.LSTM(3),
                        kl.Dropout(0.3), kl.Dense(1)], (T, F))
    peer.save(tmp_path / "dropout.keras")
    model = load_model(tmp_path / "dropout.keras")
    assert [type(layer).__name__ for layer in model.layers].count("Dropout") == 3
    np.testing.assert_allclose(model._plan_.drop, [[0.1, 0, 1], [0.2, 0, 1], [0.3, 0, 0]], rtol=1e-6)
    x = np.random.default_rng(2).standard_normal((9, T, F)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), keras_predict(peer, x), atol=1e-5, rtol=0)


def test_adam_training_follows_keras():
    """One epoch of Adam at batch size 1 from the same weights: the same weights after it."""
    stack, shape, data = CASES["lstm"]
    peer = keras_model(stack(kl), shape)
    x = data()
    y = np.random.default_rng(3).standard_normal((9, 2)).astype("float32")
    model = Sequential([nl.Input(shape=shape)] + stack(nl))
    model.set_weights(peer.get_weights())
    peer.compile(optimizer="adam", loss="mean_squared_error")
    model.compile(optimizer="adam", loss="mean_squared_error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer_history = peer.fit(x, y, epochs=2, batch_size=1, shuffle=False, verbose=0)
    history = model.fit(x, y, epochs=2, batch_size=1, shuffle=False, verbose=0)
    for ours, theirs in zip(model.get_weights(), peer.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(history.history["loss"], peer_history.history["loss"], rtol=1e-4)
