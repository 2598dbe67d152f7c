"""CPU kernels against the plain NumPy reference, and gradients by finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numlstm
import reference as ref
from conftest import TOL
from numlstm.kernels.gates import tanh_f32_approx


def _layer(rng, B, T, I, H, dtype):
    x, W, U, b = ref.random_layer(rng, B, T, I, H)
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return [a.astype(dtype) for a in (x, W, U, b, h0, c0)], (x, W, U, b, h0, c0)


@pytest.mark.parametrize("shape", [(3, 7, 2, 5), (1, 1, 1, 1), (5, 4, 9, 3), (2, 13, 1, 50)])
def test_forward_matches_reference(rng, dtype, shape):
    (x, W, U, b, h0, c0), ref_args = _layer(rng, *shape, dtype)
    h, (h_T, c_T) = numlstm.lstm_forward(x, W, U, b, h0, c0)
    h_ref, (h_T_ref, c_T_ref), _ = ref.lstm_forward(*ref_args)
    assert h.dtype == dtype and h.shape == h_ref.shape
    np.testing.assert_allclose(h, h_ref, **TOL[dtype])
    np.testing.assert_allclose(h_T, h_T_ref, **TOL[dtype])
    np.testing.assert_allclose(c_T, c_T_ref, **TOL[dtype])


def test_forward_zero_initial_state_is_default(rng):
    (x, W, U, b, _, _), _ = _layer(rng, 2, 5, 3, 4, np.float64)
    zeros = np.zeros((2, 4))
    np.testing.assert_array_equal(numlstm.lstm_forward(x, W, U, b)[0], numlstm.lstm_forward(x, W, U, b, zeros, zeros)[0])


@pytest.mark.parametrize("shape", [(3, 7, 2, 5), (1, 1, 1, 1), (4, 6, 3, 8)])
def test_backward_matches_reference(rng, dtype, shape):
    (x, W, U, b, h0, c0), ref_args = _layer(rng, *shape, dtype)
    B, T, _, H = shape
    dh, dh_T, dc_T = rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    got = numlstm.lstm_backward(x, W, U, b, dh.astype(dtype), h0, c0, dh_T=dh_T.astype(dtype), dc_T=dc_T.astype(dtype))
    want = ref.lstm_backward(*ref_args[:4], dh, *ref_args[4:], dh_T, dc_T)
    assert set(got) == {"dx", "dW", "dU", "db", "dh0", "dc0"}
    for key in want:
        assert got[key].dtype == dtype, key
        tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)


def test_backward_does_not_modify_inputs(rng):
    (x, W, U, b, h0, c0), _ = _layer(rng, 2, 3, 2, 3, np.float64)
    dh_T = rng.standard_normal((2, 3))
    copies = [a.copy() for a in (x, W, U, b, h0, c0, dh_T)]
    numlstm.lstm_backward(x, W, U, b, np.ones((2, 3, 3)), h0, c0, dh_T=dh_T)
    for before, after in zip(copies, (x, W, U, b, h0, c0, dh_T)):
        np.testing.assert_array_equal(before, after)


def test_gradients_by_finite_differences_including_initial_state(rng):
    """d/d(everything) of L = sum(h*dh) + sum(h_T*dh_T) + sum(c_T*dc_T), central differences in float64."""
    B, T, I, H = 2, 4, 3, 3
    (x, W, U, b, h0, c0), _ = _layer(rng, B, T, I, H, np.float64)
    dh, dh_T, dc_T = rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    args = {"x": x, "W": W, "U": U, "b": b, "h0": h0, "c0": c0}

    def loss(a):
        h, (hT, cT) = numlstm.lstm_forward(a["x"], a["W"], a["U"], a["b"], a["h0"], a["c0"])
        return np.sum(h * dh) + np.sum(hT * dh_T) + np.sum(cT * dc_T)

    grads = numlstm.lstm_backward(x, W, U, b, dh, h0, c0, dh_T=dh_T, dc_T=dc_T)
    eps = 1e-6
    for name, key in [("x", "dx"), ("W", "dW"), ("U", "dU"), ("b", "db"), ("h0", "dh0"), ("c0", "dc0")]:
        numeric = np.zeros_like(args[name])
        for idx in np.ndindex(args[name].shape):
            plus = {k: v.copy() for k, v in args.items()}
            minus = {k: v.copy() for k, v in args.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 6), I=st.integers(1, 5), H=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_any_shape_matches_reference(B, T, I, H, seed):
    rng = np.random.default_rng(seed)
    x, W, U, b = ref.random_layer(rng, B, T, I, H)
    dh = rng.standard_normal((B, T, H))
    h, _ = numlstm.lstm_forward(x, W, U, b)
    np.testing.assert_allclose(h, ref.lstm_forward(x, W, U, b)[0], rtol=1e-10, atol=1e-12)
    got = numlstm.lstm_backward(x, W, U, b, dh)
    want = ref.lstm_backward(x, W, U, b, dh)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-11, err_msg=key)


def test_float32_tanh_approximation_is_accurate():
    x = np.linspace(-30, 30, 600001)
    err = np.abs(tanh_f32_approx(x).astype(np.float64) - np.tanh(x.astype(np.float32).astype(np.float64)))
    assert err.max() < 5e-7  # about 6 float32 ulps near 1


def test_float32_kernel_saturates_and_stays_finite():
    """Huge pre-activations: the clamp keeps tanh at +-1, never NaN."""
    x = np.full((1, 3, 1), 1e4, dtype=np.float32)
    W = np.full((1, 4), 1.0, dtype=np.float32)
    h, (h_T, c_T) = numlstm.lstm_forward(x, W, np.zeros((1, 4), np.float32), np.zeros(4, np.float32))
    np.testing.assert_allclose(c_T, [[3.0]], rtol=1e-6)  # i=f=g=1 each step
    np.testing.assert_allclose(h_T, [[np.tanh(3.0)]], rtol=1e-6)


def test_result_does_not_depend_on_thread_count(rng):
    x, W, U, b = ref.random_layer(rng, 7, 5, 3, 4)
    before = numlstm.get_num_threads()
    try:
        numlstm.set_num_threads(1)
        one = numlstm.lstm_forward(x, W, U, b)[0]
        numlstm.set_num_threads(before)
        many = numlstm.lstm_forward(x, W, U, b)[0]
    finally:
        numlstm.set_num_threads(before)
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("T", [1, 2, 7])
def test_layer_forward_with_step_rings_gives_the_full_forward_hidden_states(rng, dtype, cell, T):
    # Prediction passes pre-activations of time length 1 and (LSTM) cell states of length 2: the
    # kernel writes step t at t % length. With skipped steps and recurrent dropout, on 2 chunks.
    from numlstm.kernels import cpu, gru_cpu
    B, I, H = 5, 3, 4
    G = (4 if cell == "lstm" else 3) * H
    x = rng.standard_normal((B, T, I)).astype(dtype)
    W, U = (0.5 * rng.standard_normal((I, G))).astype(dtype), (0.5 * rng.standard_normal((H, G))).astype(dtype)
    keep = (rng.random((B, T)) > 0.3).astype(np.int8)
    hmask = (rng.random((B, H)) > 0.2).astype(dtype) / dtype(0.8)
    runs = []
    for length in (T, 1):
        hs = np.empty((B, T, H), dtype=dtype)
        if cell == "lstm":
            b = rng.standard_normal(G).astype(dtype) if not runs else runs[0][1]
            zs, cs = np.empty((B, length, G), dtype=dtype), np.empty((B, max(length, min(T, 2)), H), dtype=dtype)
            zeros = np.zeros((B, H), dtype=dtype)
            cpu.layer_forward(x, W, U, b, zeros, zeros, zs, cs, hs, 2, keep, hmask)
        else:
            b = rng.standard_normal((2, G)).astype(dtype) if not runs else runs[0][1]
            xs, gs = np.empty((B, length, G), dtype=dtype), np.empty((B, length, G), dtype=dtype)
            gru_cpu.layer_forward(x, W, U, b, np.zeros((B, H), dtype=dtype), xs, gs, hs, 2, keep, hmask)
        runs.append((hs, b))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    assert np.isfinite(runs[0][0]).all() and np.abs(runs[0][0]).max() > 0.01
