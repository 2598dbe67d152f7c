"""Every public entry point rejects bad input with a message that names the problem and the fix."""

import numpy as np
import pytest

import numlstm
from numlstm import LSTMClassifier, LSTMRegressor

f64 = np.float64


def layer(B=2, T=3, I=2, H=4, dtype=f64):
    return (np.zeros((B, T, I), dtype), np.zeros((I, 4 * H), dtype), np.zeros((H, 4 * H), dtype),
            np.zeros(4 * H, dtype))


@pytest.mark.parametrize("fn", [numlstm.lstm_forward,
                                lambda x, W, U, b, **k: numlstm.lstm_backward(x, W, U, b, np.zeros((2, 3, 4)), **k)])
class TestFunctional:
    def test_wrong_ndim(self, fn):
        x, W, U, b = layer()
        with pytest.raises(ValueError, match=r"x has 2 dimension\(s\); expected 3.*x\[:, :, None\]"):
            fn(x[:, :, 0], W, U, b)
        with pytest.raises(ValueError, match=r"x has 1 dimension.*x\[None, :, None\]"):
            fn(x[0, :, 0], W, U, b)

    def test_mixed_dtypes(self, fn):
        x, W, U, b = layer()
        with pytest.raises(TypeError, match=r"W has dtype float32 but the other arrays are float64.*astype"):
            fn(x, W.astype(np.float32), U, b)

    def test_non_numeric_and_integer(self, fn):
        x, W, U, b = layer()
        with pytest.raises(TypeError, match=r"x must be a float32 or float64 array, got non-numeric"):
            fn(np.full(x.shape, "a"), W, U, b)
        with pytest.raises(TypeError, match=r"x must be a float32 or float64 array, got int64"):
            fn(x.astype(np.int64), W, U, b)

    def test_wrong_weight_shapes(self, fn):
        x, W, U, b = layer()
        with pytest.raises(ValueError, match=r"W has shape \(3, 16\); expected \(2, 16\)"):
            fn(x, np.zeros((3, 16)), U, b)
        with pytest.raises(ValueError, match=r"U has shape \(4, 12\); expected \(hidden, 4\*hidden\)"):
            fn(x, W, np.zeros((4, 12)), b)
        with pytest.raises(ValueError, match=r"b has shape \(15,\); expected \(16\)"):
            fn(x, W, U, np.zeros(15))
        with pytest.raises(ValueError, match=r"h0 has shape \(3, 4\); expected \(2, 4\)"):
            fn(x, W, U, b, h0=np.zeros((3, 4)))

    def test_empty(self, fn):
        x, W, U, b = layer()
        with pytest.raises(ValueError, match=r"x is empty"):
            fn(x[:, :0], W, U, b)

    def test_unknown_device(self, fn):
        x, W, U, b = layer()
        with pytest.raises(ValueError, match=r"device must be one of .*got 'tpu'"):
            fn(x, W, U, b, device="tpu")

    def test_cuda_without_a_gpu_says_why(self, fn):
        from numlstm.runtime import cuda_status

        usable, reason = cuda_status()
        if usable:
            pytest.skip(f"a CUDA device is usable here ({reason}); the CUDA tests cover device='cuda'")
        x, W, U, b = layer()
        with pytest.raises(ValueError, match=r"device='cuda' needs a usable NVIDIA GPU, and there is none: .*"
                                             r"Use device='cpu', or device='auto'"):
            fn(x, W, U, b, device="cuda")


def test_backward_dh_shape():
    x, W, U, b = layer()
    with pytest.raises(ValueError, match=r"dh has shape \(2, 3, 5\); expected \(2, 3, 4\)"):
        numlstm.lstm_backward(x, W, U, b, np.zeros((2, 3, 5)))


X = np.zeros((10, 4, 1), np.float32)
y = np.zeros(10, np.float32)


@pytest.mark.parametrize("kwargs,error,pattern", [
    ({"units": 0}, ValueError, r"units must be an integer >= 1, got 0"),
    ({"units": -3}, ValueError, r"units must be an integer >= 1, got -3"),
    ({"units": 2.5}, TypeError, r"units must be an integer >= 1, got float 2.5"),
    ({"layers": 0}, ValueError, r"layers must be an integer >= 1"),
    ({"epochs": 0}, ValueError, r"epochs must be an integer >= 1"),
    ({"batch_size": -1}, ValueError, r"batch_size must be an integer >= 1"),
    ({"loss": "hinge"}, ValueError, r"loss must be one of .*got 'hinge'"),
    ({"optimizer": "rmsprop"}, ValueError, r"optimizer must be 'adam', 'sgd', 'lbfgs'.*got 'rmsprop'"),
    ({"device": "gpu"}, ValueError, r"device must be one of"),
    ({"dtype": "float16"}, ValueError, r"dtype must be 'float32' or 'float64', got 'float16'"),
    ({"learning_rate": 0}, ValueError, r"learning_rate must be > 0"),
    ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must be >= 0 and < 1"),
    ({"clipnorm": -1}, ValueError, r"clipnorm must be > 0"),
    ({"verbose": 3}, ValueError, r"verbose must be 0 \(silent\), 1 \(progress bar\) or 2"),
    ({"random_state": "seed"}, TypeError, r"random_state must be None, an int or a numpy Generator"),
    ({"units": [3, 4], "layers": 3}, ValueError, r"units lists 2 layer sizes but layers=3"),
    ({"loss": numlstm.losses.Pinball([0.5, 1.2])}, ValueError, r"quantiles must be numbers strictly between 0 and 1"),
])
def test_bad_parameters(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        LSTMRegressor(**kwargs).fit(X, y)


@pytest.mark.parametrize("Xb,yb,error,pattern", [
    (np.zeros(10), y, ValueError, r"X has 1 dimension\(s\); expected \(samples, time, features\).*X\[:, :, None\]"),
    (np.zeros((2, 2, 2, 2)), y, ValueError, r"X has 4 dimension"),
    (X, np.zeros(9), ValueError, r"X has 10 samples but y has 9; they must match"),
    (np.where(np.arange(40).reshape(10, 4, 1) == 5, np.nan, 0.0), y, ValueError, r"X contains 1 NaN or infinite"),
    (np.full((10, 4, 1), np.inf), y, ValueError, r"X contains 40 NaN or infinite"),
    (X[:0], y[:0], ValueError, r"(X|y) is empty \(shape"),
    (np.full((10, 4), "x"), y, TypeError, r"X must hold numbers.*got dtype <U1"),
    (X, np.full(10, "a"), TypeError, r"y must hold numbers"),
    (X, np.full(10, np.nan), ValueError, r"y has no finite target"),
    (X, np.full(10, np.inf), ValueError, r"y contains infinite values"),
    (X, np.zeros((10, 1, 1)), ValueError, r"y has 3 dimension"),
])
def test_bad_data_regressor(Xb, yb, error, pattern):
    with pytest.raises(error, match=pattern):
        LSTMRegressor(epochs=1).fit(Xb, yb)


def test_predict_before_fit_and_wrong_feature_count():
    with pytest.raises(numlstm.NotFittedError, match=r"not fitted yet; call fit\(X, y\)"):
        LSTMRegressor().predict(X)
    with pytest.raises(ValueError, match=r"not fitted yet"):
        LSTMClassifier().predict_proba(X)
    model = LSTMRegressor(units=2, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 3 feature\(s\) per time step, but this LSTMRegressor was fitted "
                                         r"with 1"):
        model.predict(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"return_std=True needs loss='gaussian_nll'"):
        model.predict(X, return_std=True)


def test_bad_classifier_labels():
    with pytest.raises(ValueError, match=r"y has a single class"):
        LSTMClassifier(epochs=1).fit(X, np.zeros(10))
    with pytest.raises(ValueError, match=r"y has shape \(10, 2\); expected \(samples,\)"):
        LSTMClassifier(epochs=1).fit(X, np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"y contains NaN"):
        LSTMClassifier(epochs=1).fit(X, np.r_[np.nan, np.arange(9.0)])
    with pytest.raises(ValueError, match=r"loss must be 'auto' or 'binary_crossentropy' for 2 classes, got 'mse'"):
        LSTMClassifier(epochs=1, loss="mse").fit(X, np.arange(10) % 2)


def test_set_params_unknown_and_weights():
    with pytest.raises(ValueError, match=r"'unit' is not a parameter of LSTMRegressor"):
        LSTMRegressor().set_params(unit=3)
    model = LSTMRegressor(units=2, epochs=1).fit(X, y)
    weights = model.get_weights()
    weights["layers"][0]["U"] = np.zeros((3, 12))
    with pytest.raises(ValueError, match=r"weights\['layers'\]\[0\]\['U'\] has shape \(3, 12\); expected \(2, 8\)"):
        model.set_weights(weights)


def test_thread_count():
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        numlstm.set_num_threads(0)
    with pytest.raises(ValueError, match=r"more than the .* threads Numba started with"):
        numlstm.set_num_threads(10_000)
