"""The CUDA layer kernels' optional masks against the NumPy reference.

``keep`` (batch, time) skips steps, the state passing through them;
``hmask`` (batch, hidden) is recurrent dropout on the state entering ``h U``.
The kernels are called directly (``layer_forward``/``layer_backward`` with
device arrays), LSTM and GRU, forward and backward. Runs on a real GPU or on
Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), with launch sizes patched
small so that several blocks, a partial tile of rows and the two-pass
gradient reduction all run.
"""

import numpy as np
import pytest

import reference as ref
from conftest import TOL, cuda_marks

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]

B, T, I, H = 5, 5, 2, 3

# One row per pattern: pre-padding, post-padding, interleaved, all skipped, all kept.
KEEP = np.array([[0, 0, 1, 1, 1],
                 [1, 1, 1, 0, 0],
                 [1, 0, 1, 0, 1],
                 [0, 0, 0, 0, 0],
                 [1, 1, 1, 1, 1]], np.int8)


def _hmask(rng, dtype):
    """Inverted dropout at rate 0.4, with at least one dropped unit."""
    m = (rng.random((B, H)) >= 0.4) / 0.6
    m[0, 1] = 0
    return m.astype(dtype)


def _dev(a):
    from numba import cuda

    return None if a is None else cuda.to_device(np.ascontiguousarray(a))


def _lstm(args, dh, dh_T, dc_T, keep=None, hmask=None):
    """Forward then backward through the CUDA kernels: every output as host arrays."""
    from numlstm.kernels import cuda as k

    x, W, U, b, h0, c0 = args
    d_x, d_W, d_h0, d_c0, d_keep, d_hmask = (_dev(a) for a in (x, W, h0, c0, keep, hmask))
    zs, cs, hs = k.layer_forward(d_x, d_W, _dev(U), _dev(b), d_h0, d_c0, keep=d_keep, hmask=d_hmask)
    dh_carry, dc_carry = _dev(dh_T), _dev(dc_T)
    dx, dW, dU, db = k.layer_backward(d_x, d_W, _dev(U.T), d_h0, d_c0, zs, cs, hs, _dev(dh), dh_carry, dc_carry,
                                      keep=d_keep, hmask=d_hmask)
    hs, cs = hs.copy_to_host(), cs.copy_to_host()
    out = {"hs": hs, "h_T": hs[:, -1], "c_T": cs[:, -1], "dh0": dh_carry.copy_to_host(),
           "dc0": dc_carry.copy_to_host()}
    out.update({name: a.copy_to_host() for name, a in (("dx", dx), ("dW", dW), ("dU", dU), ("db", db))})
    return out


def _lstm_ref(args, dh, dh_T, dc_T, keep=None, hmask=None):
    x, W, U, b, h0, c0 = args
    hs, (h_T, c_T), _ = ref.lstm_forward(x, W, U, b, h0, c0, keep, hmask)
    grads = ref.lstm_backward(x, W, U, b, dh, h0, c0, dh_T, dc_T, keep, hmask)
    return {"hs": hs, "h_T": h_T, "c_T": c_T, **grads}


def _gru(args, dh, dh_T, keep=None, hmask=None):
    from numlstm.kernels import gru_cuda as k

    x, W, U, b, h0 = args
    d_x, d_W, d_h0, d_keep, d_hmask = (_dev(a) for a in (x, W, h0, keep, hmask))
    xs, gs, hs = k.layer_forward(d_x, d_W, _dev(U), _dev(b), d_h0, keep=d_keep, hmask=d_hmask)
    dh_carry = _dev(dh_T)
    dx, dW, dU, db = k.layer_backward(d_x, d_W, _dev(U.T), d_h0, xs, gs, hs, _dev(dh), dh_carry,
                                      keep=d_keep, hmask=d_hmask)
    hs = hs.copy_to_host()
    out = {"hs": hs, "h_T": hs[:, -1], "dh0": dh_carry.copy_to_host()}
    out.update({name: a.copy_to_host() for name, a in (("dx", dx), ("dW", dW), ("dU", dU), ("db", db))})
    return out


def _gru_ref(args, dh, dh_T, keep=None, hmask=None):
    x, W, U, b, h0 = args
    hs, h_T, _ = ref.gru_forward(x, W, U, b, h0, keep, hmask)
    grads = ref.gru_backward(x, W, U, b, dh, h0, dh_T, keep, hmask)
    return {"hs": hs, "h_T": h_T, **grads}


def _lstm_case(rng, dtype=np.float64):
    x, W, U, b = ref.random_layer(rng, B, T, I, H)
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    grads = rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return [a.astype(dtype) for a in (x, W, U, b, h0, c0)], [g.astype(dtype) for g in grads]


def _gru_case(rng, dtype=np.float64):
    x, W, U, b = ref.random_gru_layer(rng, B, T, I, H)
    h0 = rng.standard_normal((B, H))
    grads = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    return [a.astype(dtype) for a in (x, W, U, b, h0)], [g.astype(dtype) for g in grads]


CELLS = {"lstm": (_lstm_case, _lstm, _lstm_ref), "gru": (_gru_case, _gru, _gru_ref)}
KEYS = {"lstm": ("hs", "h_T", "c_T", "dx", "dW", "dU", "db", "dh0", "dc0"),
        "gru": ("hs", "h_T", "dx", "dW", "dU", "db", "dh0")}


def _check(got, want, keys, tol):
    for key in keys:
        assert got[key].shape == want[key].shape, key
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masks", ["keep", "hmask", "both"])
def test_masks_match_the_reference(rng, cell, masks):
    case, run, run_ref = CELLS[cell]
    args, grads = case(rng)
    keep = KEEP if masks in ("keep", "both") else None
    hmask = _hmask(rng, np.float64) if masks in ("hmask", "both") else None
    got = run(args, *grads, keep=keep, hmask=hmask)
    want = run_ref(args, *grads, keep=keep, hmask=hmask)
    _check(got, want, KEYS[cell], TOL[np.float64])
    if keep is not None:
        # skipped steps: the state passes through and nothing reaches x
        skipped = KEEP == 0
        assert np.all(got["dx"][skipped] == 0)
        np.testing.assert_array_equal(got["hs"][3], np.broadcast_to(args[4][3], (T, H)))  # all-zero row: h0
        if cell == "lstm":
            np.testing.assert_array_equal(got["c_T"][3], args[5][3])
            np.testing.assert_allclose(got["dc0"][3], grads[2][3], **TOL[np.float64])  # dc_T untouched
        np.testing.assert_allclose(got["dh0"][3], grads[1][3] + grads[0][3].sum(0), **TOL[np.float64])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("limit", [0, 1 << 20], ids=["U-global", "U-shared"])
def test_masks_with_u_in_shared_memory_or_not(rng, monkeypatch, cell, limit):
    from numlstm.kernels import cuda_common as common
    from numlstm.kernels import cuda_sizes as sizes

    monkeypatch.setattr(sizes, "SHARED_LIMIT", limit)
    case, run, run_ref = CELLS[cell]
    args, grads = case(rng)
    assert (common.shared_bytes(args[2]) > 0) == (limit > 0)
    hmask = _hmask(rng, np.float64)
    _check(run(args, *grads, keep=KEEP, hmask=hmask), run_ref(args, *grads, keep=KEEP, hmask=hmask), KEYS[cell],
           TOL[np.float64])


@pytest.mark.parametrize("cell", CELLS)
def test_masks_in_float32(rng, cell):
    case, run, run_ref = CELLS[cell]
    args, grads = case(rng, np.float32)
    hmask = _hmask(rng, np.float32)
    got = run(args, *grads, keep=KEEP, hmask=hmask)
    want = run_ref([a.astype(np.float64) for a in args], *(g.astype(np.float64) for g in grads), keep=KEEP,
                   hmask=hmask.astype(np.float64))
    for key in KEYS[cell]:
        assert got[key].dtype == np.float32, key
    _check(got, want, KEYS[cell], dict(rtol=1e-4, atol=1e-4))


@pytest.mark.parametrize("cell", CELLS)
def test_no_masks_or_masks_of_ones_are_the_unmasked_layer(rng, cell):
    case, run, run_ref = CELLS[cell]
    args, grads = case(rng)
    plain = run(args, *grads)
    _check(plain, run_ref(args, *grads), KEYS[cell], TOL[np.float64])
    # masks select other compiled kernels: on a GPU their rounding may differ in the last bits
    same = dict(rtol=1e-13, atol=1e-13)
    _check(run(args, *grads, keep=np.ones((B, T), np.int8)), plain, KEYS[cell], same)
    _check(run(args, *grads, hmask=np.ones((B, H))), plain, KEYS[cell], same)
    _check(run(args, *grads, keep=np.ones((B, T), np.int8), hmask=np.ones((B, H))), plain, KEYS[cell], same)


@pytest.mark.parametrize("cell", CELLS)
def test_skipped_steps_may_hold_anything(rng, cell):
    """Padding is never read: NaN inputs at skipped steps change nothing."""
    case, run, _ = CELLS[cell]
    args, grads = case(rng)
    want = run(args, *grads, keep=KEEP)
    args[0] = args[0].copy()
    args[0][KEEP == 0] = np.nan
    got = run(args, *grads, keep=KEEP)
    for key in KEYS[cell]:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
