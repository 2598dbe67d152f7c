"""Dropout, bidirectional layers and token input (embedding) with device='cuda' against the CPU,
on a GPU or the CUDA simulator.

Run with NUMBA_ENABLE_CUDASIM=1 (a separate pytest process, as ``.ci/run``
does) where there is no GPU. Launch sizes are patched small so that the
simulator's one-Python-thread-per-CUDA-thread stays quick and multi-block
paths run. The GPU draws the CPU's dropout masks (same seed, step and
streams), so a batch's loss and gradient match the CPU's to rounding.
"""

import numpy as np
import pytest

import numlstm
from conftest import cuda_marks
from numlstm.core import losses, training
from numlstm.core.network import Network
from numlstm.core.optimizers import Adam
from numlstm.core.cpu_engine import batch_loss_grad

pytestmark = [*cuda_marks(), pytest.mark.usefixtures("small_cuda_launches")]

N, T, I, V = 6, 5, 2, 7


def _targets(rng, n=N, O=2):
    Y = rng.standard_normal((n, O))
    M = (rng.random((n, O)) > 0.2).astype(np.float64)
    return Y, M


def _tokens(rng, n=N):
    """Token ids with pre-padding, post-padding, a row of padding only and full rows."""
    X = rng.integers(1, V, size=(n, T))
    X[0, :2] = 0  # pre-padding
    X[1, 3:] = 0  # post-padding
    X[2, :] = 0  # nothing but padding
    X[3, 1] = 0  # a gap
    return X.astype(np.int64)


def _batch_matches_cpu(net, X, Y, M, drop=None, seed=0, step=0):
    """One batch on the GPU (the trainer at update step ``step``) against the CPU, float64."""
    from numba import cuda

    from numlstm.core import gpu

    want = np.zeros_like(net.params)
    loss_cpu = batch_loss_grad(net.params, want, net.table, net.head, X, Y, M, losses.MSE, np.zeros(1), 1,
                               drop=drop, seed=seed, step=step)
    trainer = gpu.Trainer(net, X, Y, M, N, losses.MSE, np.zeros(1), Adam(), None, drop=drop, seed=seed)
    trainer.step = step
    d_losses = cuda.to_device(np.zeros(1))
    trainer._batch(*(cuda.to_device(a) for a in (X, Y, M)), d_losses, 0)
    np.testing.assert_allclose(trainer.grads.copy_to_host(), want, rtol=1e-10, atol=1e-12)
    assert d_losses.copy_to_host()[0] == pytest.approx(loss_cpu, rel=1e-12)
    return want


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("drop", [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)], ids=["input", "recurrent", "both"])
def test_dropout_batch_matches_cpu(rng, cell, drop):
    X = rng.standard_normal((N, T, I))
    Y, M = _targets(rng)
    net = Network(I, [3, 2], 2, np.float64, cell=cell).initialize(rng)
    net.params += 0.2 * rng.standard_normal(net.n_params)
    grads = _batch_matches_cpu(net, X, Y, M, drop=drop, seed=2 ** 40 + 17, step=3)
    plain = np.zeros_like(net.params)
    batch_loss_grad(net.params, plain, net.table, net.head, X, Y, M, losses.MSE, np.zeros(1), 1)
    assert not np.allclose(grads, plain)  # the masks did something


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_per_layer_dropout_rates_match_cpu(rng, cell):
    X = rng.standard_normal((N, T, I))
    Y, M = _targets(rng)
    net = Network(I, [3, 2], 2, np.float64, cell=cell).initialize(rng)
    net.params += 0.2 * rng.standard_normal(net.n_params)
    plan = np.array([[0.3, 0.0, 0], [0.0, 0.4, 0], [0.0, 0.0, 0]])  # a rate per layer, as numlstm.keras builds
    _batch_matches_cpu(net, X, Y, M, drop=plan, seed=5, step=1)


@pytest.mark.parametrize("plan", [[[0.3, 0, 1], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0.5, 0, 0]]],
                         ids=["per-step", "head"])
def test_keras_dropout_layer_plans_are_refused_on_the_gpu(rng, plan):
    from numlstm.core import gpu

    net = Network(I, [3, 2], 2, np.float64).initialize(rng)
    X = rng.standard_normal((N, T, I))
    Y, M = _targets(rng)
    with pytest.raises(ValueError, match=r"per-step input masks or dropout on the head's input .*device='cpu'"):
        gpu.Trainer(net, X, Y, M, N, losses.MSE, np.zeros(1), Adam(), None, drop=np.array(plan), seed=1)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_batch_matches_cpu(rng, cell):
    X = rng.standard_normal((N, T, I))
    Y, M = _targets(rng)
    net = Network(I, [3, 2], 2, np.float64, cell=cell, bidirectional=True).initialize(rng)
    net.params += 0.2 * rng.standard_normal(net.n_params)
    _batch_matches_cpu(net, X, Y, M)


def test_bidirectional_dropout_batch_matches_cpu(rng):
    X = rng.standard_normal((N, T, I))
    Y, M = _targets(rng)
    net = Network(I, [3, 2], 2, np.float64, bidirectional=True).initialize(rng)
    _batch_matches_cpu(net, X, Y, M, drop=(0.25, 0.35), seed=5, step=11)


@pytest.mark.parametrize("cell, bidirectional, drop", [("lstm", False, None), ("gru", False, (0.2, 0.3)),
                                                       ("lstm", True, None), ("gru", True, (0.2, 0.3))],
                         ids=["lstm", "gru-dropout", "lstm-bidirectional", "gru-bidirectional-dropout"])
def test_token_batch_matches_cpu(rng, cell, bidirectional, drop):
    X = _tokens(rng)
    Y, M = _targets(rng)
    net = Network(2, [3, 2], 2, np.float64, cell=cell, bidirectional=bidirectional, vocabulary=V).initialize(rng)
    net.params += 0.2 * rng.standard_normal(net.n_params)
    grads = _batch_matches_cpu(net, X, Y, M, drop=drop, seed=9, step=2)
    assert np.any(net.embedding(grads)[1:] != 0)


def test_token_groups_keep_row_then_step_order():
    from numlstm.core.gpu import token_groups

    a = np.array([[3, 0, 3], [1, 3, 0]])
    b = np.array([[2, 2]])
    perm, tokens, starts, spans = token_groups([a, b])
    assert spans == [(0, 3), (4, 1)]
    begin, count = spans[0]
    got = {int(tokens[begin + u]): list(perm[starts[begin + u]:starts[begin + u + 1]]) for u in range(count)}
    assert got == {0: [1, 5], 1: [3], 3: [0, 2, 4]}
    begin, count = spans[1]
    assert tokens[begin] == 2 and list(perm[starts[begin]:starts[begin + 1]]) == [0, 1]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
def test_embedding_dropout_classifier_fit_matches_cpu(rng, bidirectional):
    X = _tokens(rng, n=9)
    y = np.where(X[:, -1] > 3, "high", "low")
    kwargs = dict(units=3, epochs=2, batch_size=4, dtype="float64", random_state=0, embedding_dim=2,
                  vocabulary_size=V, dropout=0.2, recurrent_dropout=0.3, bidirectional=bidirectional,
                  validation_fraction=0.2)
    cpu = numlstm.LSTMClassifier(device="cpu", **kwargs).fit(X, y)
    gpu = numlstm.LSTMClassifier(device="cuda", **kwargs).fit(X, y)
    assert gpu.device_ == "cuda"
    np.testing.assert_allclose(gpu.history_["loss"], cpu.history_["loss"], rtol=1e-10)
    np.testing.assert_allclose(gpu.history_["val_loss"], cpu.history_["val_loss"], rtol=1e-10)
    np.testing.assert_allclose(gpu.network_.params, cpu.network_.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("tokens", [False, True], ids=["floats", "tokens"])
def test_monte_carlo_predict_matches_cpu(rng, tokens):
    from numlstm.core import gpu

    X = _tokens(rng) if tokens else rng.standard_normal((N, T, I))
    net = Network(2 if tokens else I, [3], 2, np.float64, cell="gru" if tokens else "lstm", bidirectional=tokens,
                  vocabulary=V if tokens else 0).initialize(rng)
    drop = (0.3, 0.4)
    want = training.predict(net, X, drop=drop, seed=21, step=4)
    got = gpu.predict(net, X, drop=drop, seed=21, step=4)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert not np.allclose(got, gpu.predict(net, X))  # dropout was on
    np.testing.assert_allclose(training.predict(net, X, device="cuda"), training.predict(net, X), rtol=1e-10,
                               atol=1e-12)
