"""numlstm.kernels.layers: one layer, forward and backward, through the same call on every
device and for every cell, masks included, against the NumPy reference (float64)."""

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
