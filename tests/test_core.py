"""Network, losses and optimizers: finite differences and hand-computed updates."""

import numpy as np
import pytest

import reference as ref
from conftest import on_backends
import numlstm._cells
from numlstm.core import losses
from numlstm.core.network import Network
from numlstm.core.optimizers import KIND_ADAM, KIND_SGD, Adam, SGD, apply_update
from numlstm.core.cpu_engine import batch_loss_grad
from numlstm.core.training import predict

LOSS_CASES = [
    ("mse", losses.MSE, np.zeros(1), 2),
    ("mae", losses.MAE, np.zeros(1), 2),
    ("huber", losses.HUBER, np.array([0.3]), 2),
    ("binary_crossentropy", losses.BINARY_CE, np.zeros(1), 2),
    ("categorical_crossentropy", losses.CATEGORICAL_CE, np.zeros(1), 3),
    ("pinball", losses.PINBALL, np.array([0.1, 0.5, 0.9]), 2),
    ("gaussian_nll", losses.GAUSSIAN_NLL, np.zeros(1), 2),
]


def _net(rng, n_in, units, n_out, dtype=np.float64):
    net = Network(n_in, units, n_out, dtype).initialize(rng)
    net.params += 0.1 * rng.standard_normal(net.n_params)  # off the symmetric init
    return net


def _targets(rng, loss_id, n, O):
    if loss_id == losses.BINARY_CE:
        return (rng.random((n, O)) > 0.5).astype(float)
    if loss_id == losses.CATEGORICAL_CE:
        return np.eye(O)[rng.integers(0, O, n)]
    return rng.standard_normal((n, O))


def _loss_and_gradient(backend, net, X, Y, M, loss_id, lparams):
    """One batch's loss and gradient on ``backend``'s engine (the GPU's: its trainer's batch step)."""
    if backend == "cpu":
        grads = np.zeros_like(net.params)
        return batch_loss_grad(net.params, grads, net.table, net.head, X, Y, M, loss_id, lparams, 2), grads
    from numba import cuda

    from numlstm.core import gpu

    trainer = gpu.Trainer(net, X, Y, M, len(X), loss_id, lparams, Adam(), None)
    d_losses = cuda.to_device(np.zeros(1))
    trainer._batch(*(cuda.to_device(a) for a in (X, Y, M)), d_losses, 0)
    return float(d_losses.copy_to_host()[0]), trainer.grads.copy_to_host()


FD_CASES = [(*case, cell) for case in LOSS_CASES for cell in ("lstm", "gru")]


@pytest.mark.parametrize("name,loss_id,lparams,O,cell,backend",
                         on_backends(*FD_CASES, cuda=[FD_CASES[0], FD_CASES[9], FD_CASES[11]]),  # mse on an
                         indirect=["backend"])  # LSTM, categorical cross-entropy and pinball on a GRU
def test_network_gradient_by_finite_differences(rng, name, loss_id, lparams, O, cell, backend):
    """Every engine's batch gradient (two layers, the head, a masked loss) against central
    differences of the CPU's loss, in float64. The GPU's loss kernel is the CPU's code
    compiled for the GPU, so three cases cover it (each costs a minute on the simulator)."""
    n, T, F = 5, 4, 2
    n_out = O * losses.outputs_per_target(loss_id, lparams.size)
    net = Network(F, (4, 3), n_out, np.float64, cell=cell).initialize(rng)
    net.params += 0.1 * rng.standard_normal(net.n_params)  # off the symmetric init
    X = rng.standard_normal((n, T, F))
    Y = _targets(rng, loss_id, n, O)
    M = np.ones_like(Y)
    if loss_id == losses.CATEGORICAL_CE:
        M[1] = 0
    else:
        M[1, 0] = 0  # a masked target
    loss, grads = _loss_and_gradient(backend, net, X, Y, M, loss_id, lparams)
    assert np.isfinite(loss)
    assert loss == pytest.approx(batch_loss_grad(net.params, np.zeros_like(net.params), net.table, net.head, X, Y, M,
                                                 loss_id, lparams, 2), rel=1e-12)

    def f(p):
        return batch_loss_grad(p, np.zeros_like(p), net.table, net.head, X, Y, M, loss_id, lparams, 2)

    eps = 1e-6
    for i in rng.choice(net.n_params, size=40, replace=False):
        plus, minus = net.params.copy(), net.params.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric = (f(plus) - f(minus)) / (2 * eps)
        assert grads[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, i)


@pytest.mark.parametrize("name,loss_id,lparams,O", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_values_by_hand(name, loss_id, lparams, O):
    pred = np.array([[0.5, -1.0, 2.0, 0.0, 1.0, -0.5]])[:, : O * losses.outputs_per_target(loss_id, lparams.size)]
    Y = np.array([[1.0, 0.0, 1.0]])[:, :O]
    M = np.ones_like(Y)
    d = np.empty_like(pred)
    got = losses.loss_and_grad(loss_id, lparams, pred, Y, M, d)
    p, y = pred[0], Y[0]
    if loss_id == losses.MSE:
        want = np.mean((p - y) ** 2)
    elif loss_id == losses.MAE:
        want = np.mean(np.abs(p - y))
    elif loss_id == losses.HUBER:
        e = np.abs(p - y)
        want = np.mean(np.where(e <= 0.3, 0.5 * e ** 2, 0.3 * (e - 0.15)))
    elif loss_id == losses.BINARY_CE:
        s = 1 / (1 + np.exp(-p))
        want = np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s)))
    elif loss_id == losses.CATEGORICAL_CE:
        want = -np.log(np.exp(p) / np.exp(p).sum())[0] - 0 * y.sum() - np.log(np.exp(p) / np.exp(p).sum())[2]
    elif loss_id == losses.PINBALL:
        q = lparams
        e = y[:, None] - p.reshape(O, 3)
        want = np.mean(np.maximum(q * e, (q - 1) * e))
    else:
        mu, s = p[:O], p[O:]
        want = np.mean(0.5 * (s + (y - mu) ** 2 * np.exp(-s)))
    assert got == pytest.approx(want, rel=1e-12)


def test_fully_masked_batch_has_zero_loss_and_gradient():
    pred = np.ones((2, 1))
    d = np.full_like(pred, 7.0)
    assert losses.loss_and_grad(losses.MSE, np.zeros(1), pred, np.zeros((2, 1)), np.zeros((2, 1)), d) == 0.0
    assert not d.any()


def test_network_prediction_matches_reference(rng, dtype):
    net = _net(rng, 3, (5, 4), 2, dtype)
    X = rng.standard_normal((6, 7, 3)).astype(dtype)
    layers = [tuple(a.astype(np.float64) for a in net.layer(net.params, i)) for i in range(2)]
    head = tuple(a.astype(np.float64) for a in net.head_views(net.params))
    want = ref.network_forward(X.astype(np.float64), layers, head)
    got = predict(net, X)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_keras_initialisation(rng):
    net = Network(3, (8,), 1, np.float64).initialize(rng)
    W, U, b = net.layer(net.params, 0)
    assert np.abs(W).max() <= np.sqrt(6 / (3 + 32))
    np.testing.assert_allclose(U @ U.T, np.eye(8), atol=1e-12)  # orthogonal rows
    np.testing.assert_array_equal(b, np.r_[np.zeros(8), np.ones(8), np.zeros(16)])
    Wd, bd = net.head_views(net.params)
    assert np.abs(Wd).max() <= np.sqrt(6 / 9) and not bd.any()


def test_adam_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    p = np.array([1.0, -2.0])
    g1, g2 = np.array([0.5, -0.25]), np.array([0.1, 0.3])
    state = np.zeros((2, 2))
    hp = Adam(lr, b1, b2, eps).hyperparams()
    apply_update(KIND_ADAM, p, g1, state, 1, hp)
    m, v = (1 - b1) * g1, (1 - b2) * g1 ** 2
    want = np.array([1.0, -2.0]) - lr * np.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(p, want, rtol=1e-14)
    apply_update(KIND_ADAM, p, g2, state, 2, hp)
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2 ** 2
    want = want - lr * np.sqrt(1 - b2 ** 2) / (1 - b1 ** 2) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(p, want, rtol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_steps_by_hand(nesterov):
    lr, mu = 0.1, 0.9
    p = np.array([1.0])
    state = np.zeros((2, 1))
    hp = SGD(lr, mu, nesterov).hyperparams()
    apply_update(KIND_SGD, p, np.array([2.0]), state, 1, hp)
    v1 = -lr * 2.0
    want1 = 1.0 + (mu * v1 - lr * 2.0 if nesterov else v1)
    assert p[0] == pytest.approx(want1, rel=1e-14)
    apply_update(KIND_SGD, p, np.array([-1.0]), state, 2, hp)
    v2 = mu * v1 + lr * 1.0
    want2 = want1 + (mu * v2 + lr * 1.0 if nesterov else v2)
    assert p[0] == pytest.approx(want2, rel=1e-14)


def test_plain_sgd_step():
    p = np.array([1.0, 2.0])
    apply_update(KIND_SGD, p, np.array([1.0, -1.0]), np.zeros((2, 2)), 1, SGD(0.5).hyperparams())
    np.testing.assert_array_equal(p, [0.5, 2.5])


@pytest.mark.parametrize("cell", sorted(numlstm._cells.CELLS))
def test_the_network_layout_and_initialisation_follow_the_cell_spec(cell):
    spec = numlstm._cells.cell_spec(cell)
    net = Network(3, [5], 2, np.float64, cell=cell).initialize(np.random.default_rng(0))
    W, U, b = net.layer(net.params, 0)
    assert W.shape == (3, spec.gates * 5) and U.shape == (5, spec.gates * 5) and b.shape == spec.bias_shape(5)
    first = b.reshape(-1, b.shape[-1])[0]  # the (input) bias
    for block in range(spec.gates):
        expected = 1.0 if block in spec.unit_bias_blocks else 0.0
        assert (first[block * 5:(block + 1) * 5] == expected).all()
    assert (b.reshape(-1, b.shape[-1])[1:] == 0).all()
    assert net.n_params == spec.gates * 5 * (3 + 5 + spec.bias_rows) + 5 * 2 + 2


def test_a_bad_cell_name_is_answered_with_every_registered_cell(monkeypatch):
    """check_cell's message and its fix read the registry: a third cell would be named too."""
    from numlstm import _validation

    monkeypatch.setattr(_validation, "CELLS", ("lstm", "gru", "mgu"))
    with pytest.raises(ValueError, match=r"cell must be 'lstm' or 'gru' or 'mgu' \(the recurrent layer type\), got "
                                         r"'rnn'\. Pass cell='lstm' \(the default\) or cell='gru' or cell='mgu'\.$"):
        _validation.check_cell("rnn")
    assert _validation.check_cell("MGU") == "mgu"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("tokens", [False, True], ids=["values", "tokens"])
def test_prediction_keeping_two_steps_matches_the_training_forward_bit_for_bit(rng, dtype, cell, bidirectional,
                                                                                tokens):
    # Prediction keeps only the current step's pre-activations and the last two cell states of
    # each layer, as rings; the training forward keeps every step for backpropagation. Same numbers.
    from numlstm.core.cpu_engine import network_forward, predict_rows
    net = Network(3, (5, 4), 2, dtype, cell=cell, bidirectional=bidirectional,
                  vocabulary=7 if tokens else 0).initialize(rng)
    net.params += (0.3 * rng.standard_normal(net.n_params)).astype(dtype)
    if tokens:  # padding (token 0) makes steps skipped, the states passing through unchanged
        X = rng.integers(0, 7, (9, 6)).astype(np.int64)
        X[:4, :2] = 0
    else:
        X = rng.standard_normal((9, 6, 3)).astype(dtype)
    for drop in (None, (0.2, 0.3)):  # recurrent dropout (Monte Carlo prediction) too
        full = network_forward(net.params, net.table, net.head, X, 2, drop=drop, seed=3, step=1)
        cached = full[2].firsts[0]
        assert cached.shape[1] == X.shape[1]  # the training forward's cache: every step
        out = np.empty((X.shape[0], 2), dtype=dtype)
        predict_rows(net.params, net.table, net.head, X, 2, out, drop=drop, seed=3, step=1)
        np.testing.assert_array_equal(out, full[0])
        assert np.abs(out).max() > 0.01


def test_buffers_start_on_a_vector_boundary_and_misaligned_ones_give_the_same_results(rng, dtype):
    from numlstm.core.cpu_engine import train_epoch
    from numlstm._aligned import ALIGNMENT, aligned, aligned_zeros
    net = _net(rng, 3, (8,), 2, dtype)
    assert net.params.ctypes.data % ALIGNMENT == 0 and net.params.flags.c_contiguous
    assert Network(3, (8,), 2, dtype).params.ctypes.data % ALIGNMENT == 0
    grads = aligned_zeros(net.n_params, dtype)
    assert grads.ctypes.data % ALIGNMENT == 0 and grads.dtype == dtype and not grads.any()
    assert aligned(net.params) is net.params

    def misaligned(a):  # one item past an aligned start
        raw = aligned_zeros(a.size + 1, a.dtype)[1:]
        raw[...] = a
        assert raw.ctypes.data % ALIGNMENT != 0
        return raw

    X = rng.standard_normal((16, 5, 3)).astype(dtype)
    Y = rng.standard_normal((16, 2)).astype(dtype)
    M = np.ones_like(Y)
    order = np.arange(16, dtype=np.int64)
    opt = Adam(learning_rate=0.01)
    results = []
    for make in (lambda a: a.copy(), misaligned):
        params, g = make(net.params), make(np.zeros_like(net.params))
        copy = aligned(params)
        assert (copy is params) == (params.ctypes.data % ALIGNMENT == 0)
        np.testing.assert_array_equal(copy, params)
        state = np.zeros((2, net.n_params), dtype=dtype)
        losses_ = np.zeros(2)
        failed, step = train_epoch(params, g, net.table, net.head, X, Y, M, order, 8, losses.MSE, np.zeros(1),
                                   KIND_ADAM, opt.hyperparams(), state, 0, 0.0, 2, losses_)
        assert failed == -1 and step == 2
        results.append((params, g, losses_))
    (p0, g0, l0), (p1, g1, l1) = results
    assert not np.array_equal(p0, net.params)  # the epoch updated the caller's buffer in place
    np.testing.assert_array_equal(p1, p0)
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(l1, l0)


@pytest.mark.parametrize("cell", numlstm._cells.NAMES)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
def test_the_epoch_loop_stores_in_its_workspace_with_the_same_results(rng, dtype, cell, bidirectional):
    # The stored arrays of every layer and direction cut from one workspace (the trainer's, kept
    # across epochs; the last batch smaller), from a workspace too short (each allocated), or
    # from none: the same weights, gradients and losses, bit for bit.
    from numlstm.core.cpu_engine import no_workspace, train_epoch, workspace, workspace_size
    net = Network(3, (5, 4), 2, dtype, cell=cell, bidirectional=bidirectional).initialize(rng)
    X = rng.standard_normal((11, 6, 3)).astype(dtype)
    Y = rng.standard_normal((11, 2)).astype(dtype)
    M = np.ones_like(Y)
    order = rng.permutation(11).astype(np.int64)
    hp = Adam(learning_rate=0.01).hyperparams()
    size = workspace_size(net.table, 4, 6)
    units = sum(int(h) for h in net.table[:, 1])
    per_unit = {"lstm": 6, "gru": 7}[cell]  # stored items per unit, per (row, step)
    assert size >= 4 * 6 * units * per_unit and size % 16 == 0
    results = []
    for work in (workspace(net.table, 4, 6, dtype), no_workspace(dtype), workspace(net.table, 4, 6, dtype)[:size // 2]):
        params, g = net.params.copy(), np.zeros_like(net.params)
        state = np.zeros((2, net.n_params), dtype=dtype)
        batch_losses = np.zeros(3)
        for epoch in range(2):
            failed, step = train_epoch(params, g, net.table, net.head, X, Y, M, order, 4, losses.MSE, np.zeros(1),
                                       KIND_ADAM, hp, state, 3 * epoch, 0.0, 2, batch_losses, work=work)
            assert failed == -1 and step == 3 * (epoch + 1)
        results.append((params, g, batch_losses))
    for params, g, batch_losses in results[1:]:
        np.testing.assert_array_equal(params, results[0][0])
        np.testing.assert_array_equal(g, results[0][1])
        np.testing.assert_array_equal(batch_losses, results[0][2])
    assert not np.array_equal(results[0][0], net.params)
