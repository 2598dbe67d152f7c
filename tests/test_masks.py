"""Skipped steps (``keep``), recurrent dropout (``hmask``), dropout masks, bidirectional
layers and token networks with padding, on the CPU, in float64.

The kernels are checked against ``reference.py`` (itself checked by finite
differences); the network against the reference composed by hand and by finite
differences with fixed dropout seeds.
"""

import numpy as np
import pytest

import reference as ref
from numlstm.core import losses
from numlstm.core.network import Network
from numlstm.core.cpu_engine import batch_loss_grad, network_forward
from numlstm.kernels import cpu, dropout, gru_cpu

f64 = np.float64
MSE = (losses.MSE, np.zeros(1))

B, T, I, H = 4, 5, 2, 3
KEEPS = {
    "none": None,
    "pre": [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [0, 0, 0, 0, 1]],
    "post": [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0]],
    "interleaved": [[1, 0, 1, 0, 1], [0, 1, 1, 0, 1], [1, 1, 0, 1, 1], [0, 1, 0, 0, 1]],
    "zero_row": [[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [1, 1, 0, 0, 0]],
}


def _hmask(rng, rows, units, rate=0.4):
    return (rng.random((rows, units)) >= rate) / (1 - rate)


# --- 1. CPU kernels against the reference ------------------------------------------------------


def _run_lstm_kernel(x, W, U, b, h0, c0, dh, dh_T, dc_T, keep, hmask, n_chunks):
    zs, cs, hs = np.empty((B, T, 4 * H)), np.empty((B, T, H)), np.empty((B, T, H))
    cpu.layer_forward(x, W, U, b, h0, c0, zs, cs, hs, n_chunks, keep, hmask)
    out = {"hs": hs.copy(), "h_T": hs[:, -1].copy(), "c_T": cs[:, -1].copy()}
    dh0, dc0 = dh_T.copy(), dc_T.copy()
    dW, dU, db, dx = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(x)
    cpu.layer_backward(x, W, U, h0, c0, zs, cs, hs, dh, dh0, dc0, dW, dU, db, dx, n_chunks, True, keep, hmask)
    out.update(dx=dx, dW=dW, dU=dU, db=db, dh0=dh0, dc0=dc0)
    return out


def _run_gru_kernel(x, W, U, b, h0, dh, dh_T, keep, hmask, n_chunks):
    xs, gs, hs = np.empty((B, T, 3 * H)), np.empty((B, T, 3 * H)), np.empty((B, T, H))
    gru_cpu.layer_forward(x, W, U, b, h0, xs, gs, hs, n_chunks, keep, hmask)
    out = {"hs": hs.copy(), "h_T": hs[:, -1].copy()}
    dh0 = dh_T.copy()
    dW, dU, db, dx = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(x)
    gru_cpu.layer_backward(x, W, U, h0, xs, gs, hs, dh, dh0, dW, dU, db, dx, n_chunks, True, keep, hmask)
    out.update(dx=dx, dW=dW, dU=dU, db=db, dh0=dh0)
    return out


@pytest.mark.parametrize("masked", [False, True], ids=["no_hmask", "hmask"])
@pytest.mark.parametrize("keep_name", list(KEEPS))
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_kernels_with_keep_and_hmask_match_reference(rng, cell, keep_name, masked):
    keep_ref = KEEPS[keep_name]
    keep = cpu.NO_KEEP if keep_ref is None else np.array(keep_ref, dtype=np.int8)
    hmask_ref = _hmask(rng, B, H) if masked else None
    hmask = cpu.no_hmask(f64) if hmask_ref is None else hmask_ref
    if masked:
        assert (hmask_ref == 0).any() and (hmask_ref > 1).any()
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dh, dh_T, dc_T = rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    if cell == "lstm":
        x, W, U, b = ref.random_layer(rng, B, T, I, H)
        hs, (h_T, c_T), _ = ref.lstm_forward(x, W, U, b, h0, c0, keep=keep_ref, hmask=hmask_ref)
        want = {"hs": hs, "h_T": h_T, "c_T": c_T,
                **ref.lstm_backward(x, W, U, b, dh, h0, c0, dh_T, dc_T, keep=keep_ref, hmask=hmask_ref)}
        runs = [_run_lstm_kernel(x, W, U, b, h0, c0, dh, dh_T, dc_T, keep, hmask, n) for n in (1, 2)]
    else:
        x, W, U, b = ref.random_gru_layer(rng, B, T, I, H)
        hs, h_T, _ = ref.gru_forward(x, W, U, b, h0, keep=keep_ref, hmask=hmask_ref)
        want = {"hs": hs, "h_T": h_T, **ref.gru_backward(x, W, U, b, dh, h0, dh_T, keep=keep_ref, hmask=hmask_ref)}
        runs = [_run_gru_kernel(x, W, U, b, h0, dh, dh_T, keep, hmask, n) for n in (1, 2)]
    assert set(runs[0]) == set(want)
    for key in want:
        for n_chunks, got in zip((1, 2), runs):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{key} n_chunks={n_chunks}")
        np.testing.assert_allclose(runs[0][key], runs[1][key], rtol=1e-13, atol=1e-14, err_msg=f"{key} 1 vs 2 chunks")
    if keep_ref is not None:
        k = np.array(keep_ref, bool)
        # a skipped step has no input gradient; an all-skipped row passes its state and gradient through
        assert (runs[0]["dx"][~k] == 0).all()
        for r in np.flatnonzero(~k.any(axis=1)):
            np.testing.assert_array_equal(runs[0]["hs"][r], np.broadcast_to(h0[r], (T, H)))
            np.testing.assert_allclose(runs[0]["dh0"][r], dh_T[r] + dh[r].sum(axis=0), rtol=1e-13)
            if cell == "lstm":
                np.testing.assert_array_equal(runs[0]["c_T"][r], c0[r])
                np.testing.assert_array_equal(runs[0]["dc0"][r], dc_T[r])


# --- 2. the reference with keep and hmask, by finite differences -----------------------------


def _numeric_grad(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reference_with_keep_and_hmask_by_finite_differences(rng, cell):
    b_, t_ = 3, 4
    keep = np.array([[0, 1, 1, 1], [1, 0, 1, 0], [1, 1, 0, 0]])
    hmask = _hmask(rng, b_, H)
    G, g_h = rng.standard_normal((b_, t_, H)), rng.standard_normal((b_, H))
    h0 = rng.standard_normal((b_, H))
    if cell == "lstm":
        x, W, U, b = ref.random_layer(rng, b_, t_, I, H)
        c0, g_c = rng.standard_normal((b_, H)), rng.standard_normal((b_, H))
        arrays = {"dx": x, "dW": W, "dU": U, "db": b, "dh0": h0, "dc0": c0}

        def loss():
            hs, (h_T, c_T), _ = ref.lstm_forward(x, W, U, b, h0, c0, keep=keep, hmask=hmask)
            return (hs * G).sum() + (h_T * g_h).sum() + (c_T * g_c).sum()

        got = ref.lstm_backward(x, W, U, b, G, h0, c0, g_h, g_c, keep=keep, hmask=hmask)
    else:
        x, W, U, b = ref.random_gru_layer(rng, b_, t_, I, H)
        arrays = {"dx": x, "dW": W, "dU": U, "db": b, "dh0": h0}

        def loss():
            hs, h_T, _ = ref.gru_forward(x, W, U, b, h0, keep=keep, hmask=hmask)
            return (hs * G).sum() + (h_T * g_h).sum()

        got = ref.gru_backward(x, W, U, b, G, h0, g_h, keep=keep, hmask=hmask)
    assert set(got) == set(arrays)
    for key, a in arrays.items():
        np.testing.assert_allclose(got[key], _numeric_grad(loss, a), rtol=1e-6, atol=1e-8, err_msg=key)
    assert (got["dx"][keep == 0] == 0).all()


# --- 3. dropout masks ----------------------------------------------------------------------


def test_dropout_mask_reproducible_and_distinct():
    s0 = dropout.stream(row=0, kind=dropout.INPUT_MASK)
    m = dropout.mask(20, 30, 7, 3, s0, 0.5)
    np.testing.assert_array_equal(m, dropout.mask(20, 30, 7, 3, s0, 0.5))
    others = [dropout.mask(20, 30, 8, 3, s0, 0.5), dropout.mask(20, 30, 7, 4, s0, 0.5),
              dropout.mask(20, 30, 7, 3, dropout.stream(row=0, kind=dropout.STATE_MASK), 0.5),
              dropout.mask(20, 30, 7, 3, dropout.stream(row=1, kind=dropout.INPUT_MASK), 0.5),
              dropout.mask(20, 30, 2 ** 40 + 7, 3, s0, 0.5)]  # the seed's high word counts too
    for other in others:
        assert (other != m).mean() > 0.3
    # streams never collide between rows and kinds
    kinds = (dropout.INPUT_MASK, dropout.STATE_MASK, dropout.STEP_MASK, dropout.HEAD_MASK)
    streams = {dropout.stream(r, k) for r in range(1000) for k in kinds}
    assert len(streams) == 4000
    # a row of the mask does not depend on how many rows are drawn
    np.testing.assert_array_equal(dropout.mask(5, 30, 7, 3, s0, 0.5), m[:5])


@pytest.mark.parametrize("rate", [0.3, 0.7])
def test_dropout_mask_rate_and_scale(rate):
    m = dropout.mask(100, 100, 123, 9, dropout.stream(2, dropout.STATE_MASK), rate)
    assert m.shape == (100, 100) and m.dtype == f64
    assert abs((m == 0).mean() - rate) < 0.02
    kept = m[m != 0]
    np.testing.assert_allclose(kept, 1.0 / (1.0 - rate), rtol=1e-15)
    assert dropout.mask(3, 4, 1, 1, 0, 0.0).min() == 1.0  # rate 0 keeps everything
    assert dropout.mask(3, 4, 1, 1, 0, 0.3, dtype=np.float32).dtype == np.float32


def test_dropout_uniform_is_uniform():
    u = np.array([dropout.uniform(5, 0, 1, r, c) for r in range(50) for c in range(40)])
    assert ((u >= 0) & (u < 1)).all()
    hist = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.abs(hist - 0.1).max() < 0.03


# --- 4. dropout in the network: one mask per sequence, reused at every step -------------------


def _network(rng, cell, n_in=I, units=(3, 2), n_out=1, **kw):
    net = Network(n_in, units, n_out, f64, cell=cell, **kw).initialize(rng)
    net.params += 0.2 * rng.standard_normal(net.n_params)
    return net


def _ref_layer(cell, x, W, U, b, keep=None, hmask=None):
    if cell == "lstm":
        return ref.lstm_forward(x, W, U, b, keep=keep, hmask=hmask)[0]
    return ref.gru_forward(x, W, U, b, keep=keep, hmask=hmask)[0]


@pytest.mark.parametrize("drop", [(0.5, 0.0), (0.0, 0.5), (0.3, 0.4)], ids=["input", "recurrent", "both"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_network_dropout_masks_reused_at_every_step(rng, cell, drop):
    n, t_ = 6, 4
    net = _network(rng, cell)
    X, Y = rng.standard_normal((n, t_, I)), rng.standard_normal((n, 1))
    seed, step = 11, 5
    h = X
    for row in range(2):
        W, U, b = net.layer(net.params, row)
        imask = dropout.mask(n, h.shape[2], seed, step, dropout.stream(row=row, kind=dropout.INPUT_MASK), drop[0])
        hmask = dropout.mask(n, U.shape[0], seed, step, dropout.stream(row=row, kind=dropout.STATE_MASK), drop[1])
        h = _ref_layer(cell, h * imask[:, None, :], W, U, b, hmask=hmask)
    Wd, bd = net.head_views(net.params)
    pred = h[:, -1] @ Wd + bd
    grads = np.zeros_like(net.params)
    loss = batch_loss_grad(net.params, grads, net.table, net.head, X, Y, np.ones_like(Y), *MSE, 2,
                           drop=drop, seed=seed, step=step)
    assert loss == pytest.approx(np.mean((pred - Y) ** 2), rel=1e-12)
    out = network_forward(net.params, net.table, net.head, X, 2, drop=drop, seed=seed, step=step)[0]
    np.testing.assert_allclose(out, pred, rtol=1e-12, atol=1e-13)
    # another step draws other masks; no dropout is the plain network
    other = network_forward(net.params, net.table, net.head, X, 2, drop=drop, seed=seed, step=step + 1)[0]
    assert not np.allclose(other, pred)
    plain = network_forward(net.params, net.table, net.head, X, 2)[0]
    h = X
    for row in range(2):
        h = _ref_layer(cell, h, *net.layer(net.params, row))
    np.testing.assert_allclose(plain, h[:, -1] @ Wd + bd, rtol=1e-12, atol=1e-13)


def _check_gradient(rng, net, X, Y, n_checks=40, **kw):
    M = np.ones_like(Y)
    grads = np.zeros_like(net.params)
    loss = batch_loss_grad(net.params, grads, net.table, net.head, X, Y, M, *MSE, 2, **kw)
    assert np.isfinite(loss)

    def f(p):
        return batch_loss_grad(p, np.zeros_like(p), net.table, net.head, X, Y, M, *MSE, 2, **kw)

    eps = 1e-6
    idx = rng.choice(net.n_params, size=min(n_checks, net.n_params), replace=False)
    for i in idx:
        plus, minus = net.params.copy(), net.params.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric = (f(plus) - f(minus)) / (2 * eps)
        assert grads[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), i
    return grads


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_network_gradient_with_dropout_by_finite_differences(rng, cell):
    net = _network(rng, cell)
    X, Y = rng.standard_normal((5, 4, I)), rng.standard_normal((5, 1))
    kw = dict(drop=(0.3, 0.4), seed=3, step=2)
    grads = _check_gradient(rng, net, X, Y, **kw)
    again = np.zeros_like(grads)
    batch_loss_grad(net.params, again, net.table, net.head, X, Y, np.ones_like(Y), *MSE, 2, **kw)
    np.testing.assert_array_equal(again, grads)  # fixed seed and step: deterministic


# --- 4b. the dropout plan: rates per layer, per-step input masks, dropout on the head's input --------


def _plan(net, rows, head=0.0):
    """A dropout plan from ``rows`` (per table row: rate, recurrent rate, per step) and ``head``."""
    plan = np.zeros((net.table.shape[0] + 1, 3))
    plan[:-1] = rows
    plan[-1, 0] = head
    return plan


def _step_mask(n, t_, units, seed, step, row, rate):
    """A per-step input mask as the network draws it, (n, time, units)."""
    return dropout.mask(n, t_ * units, seed, step, dropout.stream(row, dropout.STEP_MASK), rate).reshape(n, t_, units)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_plan_matches_masks_composed_by_hand(rng, cell):
    n, t_ = 6, 4
    net = _network(rng, cell)
    X, Y = rng.standard_normal((n, t_, I)), rng.standard_normal((n, 1))
    seed, step = 11, 5
    plan = _plan(net, [[0.3, 0.0, 1], [0.2, 0.4, 0]], head=0.5)
    W, U, b = net.layer(net.params, 0)
    h = _ref_layer(cell, X * _step_mask(n, t_, I, seed, step, 0, 0.3), W, U, b)  # a new mask at every step
    W, U, b = net.layer(net.params, 1)
    imask = dropout.mask(n, h.shape[2], seed, step, dropout.stream(1, dropout.INPUT_MASK), 0.2)
    hmask = dropout.mask(n, U.shape[0], seed, step, dropout.stream(1, dropout.STATE_MASK), 0.4)
    h = _ref_layer(cell, h * imask[:, None, :], W, U, b, hmask=hmask)
    head_mask = dropout.mask(n, h.shape[2], seed, step, dropout.stream(0, dropout.HEAD_MASK), 0.5)
    assert 0 < (head_mask == 0).sum() < head_mask.size
    Wd, bd = net.head_views(net.params)
    pred = (h[:, -1] * head_mask) @ Wd + bd
    out, _, cache, last = network_forward(net.params, net.table, net.head, X, 2, drop=plan, seed=seed, step=step)
    np.testing.assert_allclose(out, pred, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(last[:, 0], h[:, -1] * head_mask, rtol=1e-12, atol=1e-13)
    assert cache.imasks[0].shape == (n, t_ * I) and cache.head_mask.shape == (n, 2)
    grads = np.zeros_like(net.params)
    loss = batch_loss_grad(net.params, grads, net.table, net.head, X, Y, np.ones_like(Y), *MSE, 2,
                           drop=plan, seed=seed, step=step)
    assert loss == pytest.approx(np.mean((pred - Y) ** 2), rel=1e-12)
    # the legacy pair is the plan with those rates on every row
    pair = network_forward(net.params, net.table, net.head, X, 2, drop=(0.3, 0.4), seed=seed, step=step)[0]
    same = network_forward(net.params, net.table, net.head, X, 2, drop=_plan(net, [[0.3, 0.4, 0]] * 2), seed=seed,
                           step=step)[0]
    np.testing.assert_array_equal(pair, same)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_plan_gradient_by_finite_differences(rng, cell):
    net = _network(rng, cell)
    X, Y = rng.standard_normal((5, 4, I)), rng.standard_normal((5, 1))
    plan = _plan(net, [[0.3, 0.2, 1], [0.4, 0.0, 1]], head=0.3)
    grads = _check_gradient(rng, net, X, Y, n_checks=60, drop=plan, seed=3, step=2)
    plain = np.zeros_like(grads)
    batch_loss_grad(net.params, plain, net.table, net.head, X, Y, np.ones_like(Y), *MSE, 2)
    assert not np.allclose(grads, plain)  # the masks took part


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_layers_share_their_per_step_mask(rng, cell):
    n, t_ = 4, 5
    net = _network(rng, cell, units=(3, 2), n_out=2, bidirectional=True)
    X, Y = rng.standard_normal((n, t_, I)), rng.standard_normal((n, 2))
    seed, step = 4, 7
    plan = _plan(net, [[0.0, 0.0, 0]] * 2 + [[0.5, 0.0, 1]] * 2, head=0.25)
    h = X
    for layer in range(2):
        if layer == 1:  # one mask on the layer's input, which the reverse direction reads reversed
            h = h * _step_mask(n, t_, h.shape[2], seed, step, 2, 0.5)
        fwd = _ref_layer(cell, h, *net.layer(net.params, layer, 0))
        rev = _ref_layer(cell, h[:, ::-1], *net.layer(net.params, layer, 1))
        last = np.concatenate([fwd[:, -1], rev[:, -1]], axis=1)
        h = np.concatenate([fwd, rev[:, ::-1]], axis=2)
    last = last * dropout.mask(n, last.shape[1], seed, step, dropout.stream(0, dropout.HEAD_MASK), 0.25)
    Wd, bd = net.head_views(net.params)
    out = network_forward(net.params, net.table, net.head, X, 2, drop=plan, seed=seed, step=step)[0]
    np.testing.assert_allclose(out, last @ Wd + bd, rtol=1e-12, atol=1e-13)
    _check_gradient(rng, net, X, Y, n_checks=60, drop=plan, seed=seed, step=step)


def test_bad_dropout_plans_are_refused(rng):
    net = _network(rng, "lstm")
    X = rng.standard_normal((2, 3, I))
    with pytest.raises(ValueError, match=r"dropout plan of shape \(3, 3\).*got shape \(2, 3\)"):
        network_forward(net.params, net.table, net.head, X, 2, drop=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"rates must be in \[0, 1\)"):
        network_forward(net.params, net.table, net.head, X, 2, drop=_plan(net, [[1.0, 0, 0]] * 2))
    two = _network(rng, "lstm", bidirectional=True)
    with pytest.raises(ValueError, match="shared by its two directions"):
        network_forward(two.params, two.table, two.head, X, 2, drop=_plan(two, [[0.2, 0, 1], [0.2, 0, 0]] * 2))


# --- 5. bidirectional layers ----------------------------------------------------------------


def _ref_bidirectional(cell, net, X, keep=None):
    """The stack by hand: each layer's forward direction on x, its reverse one on x
    reversed in time, outputs concatenated at the same position; the head input."""
    h = X
    for layer in range(len(net.hidden_sizes)):
        fwd = _ref_layer(cell, h, *net.layer(net.params, layer, 0), keep=keep)
        rev = _ref_layer(cell, h[:, ::-1], *net.layer(net.params, layer, 1),
                         keep=None if keep is None else keep[:, ::-1])
        last = np.concatenate([fwd[:, -1], rev[:, -1]], axis=1)
        h = np.concatenate([fwd, rev[:, ::-1]], axis=2)
    return last


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_matches_reference(rng, cell):
    X = rng.standard_normal((5, 4, I))
    one = _network(rng, cell, units=(3,), n_out=2, bidirectional=True)
    assert one.table.shape[0] == 2 and one.head[0] == 6
    w = one.get_weights()["layers"][0]
    out, _, _, last = network_forward(one.params, one.table, one.head, X, 2)
    fwd = _ref_layer(cell, X, w["W"], w["U"], w["b"])[:, -1]
    rev = _ref_layer(cell, X[:, ::-1], w["reverse"]["W"], w["reverse"]["U"], w["reverse"]["b"])[:, -1]
    np.testing.assert_allclose(last[:, 0], np.concatenate([fwd, rev], axis=1), rtol=1e-12, atol=1e-13)
    Wd, bd = one.head_views(one.params)
    np.testing.assert_allclose(out, last[:, 0] @ Wd + bd, rtol=1e-12, atol=1e-13)
    two = _network(rng, cell, units=(3, 2), n_out=1, bidirectional=True)
    out, _, _, last = network_forward(two.params, two.table, two.head, X, 2)
    np.testing.assert_allclose(last[:, 0], _ref_bidirectional(cell, two, X), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("drop", [None, (0.25, 0.25)], ids=["plain", "dropout"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_gradient_by_finite_differences(rng, cell, drop):
    net = _network(rng, cell, units=(3, 2), n_out=2, bidirectional=True)
    X, Y = rng.standard_normal((4, 5, I)), rng.standard_normal((4, 2))
    grads = _check_gradient(rng, net, X, Y, n_checks=60, drop=drop, seed=9, step=1)
    # every direction of every layer learns
    for layer in range(2):
        for d in range(2):
            for view in net.layer(grads, layer, d):
                assert np.abs(view).max() > 0, (layer, d)


# --- 6. token networks: padding changes nothing ---------------------------------------------

V, E = 9, 3


def _token_net(rng, bidirectional=False):
    net = Network(E, (4,), 1, f64, bidirectional=bidirectional, vocabulary=V).initialize(rng)
    net.params += 0.3 * rng.standard_normal(net.n_params)
    return net


def _predict(net, X):
    return network_forward(net.params, net.table, net.head, np.ascontiguousarray(X, dtype=np.int64), 2)[0]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_padding_changes_nothing(rng, bidirectional):
    net = _token_net(rng, bidirectional)
    seqs = [[3, 1, 4], [5, 8, 2, 6, 7], [2], [8, 8, 1, 5]]
    L = 7
    alone = np.concatenate([_predict(net, np.array([s])) for s in seqs])
    pre = np.zeros((len(seqs), L), np.int64)
    post = np.zeros((len(seqs), L), np.int64)
    for r, s in enumerate(seqs):
        pre[r, L - len(s):] = s
        post[r, :len(s)] = s
    np.testing.assert_allclose(_predict(net, pre), alone, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(_predict(net, post), alone, rtol=1e-12, atol=1e-13)
    # padding in the middle is skipped too; the embedding row of token 0 is never read
    mid = np.array([[3, 0, 0, 1, 4]])
    np.testing.assert_allclose(_predict(net, mid), alone[:1], rtol=1e-12, atol=1e-13)
    changed = net.params.copy()
    net.embedding(changed)[0] = 100.0
    np.testing.assert_array_equal(
        network_forward(changed, net.table, net.head, pre, 2)[0], _predict(net, pre))
    # the head input: the embedded sequences through the reference with keep = tokens != 0
    x = net.embedding(net.params)[post]
    last = network_forward(net.params, net.table, net.head, post, 2)[3][:, 0]
    keep = (post != 0).astype(int)
    if bidirectional:
        want = _ref_bidirectional("lstm", net, x, keep)
    else:
        want = _ref_layer("lstm", x, *net.layer(net.params, 0), keep=keep)[:, -1]
    np.testing.assert_allclose(last, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_embedding_gradient_by_finite_differences(rng, bidirectional):
    net = _token_net(rng, bidirectional)
    X = np.array([[0, 0, 3, 1, 4], [5, 8, 2, 6, 0], [0, 2, 0, 2, 0], [0, 0, 0, 0, 0]], dtype=np.int64)
    Y = rng.standard_normal((4, 1))
    M = np.ones_like(Y)
    grads = np.zeros_like(net.params)
    batch_loss_grad(net.params, grads, net.table, net.head, X, Y, M, *MSE, 2)
    dE = net.embedding(grads)
    assert (dE[0] == 0).all()  # padding
    assert (dE[7] == 0).all()  # a token that does not occur
    assert np.abs(dE[[1, 2, 3, 4, 5, 6, 8]]).min(axis=1).max() > 0

    def f(p):
        return batch_loss_grad(p, np.zeros_like(p), net.table, net.head, X, Y, M, *MSE, 2)

    eps = 1e-6
    idx = list(range(V * E)) + list(rng.choice(np.arange(V * E, net.n_params), size=20, replace=False))
    for i in idx:
        plus, minus = net.params.copy(), net.params.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric = (f(plus) - f(minus)) / (2 * eps)
        assert grads[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), i
    # an all-padding row predicts the head's bias alone
    Wd, bd = net.head_views(net.params)
    np.testing.assert_allclose(_predict(net, X[3:]), bd[None], rtol=1e-14)
