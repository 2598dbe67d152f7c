"""numlstm.keras without Keras: the tutorial programs with only the imports changed,
fit/predict/evaluate/History/callbacks, weights in Keras' order, model files, and
the message of every refused layer, argument and tutorial mistake.

Comparisons with Keras itself are in test_keras_peer.py.
"""

import logging

import numpy as np
import pytest

from numlstm import datasets
from numlstm.keras import callbacks, layers, optimizers, utils
from numlstm.keras.callbacks import EarlyStopping
from numlstm.keras.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Input,
                                  TextVectorization)
from numlstm.keras.models import Sequential, load_model


def windows(series, look_back):
    X = np.stack([series[i:i + look_back] for i in range(len(series) - look_back)])
    return X, series[look_back:]


def test_population_tutorial_runs_with_the_imports_changed(caplog):
    # The Keras tutorial, as written, except for its two import lines.
    from numlstm.keras.layers import Dense, LSTM
    from numlstm.keras.models import Sequential

    dataset = datasets.load("us_population")["population"].values.astype("float32")
    dataset = (dataset - dataset.min()) / (dataset.max() - dataset.min())
    train_size = int(len(dataset) * 0.67)
    train, test = dataset[0:train_size], dataset[train_size:len(dataset)]
    look_back = 1
    trainX, trainY = windows(train, look_back)
    testX, testY = windows(test, look_back)
    trainX = np.reshape(trainX, (trainX.shape[0], trainX.shape[1], 1))
    testX = np.reshape(testX, (testX.shape[0], testX.shape[1], 1))

    model = Sequential()
    model.add(LSTM(50, input_shape=(look_back, 1)))
    model.add(Dense(1))
    model.compile(loss='mean_squared_error', optimizer='adam')
    with caplog.at_level(logging.INFO, logger="numlstm.keras"):
        history = model.fit(trainX, trainY, epochs=100, batch_size=1, verbose=2)

    trainPredict = model.predict(trainX)
    testPredict = model.predict(testX)
    assert trainPredict.shape == (len(trainX), 1) and testPredict.dtype == np.float32
    assert len(history.history["loss"]) == 100 and history.epoch == list(range(100))
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    assert np.sqrt(np.mean((testPredict[:, 0] - testY) ** 2)) < 0.05
    assert "Epoch 100/100" in caplog.text and "loss: " in caplog.text


SENTENCES = ["the film was great", "a great cast and a fine plot", "i loved every minute", "what a fine film",
             "the film was awful", "a dull cast and a thin plot", "i hated every minute", "what an awful film",
             "great acting and a great story", "awful acting and a dull story", "loved it", "hated it"]
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0])


def test_sentence_classifier_tutorial_runs_with_the_imports_changed():
    from numlstm.keras.layers import Dense, Embedding, LSTM, TextVectorization
    from numlstm.keras.models import Sequential

    vectorize_layer = TextVectorization(max_tokens=1000, output_mode='int', output_sequence_length=8)
    vectorize_layer.adapt(SENTENCES)
    X = vectorize_layer(SENTENCES)
    vocab_size = len(vectorize_layer.get_vocabulary())

    model = Sequential()
    model.add(Embedding(input_dim=vocab_size, output_dim=16, mask_zero=True))
    model.add(LSTM(128))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
    history = model.fit(X, LABELS, epochs=30, batch_size=2, verbose=0)

    assert set(history.history) == {"loss", "accuracy"}
    assert history.history["accuracy"][-1] == 1.0
    probabilities = model.predict(vectorize_layer(["a great film", "an awful film"]))
    assert probabilities.shape == (2, 1) and probabilities[0, 0] > 0.5 > probabilities[1, 0]
    loss, accuracy = model.evaluate(X, LABELS, verbose=0)
    assert accuracy == 1.0 and loss < 0.3


def test_text_vectorization_as_the_first_layer_reads_strings():
    vectorizer = TextVectorization(split="character", output_sequence_length=12)
    vectorizer.adapt(SENTENCES)
    model = Sequential([vectorizer, Embedding(vectorizer.vocabulary_size(), 4, mask_zero=True), GRU(3),
                        Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(np.array(SENTENCES), LABELS, epochs=1, verbose=0)
    assert model.predict(["Great!"]).shape == (1, 1)


def test_text_vectorization_matches_keras_conventions():
    layer = TextVectorization(output_sequence_length=5)
    layer.adapt(["The cat sat.", "the CAT ran", "a dog"])
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat", "ran", "a", "dog"]
    ids = layer(["the dog sat on the mat"])  # unknown words 1; padded and truncated at the end
    np.testing.assert_array_equal(ids, [[2, 7, 4, 1, 2]])
    np.testing.assert_array_equal(layer(["cat"]), [[3, 0, 0, 0, 0]])
    small = TextVectorization(max_tokens=4)
    small.adapt(["b a a b c"])
    assert small.get_vocabulary() == ["", "[UNK]", "b", "a"]
    assert layer.__class__(split="character")._tokens("Ab c") == ["a", "b", " ", "c"]


def test_fit_history_validation_metrics_and_evaluate():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5, 2)).astype("float32")
    y = X.sum(axis=(1, 2))
    model = Sequential([Input(shape=(5, 2)), LSTM(8), Dense(1)])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    history = model.fit(X, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, shuffle=False)
    assert list(history.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert all(len(v) == 3 for v in history.history.values())
    assert model.history is history
    loss, mae = model.evaluate(X[30:], y[30:])
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert mae == pytest.approx(history.history["val_mae"][-1], rel=1e-5)
    assert model.evaluate(X, y, return_dict=True).keys() == {"loss", "mae"}
    other = model.fit(X, y, epochs=1, validation_data=(X[:4], y[:4]), verbose=0)
    assert "val_loss" in other.history


def test_validation_split_takes_the_last_samples_before_shuffling():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3, 1)).astype("float32")
    y = rng.standard_normal(10).astype("float32")
    model = Sequential([LSTM(2, input_shape=(3, 1)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(X, y, epochs=1, validation_split=0.3, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(X[7:], y[7:]), rel=1e-5)


def test_early_stopping_keras_semantics():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 4, 1)).astype("float32")
    y = rng.standard_normal(30).astype("float32")  # noise: the validation loss soon stops improving
    model = Sequential([LSTM(16, input_shape=(4, 1)), Dense(1)])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse")
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(X, y, epochs=200, validation_split=0.3, callbacks=[stop], verbose=0)
    epochs = len(history.history["loss"])
    assert epochs < 200 and stop.stopped_epoch == epochs - 1
    best = int(np.argmin(history.history["val_loss"]))
    assert stop.best_epoch == best
    assert model.evaluate(X[21:], y[21:]) == pytest.approx(history.history["val_loss"][best], rel=1e-5)

    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_loss', which this fit does not log.*"
                                         "validation_split"):
        model.fit(X, y, epochs=2, callbacks=[EarlyStopping()], verbose=0)


def test_a_custom_callback_sees_each_epoch_and_can_stop():
    class Stopper(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    X = np.zeros((4, 2, 1), "float32")
    model = Sequential([LSTM(2, input_shape=(2, 1)), Dense(1)])
    model.compile(optimizer="adam", loss="mae")
    hook = Stopper()
    model.fit(X, np.zeros(4), epochs=5, callbacks=[hook], verbose=0)
    assert hook.seen == [(0, ["loss"]), (1, ["loss"])]


def test_verbose_lines_go_to_stdout_unless_logging_is_configured(caplog, capsys, monkeypatch):
    model = Sequential([LSTM(2, input_shape=(2, 1)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    with caplog.at_level(logging.INFO, logger="numlstm.keras"):
        model.fit(np.zeros((4, 2, 1)), np.zeros(4), epochs=2, verbose=1)
    assert "Epoch 2/2" in caplog.text
    import numlstm.keras.models as models

    monkeypatch.setattr(models.log, "hasHandlers", lambda: False)
    model.fit(np.zeros((4, 2, 1)), np.zeros(4), epochs=1, verbose=2)
    assert "Epoch 1/1\n1/1 - 0s - loss: " in capsys.readouterr().out


def test_weights_in_keras_order_and_shapes():
    model = Sequential([Input(shape=(7,)), Embedding(20, 4), Bidirectional(GRU(3, return_sequences=True)),
                        Bidirectional(GRU(2)), Dense(3, activation="softmax")])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(20, 4), (4, 9), (3, 9), (2, 9), (4, 9), (3, 9), (2, 9),
                      (6, 6), (2, 6), (2, 6), (6, 6), (2, 6), (2, 6), (4, 3), (3,)]
    assert model.count_params() == sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(3)
    new = [rng.standard_normal(s).astype("float32") for s in shapes]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("bidirectional (Bidirectional)" in line and "(None, 7, 6)" in line for line in lines)
    assert f"Total params: {model.count_params():,}" in lines


def test_embedding_without_mask_zero_reads_token_zero_as_a_word():
    model = Sequential([Embedding(5, 3), LSTM(2), Dense(1)])
    weights = model.get_weights()
    assert weights[0].shape == (5, 3)
    x = np.array([[0, 0, 1, 2], [1, 2, 0, 0]])
    E = np.zeros((5, 3), "float32")
    E[0] = 1.0  # token 0 is a word here: changing its row changes the output
    model.set_weights([E] + weights[1:])
    first = model.predict(x)
    E[0] = -1.0
    model.set_weights([E] + weights[1:])
    assert not np.allclose(first, model.predict(x))


def test_go_backwards_reads_the_sequence_reversed():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 2)).astype("float32")
    back = Sequential([LSTM(4, go_backwards=True, input_shape=(5, 2)), Dense(1)])
    forward = Sequential([LSTM(4, input_shape=(5, 2)), Dense(1)])
    forward.set_weights(back.get_weights())
    np.testing.assert_allclose(back.predict(x), forward.predict(x[:, ::-1]), rtol=1e-6)


def test_dropout_arguments_train_and_predictions_are_deterministic():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((16, 4, 1)).astype("float32")
    model = Sequential([LSTM(4, dropout=0.2, recurrent_dropout=0.2, return_sequences=True, input_shape=(4, 1)),
                        LSTM(4, dropout=0.2, recurrent_dropout=0.2), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, X[:, -1, 0], epochs=2, verbose=0)
    np.testing.assert_array_equal(model.predict(X), model.predict(X))


@pytest.mark.parametrize("suffix", [".nc"])
def test_save_and_load_model_round_trip(tmp_path, suffix):
    model = Sequential([Input(shape=(6,)), Embedding(10, 3, mask_zero=True), Bidirectional(LSTM(4)),
                        Dense(2, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.random.default_rng(6).integers(0, 10, (8, 6))
    model.fit(x, np.arange(8) % 2, epochs=2, verbose=0)
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert isinstance(loaded.optimizer, optimizers.SGD) and loaded.optimizer.momentum == 0.9
    assert loaded.metrics_names == ["loss", "accuracy"]
    loaded.fit(x, np.arange(8) % 2, epochs=1, verbose=0)


def test_a_damaged_model_file_is_refused_naming_the_variable(tmp_path):
    import xarray as xr

    model = Sequential([LSTM(3, input_shape=(2, 1)), Dense(1)])
    path = tmp_path / "model.nc"
    model.save(path)
    ds = xr.load_dataset(path)
    ds["weight_1"][0, 0] = np.nan
    ds.to_netcdf(tmp_path / "nan.nc", engine="scipy")
    with pytest.raises(ValueError, match="variable 'weight_1' .*recurrent_kernel of LSTM.*NaN"):
        load_model(tmp_path / "nan.nc")
    ds = xr.load_dataset(path).isel(weight_2_dim0=slice(0, 5))
    ds.to_netcdf(tmp_path / "short.nc", engine="scipy")
    with pytest.raises(ValueError, match=r"variable 'weight_2' \(bias of LSTM .*\) has shape \(5,\); expected \(12,\)"):
        load_model(tmp_path / "short.nc")


# --- what numlstm.keras refuses, and how it says so ------------------------------------------------------


def test_unsupported_keras_layers_are_refused_by_name():
    with pytest.raises(ValueError, match=r"Conv1D 'conv1d.*' is not supported by numlstm.keras\. Its network is "
                                         r"\[Input\], \[TextVectorization\], \[Embedding\], then LSTM or GRU"):
        Sequential([layers.Conv1D(64, 3), LSTM(4), Dense(1)])
    model = Sequential()
    with pytest.raises(ValueError, match="Lambda .* runs Python code inside the model"):
        model.add(layers.Lambda(lambda x: x * 2))
    with pytest.raises(AttributeError, match="has no attribute 'Frobnicate'; it has Input, TextVectorization"):
        layers.Frobnicate


def test_custom_layers_and_foreign_objects_are_refused():
    class Scale(layers.Layer):
        kind = "dense"

    with pytest.raises(ValueError, match="Scale 'scale.*' is a custom layer, which numlstm.keras cannot run"):
        Sequential([Scale()])
    with pytest.raises(TypeError, match="Sequential takes layers of numlstm.keras.layers .*got str"):
        Sequential(["lstm"])

    class FakeKerasLayer:
        pass

    FakeKerasLayer.__module__ = "keras.src.layers.rnn.lstm"
    with pytest.raises(TypeError, match="It is a Keras FakeKerasLayer: import it from numlstm.keras.layers instead"):
        Sequential([FakeKerasLayer()])


def test_dropout_layers_become_the_networks_dropout_plan():
    """Dropout before a recurrent layer: its input rate, a new mask at every step; before
    Dense: the head's input rate; consecutive ones combine; a layer's own dropout= stays
    one mask per sequence, and the rates may differ from layer to layer."""
    model = Sequential([Input(shape=(6,)), Embedding(10, 3), Dropout(0.2),
                        LSTM(4, return_sequences=True, recurrent_dropout=0.1), Dropout(0.3), Dropout(0.5),
                        LSTM(4, recurrent_dropout=0.2, return_sequences=True), LSTM(3, dropout=0.25),
                        Dropout(0.4), Dense(1)])
    np.testing.assert_allclose(model._plan_.drop, [[0.2, 0.1, 1], [0.65, 0.2, 1], [0.25, 0.0, 0], [0.4, 0, 0]])
    assert model.count_params() == 30 + 4 * 4 * (3 + 4 + 1) + 4 * 4 * (4 + 4 + 1) + 4 * 3 * (4 + 3 + 1) + 4
    two = Sequential([Bidirectional(GRU(3, return_sequences=True), input_shape=(5, 2)), Dropout(0.5),
                      Bidirectional(GRU(2)), Dense(1)])
    np.testing.assert_allclose(two._plan_.drop, [[0, 0, 0]] * 2 + [[0.5, 0, 1]] * 2 + [[0, 0, 0]])
    none = Sequential([LSTM(4, input_shape=(3, 1)), Dropout(0.0), Dense(1)])  # a no-op is fine
    assert not none._plan_.drop.any()


@pytest.mark.parametrize("cell", [LSTM, GRU])
def test_dropout_layers_train_and_are_off_in_predict(cell):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((32, 5, 2)).astype("float32")
    y = X[:, -3:, 0].sum(axis=1)

    def model(rate):
        utils.set_random_seed(0)
        m = Sequential([Input(shape=(5, 2)), Dropout(rate), cell(6, return_sequences=True), Dropout(rate), cell(5),
                        Dropout(rate), Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        return m

    dropped, plain = model(0.3), model(0.0)
    np.testing.assert_array_equal(dropped.get_weights()[0], plain.get_weights()[0])  # same start
    history = dropped.fit(X, y, epochs=3, batch_size=8, verbose=0).history
    plain.fit(X, y, epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(history["loss"]).all()
    assert not np.allclose(dropped.get_weights()[0], plain.get_weights()[0])  # the masks took part
    # prediction has dropout off: the same weights without the Dropout layers predict the same
    bare = Sequential([Input(shape=(5, 2)), cell(6, return_sequences=True), cell(5), Dense(1)])
    bare.set_weights(dropped.get_weights())
    np.testing.assert_array_equal(dropped.predict(X, verbose=0), bare.predict(X, verbose=0))
    again = model(0.3)
    again.fit(X, y, epochs=3, batch_size=8, verbose=0)
    np.testing.assert_array_equal(again.get_weights()[0], dropped.get_weights()[0])  # seeded


@pytest.mark.parametrize("stack, message", [
    (lambda: [Input(shape=(4,)), Dropout(0.2), Embedding(9, 3), LSTM(4), Dense(1)],
     r"Dropout 'dropout.*' comes before Embedding 'embedding.*': numlstm.keras applies Dropout to the inputs of a "
     r"recurrent layer or of the Dense layer"),
    (lambda: [LSTM(4, return_sequences=True, input_shape=(3, 1)), Dropout(0.2), LSTM(4, dropout=0.1), Dense(1)],
     r"comes right before LSTM 'lstm.*', which has dropout=0.1 of its own: .*not both"),
    (lambda: [LSTM(4, input_shape=(3, 1)), Dense(1), Dropout(0.5)],
     r"Dropout 'dropout.*' comes after the Dense layer, which gives the model's outputs"),
])
def test_misplaced_dropout_layers_are_refused_with_the_fix(stack, message):
    with pytest.raises(ValueError, match=message):
        Sequential(stack())


def test_dropout_noise_shape_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"Dropout\(noise_shape=\(None, 1, 4\)\) is not supported.*"
                                         r"LSTM\(units, dropout=0.2\)"):
        Dropout(0.2, noise_shape=(None, 1, 4))


@pytest.mark.parametrize("stack, message", [
    (lambda: [LSTM(4, input_shape=(3, 1)), Dense(8, activation="relu")],
     r"Dense\(activation='relu'\) is not supported: numlstm's network ends in one Dense layer"),
    (lambda: [LSTM(4, input_shape=(3, 1)), Dense(8), Dense(1)],
     r"Dense 'dense.*' cannot come after Dense 'dense.*': numlstm's network ends in one Dense layer; hidden Dense"),
    (lambda: [LSTM(4, input_shape=(3, 1)), LSTM(4), Dense(1)],
     r"follows LSTM 'lstm.*', which has return_sequences=False .* set return_sequences=True on every recurrent "
     r"layer but the last"),
    (lambda: [LSTM(4, return_sequences=True, input_shape=(3, 1)), Dense(1)],
     r"is the last recurrent layer and has return_sequences=True; .* set return_sequences=False"),
    (lambda: [LSTM(4, return_sequences=True, input_shape=(3, 1)), GRU(4), Dense(1)],
     r"GRU 'gru.*' is GRU but LSTM 'lstm.*' is LSTM: .* use LSTM or GRU throughout"),
    (lambda: [Bidirectional(LSTM(4, return_sequences=True), input_shape=(3, 1)), LSTM(4), Dense(1)],
     r"wrapped in Bidirectional, or none"),
    (lambda: [LSTM(4, go_backwards=True, return_sequences=True, input_shape=(3, 1)), LSTM(4), Dense(1)],
     r"go_backwards=True in a stack of 2 recurrent layers"),
    (lambda: [LSTM(4, input_shape=(3, 1)), Embedding(10, 2)],
     r"Embedding 'embedding.*' cannot come after LSTM 'lstm.*': numlstm.keras builds"),
    (lambda: [LSTM(4, input_shape=(3,)), Dense(1)],
     r"the input shape \(3,\) has 1 entry; LSTM 'lstm.*' reads \(time, features\) per sample: e.g. "
     r"input_shape=\(look_back, 1\)"),
])
def test_stacks_the_network_cannot_express_are_refused(stack, message):
    with pytest.raises(ValueError, match=message):
        Sequential(stack())


@pytest.mark.parametrize("make, error, message", [
    (lambda: LSTM(4, activation="relu"), ValueError, r"LSTM\(activation='relu'\) is not supported; numlstm's LSTM "
                                                      r"cell uses activation='tanh'"),
    (lambda: LSTM(4, stateful=True), ValueError, r"LSTM\(stateful=True\) is not supported"),
    (lambda: LSTM(4, return_state=True), ValueError, r"LSTM\(return_state=True\) is not supported"),
    (lambda: LSTM(4, kernel_regularizer="l2"), ValueError, r"LSTM\(kernel_regularizer=...\) is not supported"),
    (lambda: LSTM(4, kernel_initializer="he_normal"), ValueError, r"numlstm initialises as Keras' defaults"),
    (lambda: LSTM(4, implementation=2), TypeError, r"LSTM got the argument\(s\) \['implementation'\]"),
    (lambda: GRU(4, reset_after=False), ValueError, r"GRU\(reset_after=False\) is not supported"),
    (lambda: LSTM(4, dropout=1.0), ValueError, r"LSTM dropout"),
    (lambda: Bidirectional(LSTM(4), merge_mode="sum"), ValueError, r"merge_mode='sum'\) is not supported"),
    (lambda: Bidirectional(Dense(4)), TypeError, r"Bidirectional wraps an LSTM or GRU layer"),
    (lambda: Dense(1, use_bias=False), ValueError, r"Dense\(use_bias=False\) is not supported"),
    (lambda: Embedding(10, 4, embeddings_initializer="normal"), ValueError, r"embeddings_initializer='normal'"),
    (lambda: TextVectorization(output_mode="tf_idf"), ValueError, r"output_mode='tf_idf'\) is not supported"),
    (lambda: TextVectorization(split="punctuation"), ValueError, r"split='punctuation'\) is not supported"),
    (lambda: Input(), TypeError, r"Input needs shape="),
    (lambda: optimizers.Adam(amsgrad=True), ValueError, r"amsgrad=True\) is not supported"),
])
def test_unsupported_layer_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_tutorial_mistakes_get_the_fix():
    model = Sequential([LSTM(4), Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
    X = np.zeros((10, 3), "float32")
    with pytest.raises(ValueError, match=r"x has 2 dimension\(s\) \(shape \(10, 3\)\) but LSTM 'lstm.*' reads 3-D "
                                         r"input \(samples, time, features\)\. Reshape it: x = "
                                         r"x.reshape\(\(x.shape\[0\], x.shape\[1\], 1\)\)"):
        model.fit(X, np.zeros(10))
    built = Sequential([LSTM(4, input_shape=(3, 1)), Dense(1)])
    built.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"x has 2 feature\(s\) per time step .* expects 1"):
        built.predict(np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match=r"x has 4 time steps .* input_shape is \(3, 1\)"):
        built.predict(np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match=r"y has 9 samples but x has 10"):
        built.fit(np.zeros((10, 3, 1)), np.zeros(9))
    with pytest.raises(ValueError, match=r"call model.compile\(optimizer=..., loss=...\) before fit"):
        Sequential([LSTM(4, input_shape=(3, 1)), Dense(1)]).fit(np.zeros((2, 3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match=r"the model ends with LSTM 'lstm.*'; add a Dense layer"):
        Sequential([LSTM(4, input_shape=(3, 1))]).compile(optimizer="adam", loss="mse")


def test_compile_refuses_what_numlstm_does_not_have():
    model = Sequential([LSTM(4, input_shape=(3, 1)), Dense(1)])
    with pytest.raises(ValueError, match=r"optimizer 'rmsprop' is not supported; use 'adam', 'sgd'.*RMSprop"):
        model.compile(loss="mse")  # Keras' default optimizer
    with pytest.raises(ValueError, match=r"loss 'poisson' is not supported; numlstm.keras has"):
        model.compile(optimizer="adam", loss="poisson")
    with pytest.raises(TypeError, match=r"custom loss functions are not supported"):
        model.compile(optimizer="adam", loss=lambda y, p: (y - p) ** 2)
    with pytest.raises(ValueError, match=r"loss='binary_crossentropy' needs the last Dense layer to have "
                                         r"activation='sigmoid', but Dense 'dense.*' has activation='linear'; with "
                                         r"activation='linear' use loss='mse', 'mae' or 'huber'"):
        model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"metric 'accuracy' needs a classification loss"):
        model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"metric 'auc' is not supported"):
        model.compile(optimizer="adam", loss="mse", metrics=["auc"])
    classifier = Sequential([LSTM(4, input_shape=(3, 1)), Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match=r"activation='sigmoid' use loss='binary_crossentropy'"):
        classifier.compile(optimizer="adam", loss="mse")


def test_bad_token_ids_and_labels_are_refused():
    model = Sequential([Embedding(5, 2, mask_zero=True), LSTM(2), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"x holds the token id 7, outside 0..4 of Embedding 'embedding.*' "
                                         r"\(input_dim=5\); make input_dim the vocabulary size"):
        model.predict(np.array([[1, 7]]))
    with pytest.raises(TypeError, match=r"x must hold integer token ids .* TextVectorization"):
        model.predict(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=r"y holds values outside \[0, 1\]; binary_crossentropy needs labels 0/1"):
        model.fit(np.array([[1, 2]]), np.array([3]), verbose=0)
    with pytest.raises(ValueError, match=r"TextVectorization 'text_vectorization.*' has no vocabulary yet; call "
                                         r"layer.adapt\(texts\)"):
        TextVectorization()(["a b"])


def test_load_model_refuses_other_files(tmp_path):
    with pytest.raises(ValueError, match=r"is a Keras 2 HDF5 model file, which numlstm.keras does not read"):
        load_model(tmp_path / "model.h5")
    with pytest.raises(ValueError, match=r"custom_objects is not supported"):
        load_model(tmp_path / "model.keras", custom_objects={"Scale": object})
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"is not a .keras file \(a zip archive written by Keras 3\)"):
        load_model(tmp_path / "bad.keras")
    with pytest.raises(ValueError, match=r"numlstm.keras saves models as netCDF: use a path ending in .nc"):
        Sequential([LSTM(2, input_shape=(2, 1)), Dense(1)]).save(tmp_path / "model.keras")


def test_keras_files_with_layers_numlstm_lacks_are_refused_without_running_them(tmp_path):
    import json
    import zipfile

    def keras_file(config, name):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("model.weights.h5", b"")
        return path

    lam = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
           "config": {"name": "lambda", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAA=="}}}}
    sequential = {"class_name": "Sequential", "config": {"name": "s", "layers": [lam]}}
    with pytest.raises(ValueError, match=r"layer 0 \('lambda'\) is a 'Lambda' layer, which numlstm.keras does "
                                         r"not support"):
        load_model(keras_file(sequential, "lambda.keras"))
    custom = dict(lam, class_name="Scale", registered_name="my_package>Scale", module="my_package")
    with pytest.raises(ValueError, match=r"is the custom layer 'my_package>Scale', which numlstm.keras cannot run"):
        load_model(keras_file({"class_name": "Sequential", "config": {"layers": [custom]}}, "custom.keras"))
    with pytest.raises(ValueError, match=r"holds a 'Functional' model; numlstm.keras reads Sequential models only"):
        load_model(keras_file({"class_name": "Functional", "config": {}}, "functional.keras"))


def test_keras_utils_and_build(monkeypatch):
    from numlstm.keras import utils

    monkeypatch.setitem(utils._state, "sequence", None)  # restored after the test: later models unseeded again
    np.testing.assert_array_equal(utils.pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post"), [[2, 3], [4, 0]])
    assert utils.to_categorical(np.array([1, 0]), num_classes=3).tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match=r"to_categorical got the class id 3 but num_classes=2"):
        utils.to_categorical([3], num_classes=2)
    model = Sequential([LSTM(3), Dense(1)])
    with pytest.raises(ValueError, match=r"build needs input_shape=\(batch, time, features\)"):
        model.build((None, 5))
    model.build((None, 5, 2))
    assert [w.shape for w in model.get_weights()][0] == (2, 12)
    utils.set_random_seed(7)
    first = Sequential([LSTM(3, input_shape=(2, 1)), Dense(1)]).get_weights()
    utils.set_random_seed(7)
    again = Sequential([LSTM(3, input_shape=(2, 1)), Dense(1)]).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_importing_numlstm_keras_leaves_xarray_out():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, numlstm.keras; "
            "print(sorted(m for m in ('xarray', 'pandas', 'keras', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == "[]"
