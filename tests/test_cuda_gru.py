"""CUDA GRU kernels against the CPU kernels and the NumPy reference.

Runs on a real GPU, or on Numba's CUDA simulator with NUMBA_ENABLE_CUDASIM=1
set before numba is imported (``NUMBA_ENABLE_CUDASIM=1 python -m pytest
tests -m cuda``). Launch sizes are patched small so that several blocks,
partial tiles and the two-pass gradient reduction all run even at these tiny
sizes.
"""

import numpy as np
import pytest

import numlstm
import reference as ref
from conftest import TOL, cuda_marks

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]


def _layer(rng, B, T, I, H, dtype):
    x, W, U, b = ref.random_gru_layer(rng, B, T, I, H)
    h0 = rng.standard_normal((B, H))
    return [a.astype(dtype) for a in (x, W, U, b, h0)], (x, W, U, b, h0)


SHAPES = [(3, 4, 2, 5), (1, 1, 1, 1), (5, 3, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference_and_cpu(rng, dtype, shape):
    (x, W, U, b, h0), ref_args = _layer(rng, *shape, dtype)
    h, h_T = numlstm.gru_forward(x, W, U, b, h0, device="cuda")
    h_ref, h_T_ref, _ = ref.gru_forward(*ref_args)
    assert h.dtype == h_T.dtype == dtype and h.shape == h_ref.shape
    np.testing.assert_allclose(h, h_ref, **TOL[dtype])
    np.testing.assert_allclose(h_T, h_T_ref, **TOL[dtype])
    h_cpu, _ = numlstm.gru_forward(x, W, U, b, h0, device="cpu")
    np.testing.assert_allclose(h, h_cpu, **TOL[dtype])


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference_and_cpu(rng, dtype, shape):
    (x, W, U, b, h0), ref_args = _layer(rng, *shape, dtype)
    B, T, _, H = shape
    dh, dh_T = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    got = numlstm.gru_backward(x, W, U, b, dh.astype(dtype), h0, dh_T=dh_T.astype(dtype), device="cuda")
    want = ref.gru_backward(*ref_args[:4], dh, ref_args[4], dh_T)
    cpu = numlstm.gru_backward(x, W, U, b, dh.astype(dtype), h0, dh_T=dh_T.astype(dtype), device="cpu")
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    assert set(got) == {"dx", "dW", "dU", "db", "dh0"}
    for key in want:
        assert got[key].dtype == dtype and got[key].shape == want[key].shape, key
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)
        np.testing.assert_allclose(got[key], cpu[key], err_msg=key, **tol)


def test_backward_defaults(rng):
    """No h0 and no dh_T: zeros, as on the CPU."""
    (x, W, U, b, _), _ = _layer(rng, 3, 2, 2, 3, np.float64)
    dh = rng.standard_normal((3, 2, 3))
    got = numlstm.gru_backward(x, W, U, b, dh, device="cuda")
    want = ref.gru_backward(x, W, U, b, dh)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[np.float64])


@pytest.mark.parametrize("limit", [0, 1 << 20], ids=["U-global", "U-shared"])
def test_u_in_shared_memory_or_not_gives_the_same_result(rng, monkeypatch, limit):
    from numlstm.kernels import cuda_common as common
    from numlstm.kernels import cuda_sizes as sizes

    monkeypatch.setattr(sizes, "SHARED_LIMIT", limit)
    (x, W, U, b, h0), ref_args = _layer(rng, 3, 4, 2, 3, np.float64)
    assert (common.shared_bytes(U) > 0) == (limit > 0)
    h, _ = numlstm.gru_forward(x, W, U, b, h0, device="cuda")
    np.testing.assert_allclose(h, ref.gru_forward(*ref_args)[0], **TOL[np.float64])
    dh = rng.standard_normal((3, 4, 3))
    got = numlstm.gru_backward(x, W, U, b, dh, h0, device="cuda")
    want = ref.gru_backward(*ref_args[:4], dh, ref_args[4])
    for key in got:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[np.float64])


def test_backward_is_deterministic(rng):
    (x, W, U, b, h0), _ = _layer(rng, 4, 3, 2, 3, np.float32)
    dh = rng.standard_normal((4, 3, 3)).astype(np.float32)
    first = numlstm.gru_backward(x, W, U, b, dh, h0, device="cuda")
    second = numlstm.gru_backward(x, W, U, b, dh, h0, device="cuda")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_gradient_by_finite_differences(rng):
    """d(sum(h * w))/dU and /db on the GPU kernel itself, in float64."""
    (x, W, U, b, h0), _ = _layer(rng, 2, 3, 2, 2, np.float64)
    w = rng.standard_normal((2, 3, 2))
    args = {"U": U, "b": b}

    def loss(name, value):
        a = {**args, name: value}
        return float((numlstm.gru_forward(x, W, a["U"], a["b"], h0, device="cuda")[0] * w).sum())

    grads = numlstm.gru_backward(x, W, U, b, w, h0, device="cuda")
    eps = 1e-6
    for name, idx in [("U", (0, 0)), ("U", (1, 3)), ("U", (0, 5)), ("b", (0, 4)), ("b", (1, 5))]:
        plus, minus = args[name].copy(), args[name].copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric = (loss(name, plus) - loss(name, minus)) / (2 * eps)
        assert grads["d" + name][idx] == pytest.approx(numeric, rel=1e-6, abs=1e-8), (name, idx)


def test_layer_backward_into_a_flat_buffer_without_dx(rng):
    """``out=`` receives dW, dU and both bias rows in one (input + hidden + 2, 3H) array;
    ``need_dx=False`` skips dx."""
    from numba import cuda

    from numlstm.kernels import gru_cuda

    (x, W, U, b, h0), _ = _layer(rng, 3, 2, 2, 3, np.float64)
    dh = rng.standard_normal((3, 2, 3))
    want = numlstm.gru_backward(x, W, U, b, dh, h0, device="cuda")
    d_x, d_W, d_h0 = cuda.to_device(x), cuda.to_device(W), cuda.to_device(h0)
    xs, gs, hs = gru_cuda.layer_forward(d_x, d_W, cuda.to_device(U), cuda.to_device(b), d_h0)
    out = cuda.to_device(np.zeros((2 + 3 + 2, 9)))
    d_dh0 = cuda.to_device(np.zeros((3, 3)))
    dx, *_ = gru_cuda.layer_backward(d_x, d_W, cuda.to_device(np.ascontiguousarray(U.T)), d_h0, xs, gs, hs,
                                     cuda.to_device(dh), d_dh0, need_dx=False, out=out)
    assert dx is None
    flat = out.copy_to_host()
    np.testing.assert_array_equal(flat, np.concatenate([want["dW"], want["dU"], want["db"]]))
    np.testing.assert_array_equal(d_dh0.copy_to_host(), want["dh0"])


def test_auto_picks_the_gpu(rng):
    (x, W, U, b, _), _ = _layer(rng, 2, 3, 2, 2, np.float64)
    np.testing.assert_array_equal(numlstm.gru_forward(x, W, U, b, device="auto")[0],
                                  numlstm.gru_forward(x, W, U, b, device="cuda")[0])
