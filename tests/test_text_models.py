"""Estimators over token sequences (embedding_dim), with dropout and bidirectional
layers: learning a tiny sentence task end to end, reproducibility, bad input and the
parameter protocol. float32, int64 tokens, LSTM cells only (one compiled fit)."""

import numpy as np
import pytest

from numlstm import LSTMClassifier, LSTMRegressor
from numlstm.core.training import predict as raw_predict
from numlstm.text import Vocabulary, pad

FILL = "the movie was really quite a film plot and acting very so".split()
POS, NEG = ["good", "great"], ["bad", "awful"]
MAXLEN = 8


def _sentences(n, seed):
    """Filler words with one sentiment word at a random place; labels alternate."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words = list(rng.choice(FILL, size=rng.integers(2, 7)))
        positive = i % 2 == 1
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(POS if positive else NEG)))
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def data():
    texts, y = _sentences(140, 0)
    vocab = Vocabulary.fit(texts[:100])
    X = pad(vocab.encode(texts), maxlen=MAXLEN)
    assert X.dtype == np.int64 and (X[:, 0] == 0).any()  # pre-padded
    return vocab, X[:100], y[:100], X[100:], y[100:]


def _clf(**kw):
    params = dict(units=8, embedding_dim=8, epochs=3, batch_size=16, learning_rate=0.02, random_state=0)
    params.update(kw)
    return LSTMClassifier(**params)


@pytest.fixture(scope="module")
def fitted(data):
    vocab, X, y, _, _ = data
    return _clf(epochs=30).fit(X, y)


def test_classifier_learns_sentences(data, fitted):
    vocab, X, y, X_test, y_test = data
    assert (fitted.predict(X) == y).mean() > 0.9
    assert (fitted.predict(X_test) == y_test).mean() > 0.9
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert fitted.classes_.tolist() == ["neg", "pos"]
    assert fitted.n_features_in_ == 1 and fitted.vocabulary_size_ == len(vocab)
    weights = fitted.get_weights()
    assert weights["embedding"].shape == (len(vocab), 8) and weights["embedding"].dtype == np.float32
    # new text through the same vocabulary, unknown words included, padded at the end
    new = pad(vocab.encode(["a truly great film", "an awful awful plot"]), maxlen=6, padding="post")
    assert fitted.predict(new).tolist() == ["pos", "neg"]


def test_bidirectional_with_dropout_learns(data):
    vocab, X, y, X_test, y_test = data
    clf = _clf(epochs=30, bidirectional=True, dropout=0.2, recurrent_dropout=0.2).fit(X, y)
    assert (clf.predict(X_test) == y_test).mean() > 0.9
    layer = clf.get_weights()["layers"][0]
    assert layer["reverse"]["U"].shape == layer["U"].shape == (8, 32)
    assert clf.network_.head[0] == 16


def test_same_random_state_same_predictions(data):
    _, X, y, X_test, _ = data
    a, b = _clf().fit(X, y), _clf().fit(X, y)
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))
    c = _clf(random_state=1).fit(X, y)
    assert not np.array_equal(a.network_.params, c.network_.params)


def test_dropout_fits_reproducible_and_different(data):
    _, X, y, X_test, _ = data
    kw = dict(dropout=0.3, recurrent_dropout=0.3)
    a, b = _clf(**kw).fit(X, y), _clf(**kw).fit(X, y)
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    plain = _clf().fit(X, y)
    assert not np.allclose(a.network_.params, plain.network_.params)
    for other in (dict(dropout=0.3), dict(recurrent_dropout=0.3)):
        assert not np.array_equal(_clf(**other).fit(X, y).network_.params, a.network_.params), other
    # dropout is off in predict: deterministic, the plain forward pass
    p = a.predict_proba(X_test)
    np.testing.assert_array_equal(p, a.predict_proba(X_test))
    raw = raw_predict(a.network_, X_test)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-raw[:, 0].astype(np.float64))), rtol=1e-6)
    # Monte-Carlo dropout (on on purpose) is another, seeded, prediction
    mc = raw_predict(a.network_, X_test, drop=(0.3, 0.3), seed=4)
    np.testing.assert_array_equal(mc, raw_predict(a.network_, X_test, drop=(0.3, 0.3), seed=4))
    assert not np.allclose(mc, raw)


def test_regressor_on_tokens_and_vocabulary_size(data):
    vocab, X, _, X_test, _ = data
    good = np.isin(X, vocab.encode(["good great"])[0]).sum(axis=1).astype(np.float32)
    reg = LSTMRegressor(units=4, embedding_dim=4, epochs=2, vocabulary_size=len(vocab) + 5,
                        random_state=0).fit(X, good)
    assert reg.vocabulary_size_ == len(vocab) + 5 and reg.network_.vocabulary == len(vocab) + 5
    out = reg.predict(X_test)
    assert out.shape == (len(X_test),) and out.dtype == np.float32 and np.isfinite(out).all()
    # without vocabulary_size the largest id in the data, plus one
    inferred = LSTMRegressor(units=4, embedding_dim=4, epochs=1, random_state=0).fit(X, good)
    assert inferred.vocabulary_size_ == int(X.max()) + 1


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("Est", [LSTMClassifier, LSTMRegressor])
class TestBadInput:
    def _y(self, Est, n):
        return np.arange(n) % 2 if Est is LSTMClassifier else np.zeros(n)

    def _fit(self, Est, X, **kw):
        params = dict(units=2, epochs=1, embedding_dim=4)
        params.update(kw)
        return Est(**params).fit(X, self._y(Est, len(X)))

    def test_bad_tokens(self, Est, data):
        X = data[1]
        with pytest.raises(TypeError, match=r"X must hold integer token ids for a model with embedding_dim, got "
                                            r"dtype float64.*astype\(int\)"):
            self._fit(Est, X.astype(float))
        with pytest.raises(TypeError, match=r"X must hold integer token ids.*<U.*numlstm.text.Vocabulary"):
            self._fit(Est, np.array([["good", "film"], ["bad", "film"]]))
        with pytest.raises(TypeError, match=r"X could not be read as an array of token ids.*numlstm.text.pad"):
            self._fit(Est, [[1, 2, 3], [4, 5]])
        neg = X.copy()
        neg[3, 4] = -1
        with pytest.raises(ValueError, match=r"X holds the negative token id -1; ids are 0 \(padding\)"):
            self._fit(Est, neg)
        with pytest.raises(ValueError, match=r"X holds the token id \d+ but the embedding has 5 rows \(ids 0 to 4\)"
                                             r".*vocabulary_size"):
            self._fit(Est, X, vocabulary_size=5)
        with pytest.raises(ValueError, match=r"X has 3 dimension\(s\); token sequences are \(samples, time\)"):
            self._fit(Est, X[:, :, None])
        with pytest.raises(ValueError, match=r"X has 1 dimension"):
            self._fit(Est, X[0])
        with pytest.raises(ValueError, match=r"X has 4 samples but y has 5"):
            Est(units=2, epochs=1, embedding_dim=4).fit(X[:4], self._y(Est, 5))

    @pytest.mark.parametrize("name,value,err,message", [
        ("dropout", 1.0, ValueError, r"dropout must be >= 0 and < 1, got 1\.0"),
        ("dropout", -0.1, ValueError, r"dropout must be >= 0 and < 1, got -0\.1"),
        ("dropout", float("nan"), ValueError, r"dropout must be >= 0 and < 1, got nan"),
        ("dropout", "a", TypeError, r"dropout must be a real number, got str 'a'"),
        ("dropout", True, TypeError, r"dropout must be a real number, got bool"),
        ("dropout", None, TypeError, r"dropout must be a real number, got NoneType"),
        ("recurrent_dropout", 1.0, ValueError, r"recurrent_dropout must be >= 0 and < 1, got 1\.0"),
        ("recurrent_dropout", [0.1], TypeError, r"recurrent_dropout must be a real number"),
        ("embedding_dim", 0, ValueError, r"embedding_dim must be an integer >= 1, got 0"),
        ("embedding_dim", 2.5, TypeError, r"embedding_dim must be an integer >= 1, got float 2\.5"),
        ("vocabulary_size", 1, ValueError, r"vocabulary_size must be an integer >= 2, got 1"),
        ("vocabulary_size", "30", TypeError, r"vocabulary_size must be an integer >= 2, got str"),
        ("bidirectional", "yes", TypeError, r"bidirectional must be True or False, got 'yes'"),
        ("bidirectional", 1, TypeError, r"bidirectional must be True or False, got 1"),
    ])
    def test_bad_parameters(self, Est, data, name, value, err, message):
        with pytest.raises(err, match=message):
            self._fit(Est, data[1], **{name: value})

    def test_vocabulary_size_needs_embedding_dim(self, Est, data):
        X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
        with pytest.raises(ValueError, match=r"vocabulary_size is set but embedding_dim is None.*set embedding_dim"):
            self._fit(Est, X, embedding_dim=None, vocabulary_size=20)

    def test_lbfgs_rejects_dropout_and_embedding(self, Est, data):
        X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
        for kw in (dict(dropout=0.2), dict(recurrent_dropout=0.2)):
            with pytest.raises(ValueError, match=r"optimizer='lbfgs' works on float sequences without dropout"):
                self._fit(Est, X, embedding_dim=None, optimizer="lbfgs", **kw)
        with pytest.raises(ValueError, match=r"optimizer='lbfgs'.*with dropout or an embedding layer"):
            self._fit(Est, data[1], optimizer="lbfgs")


def test_bad_tokens_at_predict(data, fitted):
    vocab, _, _, X_test, _ = data
    V = len(vocab)
    big = X_test.copy()
    big[0, -1] = V
    with pytest.raises(ValueError, match=rf"X holds the token id {V} but the embedding has {V} rows "
                                         rf"\(ids 0 to {V - 1}\); encode new text with the vocabulary used at fit"):
        fitted.predict(big)
    with pytest.raises(ValueError, match=r"X holds the negative token id"):
        fitted.predict_proba(X_test - 1)
    with pytest.raises(TypeError, match=r"X must hold integer token ids.*got dtype float32"):
        fitted.predict(X_test.astype(np.float32))
    with pytest.raises(ValueError, match=r"X has 3 dimension"):
        fitted.predict(X_test[:, :, None])
    # longer or shorter padded arrays are fine: padding is skipped
    wider = np.concatenate([np.zeros((len(X_test), 3), np.int64), X_test], axis=1)
    np.testing.assert_allclose(fitted.predict_proba(wider), fitted.predict_proba(X_test), rtol=1e-5, atol=1e-6)


# --- the parameter protocol -------------------------------------------------------------------

NEW = dict(dropout=0.25, recurrent_dropout=0.1, bidirectional=True, embedding_dim=16, vocabulary_size=100)


@pytest.mark.parametrize("Est", [LSTMClassifier, LSTMRegressor])
def test_get_set_params_include_new_parameters(Est):
    default = Est()
    params = default.get_params()
    assert {k: params[k] for k in NEW} == dict(dropout=0.0, recurrent_dropout=0.0, bidirectional=False,
                                               embedding_dim=None, vocabulary_size=None)
    model = Est(units=4, **NEW)
    params = model.get_params()
    assert {k: params[k] for k in NEW} == NEW
    clone = type(model)(**model.get_params())
    assert clone.get_params() == params
    assert default.set_params(**NEW) is default and default.get_params() == dict(Est().get_params(), **NEW)
    text = repr(model)
    for key, value in NEW.items():
        assert f"{key}={value!r}" in text
    with pytest.raises(ValueError, match=r"'recurrent_droput' is not a parameter"):
        model.set_params(recurrent_droput=0.1)


def test_clone_of_fitted_token_model_refits_identically(data, fitted):
    _, X, y, X_test, _ = data
    clone = type(fitted)(**fitted.get_params())
    assert not hasattr(clone, "network_")
    clone.fit(X, y)
    np.testing.assert_array_equal(clone.predict_proba(X_test), fitted.predict_proba(X_test))
