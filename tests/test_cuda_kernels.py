"""CUDA layer kernels against the CPU kernels and the NumPy reference.

Runs on a real GPU, or on Numba's CUDA simulator with NUMBA_ENABLE_CUDASIM=1
set before numba is imported (a separate pytest process: ``.ci/run`` does
``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests -m cuda``). Launch sizes are
patched small so that several blocks, partial tiles and the two-pass gradient
reduction all run even at these tiny sizes.
"""

import numpy as np
import pytest

import numlstm
import reference as ref
from conftest import TOL, cuda_marks

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]


def _layer(rng, B, T, I, H, dtype):
    x, W, U, b = ref.random_layer(rng, B, T, I, H)
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return [a.astype(dtype) for a in (x, W, U, b, h0, c0)], (x, W, U, b, h0, c0)


SHAPES = [(3, 4, 2, 5), (1, 1, 1, 1), (5, 3, 3, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference_and_cpu(rng, dtype, shape):
    (x, W, U, b, h0, c0), ref_args = _layer(rng, *shape, dtype)
    h, (h_T, c_T) = numlstm.lstm_forward(x, W, U, b, h0, c0, device="cuda")
    h_ref, (h_T_ref, c_T_ref), _ = ref.lstm_forward(*ref_args)
    assert h.dtype == dtype and h.shape == h_ref.shape
    np.testing.assert_allclose(h, h_ref, **TOL[dtype])
    np.testing.assert_allclose(c_T, c_T_ref, **TOL[dtype])
    h_cpu, _ = numlstm.lstm_forward(x, W, U, b, h0, c0, device="cpu")
    np.testing.assert_allclose(h, h_cpu, **TOL[dtype])


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference_and_cpu(rng, dtype, shape):
    (x, W, U, b, h0, c0), ref_args = _layer(rng, *shape, dtype)
    B, T, _, H = shape
    dh = rng.standard_normal((B, T, H))
    dh_T, dc_T = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    got = numlstm.lstm_backward(x, W, U, b, dh.astype(dtype), h0, c0, dh_T=dh_T.astype(dtype),
                                dc_T=dc_T.astype(dtype), device="cuda")
    want = ref.lstm_backward(*ref_args[:4], dh, *ref_args[4:], dh_T, dc_T)
    cpu = numlstm.lstm_backward(x, W, U, b, dh.astype(dtype), h0, c0, dh_T=dh_T.astype(dtype),
                                dc_T=dc_T.astype(dtype), device="cpu")
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    for key in ("dx", "dW", "dU", "db", "dh0", "dc0"):
        assert got[key].dtype == dtype, key
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)
        np.testing.assert_allclose(got[key], cpu[key], err_msg=key, **tol)


@pytest.mark.parametrize("limit", [0, 1 << 20], ids=["U-global", "U-shared"])
def test_u_in_shared_memory_or_not_gives_the_same_result(rng, monkeypatch, limit):
    from numlstm.kernels import cuda_common as common
    from numlstm.kernels import cuda_sizes as sizes

    monkeypatch.setattr(sizes, "SHARED_LIMIT", limit)
    (x, W, U, b, h0, c0), ref_args = _layer(rng, 3, 4, 2, 3, np.float64)
    assert (common.shared_bytes(U) > 0) == (limit > 0)
    h, _ = numlstm.lstm_forward(x, W, U, b, h0, c0, device="cuda")
    np.testing.assert_allclose(h, ref.lstm_forward(*ref_args)[0], **TOL[np.float64])
    dh = rng.standard_normal((3, 4, 3))
    got = numlstm.lstm_backward(x, W, U, b, dh, h0, c0, device="cuda")
    want = ref.lstm_backward(*ref_args[:4], dh, *ref_args[4:])
    for key in got:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[np.float64])


def test_backward_is_deterministic(rng):
    (x, W, U, b, h0, c0), _ = _layer(rng, 4, 3, 2, 3, np.float32)
    dh = rng.standard_normal((4, 3, 3)).astype(np.float32)
    first = numlstm.lstm_backward(x, W, U, b, dh, h0, c0, device="cuda")
    second = numlstm.lstm_backward(x, W, U, b, dh, h0, c0, device="cuda")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_gradient_by_finite_differences(rng):
    """d(sum(h * w))/dU on the GPU kernel itself, in float64."""
    (x, W, U, b, h0, c0), _ = _layer(rng, 2, 3, 2, 2, np.float64)
    w = rng.standard_normal((2, 3, 2))

    def loss(U_):
        return float((numlstm.lstm_forward(x, W, U_, b, h0, c0, device="cuda")[0] * w).sum())

    grad = numlstm.lstm_backward(x, W, U, b, w, h0, c0, device="cuda")["dU"]
    eps = 1e-6
    for idx in [(0, 0), (1, 3), (0, 7)]:
        Up, Um = U.copy(), U.copy()
        Up[idx] += eps
        Um[idx] -= eps
        assert grad[idx] == pytest.approx((loss(Up) - loss(Um)) / (2 * eps), rel=1e-6, abs=1e-8)


def test_auto_picks_the_gpu(rng):
    (x, W, U, b, h0, c0), _ = _layer(rng, 2, 3, 2, 2, np.float64)
    np.testing.assert_array_equal(numlstm.lstm_forward(x, W, U, b, device="auto")[0],
                                  numlstm.lstm_forward(x, W, U, b, device="cuda")[0])


def test_the_simulator_keeps_a_module_swapped_while_any_simulated_thread_is_inside(monkeypatch):
    """The simulator's swap of ``numba.cuda`` in a device function's module (see
    ``conftest._thread_safe_simulator``): a thread that leaves must not put the real module
    back under another still inside. On a real GPU there is nothing to swap."""
    import os
    import threading
    import types

    from numba import cuda

    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        pytest.skip("a check of the CUDA simulator")
    from numba.cuda.simulator import kernel

    module = types.ModuleType("device_helpers")
    exec("def helper():\n    return cuda\n", module.__dict__)
    module.cuda = cuda
    fake = object()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with kernel.swapped_cuda_module(module.helper, fake):
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with kernel.swapped_cuda_module(module.helper, fake):
            second_in.set()
            first_out.wait(5)
            seen.append(module.helper())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [fake]  # still the fake module after the first thread left
    assert module.cuda is cuda  # the real one back once both have left
