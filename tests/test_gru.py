"""GRU CPU kernels against the plain NumPy reference, gradients by finite differences, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numlstm
import reference as ref
from conftest import TOL


def _layer(rng, B, T, I, H, dtype):
    x, W, U, b = ref.random_gru_layer(rng, B, T, I, H)
    h0 = rng.standard_normal((B, H))
    return [a.astype(dtype) for a in (x, W, U, b, h0)], (x, W, U, b, h0)


@pytest.mark.parametrize("shape", [(3, 5, 2, 4), (1, 1, 1, 1), (5, 4, 9, 3), (2, 7, 1, 40)])
def test_forward_matches_reference(rng, dtype, shape):
    (x, W, U, b, h0), ref_args = _layer(rng, *shape, dtype)
    h, h_T = numlstm.gru_forward(x, W, U, b, h0)
    h_ref, h_T_ref, _ = ref.gru_forward(*ref_args)
    assert h.dtype == h_T.dtype == dtype and h.shape == h_ref.shape and h_T.shape == h_T_ref.shape
    np.testing.assert_allclose(h, h_ref, **TOL[dtype])
    np.testing.assert_allclose(h_T, h_T_ref, **TOL[dtype])


def test_forward_zero_initial_state_is_default(rng):
    (x, W, U, b, _), _ = _layer(rng, 2, 5, 3, 4, np.float64)
    np.testing.assert_array_equal(numlstm.gru_forward(x, W, U, b)[0],
                                  numlstm.gru_forward(x, W, U, b, np.zeros((2, 4)))[0])


def test_forward_by_hand_one_unit_one_step():
    """z, r, n of one unit from the equations, the recurrent bias scaled by r in the candidate."""
    x = np.array([[[2.0]]])
    W, U = np.array([[0.5, -1.0, 0.25]]), np.array([[0.3, 0.2, -0.7]])
    b = np.array([[0.1, 0.2, 0.3], [-0.4, 0.5, 0.6]])
    h0 = np.array([[0.8]])

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    z = sigmoid(2.0 * 0.5 + 0.1 + 0.8 * 0.3 - 0.4)
    r = sigmoid(2.0 * -1.0 + 0.2 + 0.8 * 0.2 + 0.5)
    n = np.tanh(2.0 * 0.25 + 0.3 + r * (0.8 * -0.7 + 0.6))
    h, h_T = numlstm.gru_forward(x, W, U, b, h0)
    np.testing.assert_allclose(h_T, [[z * 0.8 + (1 - z) * n]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("shape", [(3, 5, 2, 4), (1, 1, 1, 1), (4, 6, 3, 8)])
def test_backward_matches_reference(rng, dtype, shape):
    (x, W, U, b, h0), ref_args = _layer(rng, *shape, dtype)
    B, T, _, H = shape
    dh, dh_T = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    got = numlstm.gru_backward(x, W, U, b, dh.astype(dtype), h0, dh_T=dh_T.astype(dtype))
    want = ref.gru_backward(*ref_args[:4], dh, ref_args[4], dh_T)
    assert set(got) == {"dx", "dW", "dU", "db", "dh0"}
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4)
    for key in want:
        assert got[key].dtype == dtype and got[key].shape == want[key].shape, key
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)


def test_backward_defaults_are_zero_initial_state_and_no_final_gradient(rng):
    (x, W, U, b, _), _ = _layer(rng, 2, 4, 3, 3, np.float64)
    dh = rng.standard_normal((2, 4, 3))
    got = numlstm.gru_backward(x, W, U, b, dh)
    explicit = numlstm.gru_backward(x, W, U, b, dh, np.zeros((2, 3)), dh_T=np.zeros((2, 3)))
    want = ref.gru_backward(x, W, U, b, dh)
    for key in want:
        np.testing.assert_array_equal(got[key], explicit[key], err_msg=key)
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[np.float64])


def test_dh_T_is_the_gradient_of_the_last_step(rng):
    """h_T is h[:, -1], so dh_T must act exactly like extra gradient on the last step."""
    (x, W, U, b, h0), _ = _layer(rng, 3, 4, 2, 3, np.float64)
    dh, dh_T = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 3))
    with_final = numlstm.gru_backward(x, W, U, b, dh, h0, dh_T=dh_T)
    folded = dh.copy()
    folded[:, -1] += dh_T
    without = numlstm.gru_backward(x, W, U, b, folded, h0)
    for key in without:
        np.testing.assert_allclose(with_final[key], without[key], rtol=1e-13, atol=1e-14, err_msg=key)


def test_backward_does_not_modify_inputs(rng):
    (x, W, U, b, h0), _ = _layer(rng, 2, 3, 2, 3, np.float64)
    dh, dh_T = np.ones((2, 3, 3)), rng.standard_normal((2, 3))
    inputs = (x, W, U, b, h0, dh, dh_T)
    copies = [a.copy() for a in inputs]
    numlstm.gru_backward(x, W, U, b, dh, h0, dh_T=dh_T)
    for before, after in zip(copies, inputs):
        np.testing.assert_array_equal(before, after)


def test_gradients_by_finite_differences_including_initial_state(rng):
    """d/d(everything) of L = sum(h*dh) + sum(h_T*dh_T), central differences in float64."""
    B, T, I, H = 2, 4, 3, 3
    (x, W, U, b, h0), _ = _layer(rng, B, T, I, H, np.float64)
    dh, dh_T = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    args = {"x": x, "W": W, "U": U, "b": b, "h0": h0}

    def loss(a):
        h, h_T = numlstm.gru_forward(a["x"], a["W"], a["U"], a["b"], a["h0"])
        return np.sum(h * dh) + np.sum(h_T * dh_T)

    grads = numlstm.gru_backward(x, W, U, b, dh, h0, dh_T=dh_T)
    eps = 1e-6
    for name, key in [("x", "dx"), ("W", "dW"), ("U", "dU"), ("b", "db"), ("h0", "dh0")]:
        numeric = np.zeros_like(args[name])
        for idx in np.ndindex(args[name].shape):
            plus = {k: v.copy() for k, v in args.items()}
            minus = {k: v.copy() for k, v in args.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 6), I=st.integers(1, 5), H=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_any_shape_matches_reference(B, T, I, H, seed):
    rng = np.random.default_rng(seed)
    x, W, U, b = ref.random_gru_layer(rng, B, T, I, H)
    dh = rng.standard_normal((B, T, H))
    h, _ = numlstm.gru_forward(x, W, U, b)
    np.testing.assert_allclose(h, ref.gru_forward(x, W, U, b)[0], rtol=1e-10, atol=1e-12)
    got = numlstm.gru_backward(x, W, U, b, dh)
    want = ref.gru_backward(x, W, U, b, dh)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-11, err_msg=key)


def test_rows_in_several_tiles_and_chunks(rng):
    """More rows than one tile (32) per thread, on one thread and on every thread: the same bits."""
    (x, W, U, b, h0), ref_args = _layer(rng, 70, 3, 2, 3, np.float64)
    dh = rng.standard_normal((70, 3, 3))
    before = numlstm.get_num_threads()
    try:
        numlstm.set_num_threads(1)
        one = numlstm.gru_backward(x, W, U, b, dh, h0)
        h_one = numlstm.gru_forward(x, W, U, b, h0)[0]
        numlstm.set_num_threads(before)
        many = numlstm.gru_backward(x, W, U, b, dh, h0)
        h_many = numlstm.gru_forward(x, W, U, b, h0)[0]
    finally:
        numlstm.set_num_threads(before)
    np.testing.assert_array_equal(h_one, h_many)
    np.testing.assert_allclose(h_one, ref.gru_forward(*ref_args)[0], **TOL[np.float64])
    want = ref.gru_backward(*ref_args[:4], dh, ref_args[4])
    for key in want:
        np.testing.assert_allclose(one[key], want[key], err_msg=key, **TOL[np.float64])
        np.testing.assert_allclose(many[key], one[key], rtol=1e-12, atol=1e-13, err_msg=key)


def test_kernel_skips_dx_on_request(rng):
    """need_dx=False (for a first layer, whose input needs no gradient) leaves dx alone."""
    from numlstm.kernels import gru_cpu
    from numlstm.kernels.cpu import NO_KEEP, no_hmask

    (x, W, U, b, h0), _ = _layer(rng, 3, 4, 2, 3, np.float64)
    dh = rng.standard_normal((3, 4, 3))
    want = numlstm.gru_backward(x, W, U, b, dh, h0)
    xs, gs, hs = (np.empty((3, 4, n)) for n in (9, 9, 3))
    gru_cpu.layer_forward(x, W, U, b, h0, xs, gs, hs, 2, NO_KEEP, no_hmask(x.dtype))
    dW, dU, db, dh0 = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.zeros((3, 3))
    dx = np.full_like(x, 7.0)
    gru_cpu.layer_backward(x, W, U, h0, xs, gs, hs, dh, dh0, dW, dU, db, dx, 2, False, NO_KEEP,
                           no_hmask(x.dtype))
    assert (dx == 7.0).all()
    for key, got in (("dW", dW), ("dU", dU), ("db", db), ("dh0", dh0)):
        np.testing.assert_allclose(got, want[key], rtol=1e-13, atol=1e-14, err_msg=key)


def test_float32_kernel_saturates_and_stays_finite():
    """Huge pre-activations: z saturates to 1, so h keeps h0; to 0, so h = n = +-1. Never NaN."""
    x = np.full((1, 3, 1), 1e4, dtype=np.float32)
    U, h0 = np.zeros((1, 3), np.float32), np.full((1, 1), 0.25, np.float32)
    keep = numlstm.gru_forward(x, np.array([[1.0, 0.0, 0.0]], np.float32), U, np.zeros((2, 3), np.float32), h0)[1]
    np.testing.assert_allclose(keep, [[0.25]], rtol=1e-6)
    to_n = numlstm.gru_forward(x, np.array([[-1.0, 1.0, 1.0]], np.float32), U, np.zeros((2, 3), np.float32), h0)[1]
    np.testing.assert_allclose(to_n, [[1.0]], rtol=1e-6)
    grads = numlstm.gru_backward(x, np.array([[-1.0, 1.0, 1.0]], np.float32), U, np.zeros((2, 3), np.float32),
                                 np.ones((1, 3, 1), np.float32), h0)
    assert all(np.isfinite(g).all() for g in grads.values())


# --- bad input -----------------------------------------------------------------------


def gru_layer(B=2, T=3, I=2, H=4, dtype=np.float64):
    return (np.zeros((B, T, I), dtype), np.zeros((I, 3 * H), dtype), np.zeros((H, 3 * H), dtype),
            np.zeros((2, 3 * H), dtype))


@pytest.mark.parametrize("fn", [numlstm.gru_forward,
                                lambda x, W, U, b, **k: numlstm.gru_backward(x, W, U, b, np.zeros((2, 3, 4)), **k)],
                         ids=["forward", "backward"])
class TestBadInput:
    def test_wrong_ndim(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"x has 2 dimension\(s\); expected 3.*x\[:, :, None\]"):
            fn(x[:, :, 0], W, U, b)

    def test_lstm_weights(self, fn):
        x = np.zeros((2, 3, 2))
        with pytest.raises(ValueError, match=r"U has shape \(4, 16\); expected \(hidden, 3\*hidden\) with "
                                             r"hidden >= 1, gate blocks \[z\|r\|n\]"):
            fn(x, np.zeros((2, 16)), np.zeros((4, 16)), np.zeros(16))

    def test_wrong_input_weights(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"W has shape \(3, 12\); expected \(2, 12\), \(input, 3\*hidden\) "
                                             r"for x with 2 feature\(s\) and hidden=4"):
            fn(x, np.zeros((3, 12)), U, b)

    def test_one_bias_vector(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"b has shape \(12,\); expected \(2, 12\), \(2, 3\*hidden\) for "
                                             r"hidden=4: row 0 the input bias, row 1 the recurrent bias; one bias "
                                             r"vector goes in as the input bias, np\.stack\(\[b, np\.zeros_like"
                                             r"\(b\)\]\).*reset_after=False"):
            fn(x, W, U, b[0])

    def test_wrong_bias(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"b has shape \(3, 12\); expected \(2, 12\), \(2, 3\*hidden\) "
                                             r"for hidden=4: row 0 the input bias, row 1 the recurrent bias\.$"):
            fn(x, W, U, np.zeros((3, 12)))

    def test_initial_state(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"h0 has shape \(3, 4\); expected \(2, 4\), \(batch, hidden\)"):
            fn(x, W, U, b, h0=np.zeros((3, 4)))
        with pytest.raises(TypeError, match=r"h0 has dtype float32 but the other arrays are float64"):
            fn(x, W, U, b, h0=np.zeros((2, 4), np.float32))

    def test_mixed_dtypes(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(TypeError, match=r"b has dtype float32 but the other arrays are float64.*astype"):
            fn(x, W, U, b.astype(np.float32))

    def test_integer_input(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(TypeError, match=r"x must be a float32 or float64 array, got int64"):
            fn(x.astype(np.int64), W, U, b)

    def test_empty(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"x is empty"):
            fn(x[:, :0], W, U, b)

    def test_unknown_device(self, fn):
        x, W, U, b = gru_layer()
        with pytest.raises(ValueError, match=r"device must be one of .*got 'tpu'"):
            fn(x, W, U, b, device="tpu")


def test_backward_output_gradients():
    x, W, U, b = gru_layer()
    with pytest.raises(ValueError, match=r"dh has shape \(2, 3, 5\); expected \(2, 3, 4\), \(batch, time, "
                                         r"hidden\), the gradient with respect to h"):
        numlstm.gru_backward(x, W, U, b, np.zeros((2, 3, 5)))
    with pytest.raises(TypeError, match=r"dh has dtype float32 but the other arrays are float64"):
        numlstm.gru_backward(x, W, U, b, np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"dh_T has shape \(2, 5\); expected \(2, 4\), \(batch, hidden\)"):
        numlstm.gru_backward(x, W, U, b, np.zeros((2, 3, 4)), dh_T=np.zeros((2, 5)))
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'dc_T'"):
        numlstm.gru_backward(x, W, U, b, np.zeros((2, 3, 4)), dc_T=np.zeros((2, 4)))
