"""The register-resident float32 LSTM kernels, the weight-gradient product and the
trainer's dh_T / prediction paths, against the NumPy reference.

Runs on a real GPU, or on the CUDA simulator (NUMBA_ENABLE_CUDASIM=1): the fast
kernels take float32 layers of hidden <= FAST_HIDDEN without masks, so the
shapes here are small (a block is 4 * hidden threads) and cover a partial
last block (batch not a multiple of FAST_ROWS) and a hidden size that is not a
multiple of 4 (padded quarters).
"""

import numpy as np
import pytest

import reference as ref
from conftest import cuda_marks

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]

F32 = dict(rtol=2e-4, atol=5e-5)


def _dev(a):
    from numba import cuda

    return cuda.to_device(np.ascontiguousarray(a))


def _check_layer(rng, B, T, I, H, head_only):
    """A float32 layer forward, forward without what only training reads, and backward,
    against the float64 reference."""
    from numlstm.kernels import cuda as k

    x, W, U, b = ref.random_layer(rng, B, T, I, H)
    h0, c0 = rng.standard_normal((B, H)) * 0.5, rng.standard_normal((B, H)) * 0.5
    dh = np.zeros((B, T, H)) if head_only else rng.standard_normal((B, T, H))
    dh_T, dc_T = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    f = [a.astype(np.float32) for a in (x, W, U, b, h0, c0)]
    d_x, d_W, d_U, d_b, d_h0, d_c0 = (_dev(a) for a in f)
    zs, cs, hs = k.layer_forward(d_x, d_W, d_U, d_b, d_h0, d_c0)
    h_ref, (h_T_ref, c_T_ref), _ = ref.lstm_forward(x, W, U, b, h0, c0)
    np.testing.assert_allclose(hs.copy_to_host(), h_ref, **F32)
    np.testing.assert_allclose(cs.copy_to_host()[:, -1], c_T_ref, **F32)

    _, _, last = k.layer_forward(d_x, d_W, d_U, d_b, d_h0, d_c0, store=False, all_h=False)
    np.testing.assert_array_equal(last.copy_to_host()[:, -1], hs.copy_to_host()[:, -1])

    d_dh, d_dc = _dev(dh_T.astype(np.float32)), _dev(dc_T.astype(np.float32))
    dx, dW, dU, db = k.layer_backward(d_x, d_W, None, d_h0, d_c0, zs, cs, hs,
                                      None if head_only else _dev(dh.astype(np.float32)), d_dh, d_dc, U=d_U)
    want = ref.lstm_backward(x, W, U, b, dh, h0, c0, dh_T, dc_T)
    got = {"dx": dx, "dW": dW, "dU": dU, "db": db, "dh0": d_dh, "dc0": d_dc}
    for key, value in got.items():
        np.testing.assert_allclose(value.copy_to_host(), want[key], err_msg=key, **F32)


@pytest.mark.parametrize("B, T, I, H", [(6, 4, 3, 8), (5, 3, 2, 5)])
@pytest.mark.parametrize("head_only", [False, True], ids=["dh-every-step", "dh_T-only"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused-grads", "split-K-grads"])
def test_fast_kernels_match_the_reference(rng, monkeypatch, B, T, I, H, head_only, fused):
    from numlstm.kernels import cuda_fast as fast
    from numlstm.kernels import cuda_sizes as sizes

    monkeypatch.setattr(sizes, "FAST_FUSED_GRADS", fused)
    assert fast.fast_path(np.float32, H, I)
    _check_layer(rng, B, T, I, H, head_only)


@pytest.mark.parametrize("B, T, I, H", [(5, 3, 2, 6), (3, 1, 3, 9)])
@pytest.mark.parametrize("head_only", [False, True], ids=["dh-every-step", "dh_T-only"])
@pytest.mark.parametrize("grid", [True, False], ids=["cooperative", "launch-per-step"])
def test_step_kernels_match_the_reference(rng, monkeypatch, B, T, I, H, head_only, grid):
    """Hidden > FAST_HIDDEN (set small here): every step in one cooperative launch (on the
    simulator, one block looping over every tile), or one launch per step; ragged row
    and unit tiles."""
    from numlstm.kernels import cuda_fast as fast
    from numlstm.kernels import cuda_sizes as sizes

    monkeypatch.setattr(sizes, "FAST_HIDDEN", 4)
    monkeypatch.setattr(sizes, "STEP_GRID", grid)
    assert fast.step_path(np.float32, H) and not fast.fast_path(np.float32, H, I)
    _check_layer(rng, B, T, I, H, head_only)


def test_fast_kernels_are_bitwise_repeatable(rng):
    from numlstm.kernels import cuda as k

    B, T, I, H = 5, 3, 2, 8
    f = [a.astype(np.float32) for a in ref.random_layer(rng, B, T, I, H)]
    h0 = np.zeros((B, H), np.float32)
    dh = rng.standard_normal((B, T, H)).astype(np.float32)
    runs = []
    for _ in range(2):
        d_x, d_W, d_U, d_b, d_h0 = (_dev(a) for a in (*f, h0))
        zs, cs, hs = k.layer_forward(d_x, d_W, d_U, d_b, d_h0, d_h0)
        d_dh, d_dc = _dev(h0), _dev(h0)
        out = k.layer_backward(d_x, d_W, None, d_h0, d_h0, zs, cs, hs, _dev(dh), d_dh, d_dc, U=d_U)
        runs.append([hs.copy_to_host()] + [a.copy_to_host() for a in out])
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("masks", [False, True], ids=["plain", "keep-hmask"])
def test_weight_gradient_product(rng, dtype, masks):
    """The split-K product over several chunks, tiles of rows and columns with ragged edges."""
    from numlstm.kernels import cuda as k
    from numlstm.kernels import cuda_common as common

    B, T, I, H, G = 3, 5, 3, 4, 12
    x, hs = rng.standard_normal((B, T, I)), rng.standard_normal((B, T, H))
    h0, dzs = rng.standard_normal((B, H)), rng.standard_normal((B, T, G))
    keep = (rng.random((B, T)) > 0.3).astype(np.int8) if masks else None
    hmask = rng.random((B, H)) if masks else None
    x_in = x.copy()
    if masks:
        x_in[keep == 0] = np.nan  # a skipped step's input is never read
    h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1) * (1 if hmask is None else hmask[:, None])
    a = np.concatenate([x, h_prev, np.ones((B, T, 1))], axis=2)
    if masks:
        a = a * keep[:, :, None]
    want = np.einsum("btr,btk->rk", a, dzs)
    grads = _dev(np.zeros((I + H + 1, G), dtype))
    args = [_dev(v.astype(dtype)) for v in (x_in, h0, hs, dzs)]
    k_arr, h_arr, use_keep, use_hmask = common.mask_args(None if keep is None else _dev(keep),
                                                     None if hmask is None else _dev(hmask.astype(dtype)), dtype)
    k.weight_grads(*args, k_arr, h_arr, use_keep, use_hmask, grads)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else F32
    np.testing.assert_allclose(grads.copy_to_host(), want, **tol)


def test_float32_batch_uses_dh_T_and_matches_the_cpu(rng):
    """One float32 training batch through the fast kernels (the head's gradient as dh_T),
    against the CPU's float32 gradients; and prediction through the last-step-only path."""
    from numba import cuda

    from numlstm.core import gpu, losses
    from numlstm.core.network import Network
    from numlstm.core.optimizers import Adam
    from numlstm.core.cpu_engine import batch_loss_grad
    from numlstm.core.training import predict

    X = rng.standard_normal((6, 4, 3)).astype(np.float32)
    Y = rng.standard_normal((6, 2)).astype(np.float32)
    M = np.ones_like(Y)
    net = Network(3, [8, 5], 2, np.float32).initialize(rng)
    want = np.zeros_like(net.params)
    batch_loss_grad(net.params, want, net.table, net.head, X, Y, M, losses.MSE, np.zeros(1), 1)
    np.testing.assert_allclose(gpu.predict(net, X), predict(net, X), rtol=1e-4, atol=1e-5)
    got = []
    for _ in range(2):  # a fresh trainer each time: the same bits
        trainer = gpu.Trainer(net, X, Y, M, 6, losses.MSE, np.zeros(1), Adam(), None)
        trainer._batch(*(cuda.to_device(a) for a in (X, Y, M)), cuda.to_device(np.zeros(1)), 0)
        got.append(trainer.grads.copy_to_host())
    np.testing.assert_allclose(got[0], want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    np.testing.assert_array_equal(got[0], got[1])
