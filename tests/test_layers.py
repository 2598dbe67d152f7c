"""numlstm.kernels.layers: one layer, forward and backward, through the same call on every
device and for every cell, masks included, against the NumPy reference (float64)."""

from types import SimpleNamespace

import numpy as np
import pytest

import reference as ref
from numlstm.kernels import layers


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_same_call_runs_every_cell_on_every_device(rng, cell, backend):
    B, T, I, H = 3, 5, 2, 4
    if cell == "lstm":
        x, W, U, b = ref.random_layer(rng, B, T, I, H)
        states = (0.3 * rng.standard_normal((B, H)), 0.3 * rng.standard_normal((B, H)))
    else:
        x, W, U, b = ref.random_gru_layer(rng, B, T, I, H)
        states = (0.3 * rng.standard_normal((B, H)),)
    keep = (rng.random((B, T)) > 0.3).astype(np.int8)
    hmask = (rng.random((B, H)) > 0.4) / 0.6
    dh = rng.standard_normal((B, T, H))
    carries = [rng.standard_normal((B, H)) for _ in states]
    if cell == "lstm":
        want_hs = ref.lstm_forward(x, W, U, b, *states, keep=keep, hmask=hmask)[0]
        want = ref.lstm_backward(x, W, U, b, dh, *states, *carries, keep=keep, hmask=hmask)
    else:
        want_hs = ref.gru_forward(x, W, U, b, *states, keep=keep, hmask=hmask)[0]
        want = ref.gru_backward(x, W, U, b, dh, *states, *carries, keep=keep, hmask=hmask)

    if backend == "cuda":
        from numba import cuda

        put, get = cuda.to_device, (lambda a: a.copy_to_host())
    else:
        put, get = (lambda a: a), (lambda a: a)
    arrays = [put(np.ascontiguousarray(a)) for a in (x, W, U, b)]
    states = tuple(put(s) for s in states)
    first, second, hs = layers.forward(cell, backend, *arrays, states, keep=put(keep), hmask=put(hmask))
    np.testing.assert_allclose(get(hs), want_hs, rtol=1e-10, atol=1e-12)
    carried = [put(c.copy()) for c in carries]
    dx, dW, dU, db = layers.backward(cell, backend, *arrays, states, first, second, hs, put(dh), carried,
                                     keep=put(keep), hmask=put(hmask))
    for name, got in (("dx", dx), ("dW", dW), ("dU", dU), ("db", db), ("dh0", carried[0])):
        np.testing.assert_allclose(get(got), want[name], rtol=1e-9, atol=1e-11, err_msg=name)
    if cell == "lstm":
        np.testing.assert_allclose(get(carried[1]), want["dc0"], rtol=1e-9, atol=1e-11)
    assert layers.backward(cell, backend, *arrays, states, first, second, hs, put(dh), carried, need_dx=False,
                           keep=put(keep), hmask=put(hmask))[0] is None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_forward_pass_without_backward_keeps_one_step_and_gives_the_same_bits(rng, cell, dtype):
    # for_backward=False (the functional API's forward): the projections kept for the current
    # step only; the states (and an LSTM's cell states, which are returned) bit for bit the same,
    # masks included.
    B, T, I, H = 7, 6, 3, 5
    make = ref.random_layer if cell == "lstm" else ref.random_gru_layer
    x, W, U, b = (np.ascontiguousarray(a, dtype=dtype) for a in make(rng, B, T, I, H))
    states = tuple((0.3 * rng.standard_normal((B, H))).astype(dtype) for _ in range(2 if cell == "lstm" else 1))
    keep = (rng.random((B, T)) > 0.3).astype(np.int8)
    hmask = ((rng.random((B, H)) > 0.4) / 0.6).astype(dtype)
    for masks in ({}, {"keep": keep, "hmask": hmask}):
        full = layers.forward(cell, "cpu", x, W, U, b, states, **masks)
        ring = layers.forward(cell, "cpu", x, W, U, b, states, **masks, for_backward=False)
        assert full[0].shape[1] == T and ring[0].shape[1] == 1
        np.testing.assert_array_equal(ring[2], full[2])
        reference = ref.lstm_forward if cell == "lstm" else ref.gru_forward
        want = reference(*(a.astype(np.float64) for a in (x, W, U, b)), *(s.astype(np.float64) for s in states),
                         **masks)[0]
        tol = 1e-10 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(ring[2], want, rtol=tol, atol=tol)
        if cell == "lstm":
            assert ring[1].shape == full[1].shape  # the cell states are a result: every step
            np.testing.assert_array_equal(ring[1], full[1])
        else:
            assert ring[1].shape[1] == 1


def _at_offset(a, offset):
    """A copy of ``a`` whose data start ``offset`` bytes past a 64-byte boundary."""
    raw = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = -raw.ctypes.data % 64 + offset
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == offset
    return out


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weights_anywhere_in_memory_reach_the_forward_kernel_aligned_and_give_the_same_bits(rng, cell, monkeypatch):
    # The forward kernels read rows of W and U as whole vectors: for problems from ALIGN_WORK
    # multiply-adds on, layers.forward hands them copies on 64-byte boundaries (NumPy puts large
    # arrays 16 bytes past one) and aligned outputs; below it, the arrays as they came.
    B, T, I, H = 6, 5, 3, 32
    make = ref.random_layer if cell == "lstm" else ref.random_gru_layer
    x, W, U, b = (np.ascontiguousarray(a, dtype=np.float32) for a in make(rng, B, T, I, H))
    states = tuple((0.3 * rng.standard_normal((B, H))).astype(np.float32) for _ in range(2 if cell == "lstm" else 1))
    dh = rng.standard_normal((B, T, H)).astype(np.float32)
    kernels = layers.LAYERS[cell, "cpu"]
    real = kernels.module
    seen = []

    def layer_forward(x, W, U, *rest):
        seen.append((W.ctypes.data % 64, U.ctypes.data % 64))
        return real.layer_forward(x, W, U, *rest)

    monkeypatch.setattr(kernels, "module", SimpleNamespace(layer_forward=layer_forward,
                                                           layer_backward=real.layer_backward))
    results = []
    for work, offset in [(0, offset) for offset in (0, 16, 32, 48)] + [(1 << 62, 16)]:
        monkeypatch.setattr(layers, "ALIGN_WORK", work)  # 0: every problem is big; 2**62: none is
        Wo, Uo, bo = (_at_offset(a, offset) for a in (W, U, b))
        first, second, hs = layers.forward(cell, "cpu", x, Wo, Uo, bo, states)
        assert seen[-1] == ((0, 0) if work == 0 else (offset, offset))
        if work == 0:
            assert all(a.ctypes.data % 64 == 0 for a in (first, second, hs))
        carries = [np.zeros((B, H), dtype=np.float32) for _ in states]
        dx, dW, dU, db = layers.backward(cell, "cpu", x, Wo, Uo, bo, states, first, second, hs, dh, carries)
        if work == 0:
            assert dx.ctypes.data % 64 == 0
        results.append((hs, dx, dW, dU, db, *carries))
        np.testing.assert_array_equal(Wo, W)  # the caller's arrays are read, never written
    for other in results[1:]:  # aligned copies or not, the same bits
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_backward_reuses_its_kept_memory_and_never_reads_what_was_left_in_it(rng, cell):
    # forward_backward (the functional API's backward) stores the forward pass in memory kept
    # between calls (layers.SCRATCH): a second call runs in the first call's buffer, whatever the
    # buffer holds (here NaN), and the results are the reference's, bit for bit those of
    # forward then backward on fresh arrays.
    B, T, I, H = 4, 7, 3, 5
    make = ref.random_layer if cell == "lstm" else ref.random_gru_layer
    x, W, U, b = (np.ascontiguousarray(a) for a in make(rng, B, T, I, H))
    states = tuple(0.3 * rng.standard_normal((B, H)) for _ in range(2 if cell == "lstm" else 1))
    dh = rng.standard_normal((B, T, H))
    final = [rng.standard_normal((B, H)) for _ in states]
    first, second, hs = layers.forward(cell, "cpu", x, W, U, b, states)
    fresh_carries = [c.copy() for c in final]
    fresh = layers.backward(cell, "cpu", x, W, U, b, states, first, second, hs, dh, fresh_carries)
    want = (ref.lstm_backward if cell == "lstm" else ref.gru_backward)(x, W, U, b, dh, *states, *final)
    layers.SCRATCH.clear()
    buffers = []
    for _ in range(2):
        carries = [c.copy() for c in final]
        got = layers.forward_backward(cell, "cpu", x, W, U, b, states, dh, carries)
        for a, b_ in zip(got + tuple(carries), fresh + tuple(fresh_carries)):
            np.testing.assert_array_equal(a, b_)
        np.testing.assert_allclose(got[0], want["dx"], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(carries[0], want["dh0"], rtol=1e-9, atol=1e-11)
        kept = layers.SCRATCH._idle
        assert kept is not None and kept.ctypes.data % 64 == 0
        buffers.append(kept.ctypes.data)
        kept[...] = 255  # every byte: float NaN
    assert buffers[0] == buffers[1]


def test_the_scratch_pool_lends_a_buffer_once_and_keeps_the_largest_within_its_limit():
    from numlstm._aligned import ScratchPool

    pool = ScratchPool(limit=1000)
    with pool.borrow(100) as a:
        with pool.borrow(100) as b:  # (another thread's call while the first is out)
            assert a.ctypes.data != b.ctypes.data
            assert a.size == b.size == 100 and a.ctypes.data % 64 == 0
    assert pool.kept_bytes == 100
    with pool.borrow(60) as c:  # the kept one, large enough
        assert c.ctypes.data in (a.ctypes.data, b.ctypes.data) and c.size == 60
    with pool.borrow(500):
        pass
    assert pool.kept_bytes == 500  # the larger one kept
    with pool.borrow(2000):
        pass
    assert pool.kept_bytes == 500  # over the limit: memory of its own, not kept, the 500 left alone
    pool.clear()
    assert pool.kept_bytes == 0
