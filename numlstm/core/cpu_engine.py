"""The CPU engine: stacked forward/backward on batches, for LSTM and GRU networks, and
the trainer the epoch loop (:mod:`numlstm.core.training`) drives on the CPU.

One call of :func:`train_epoch` runs every batch of an epoch inside compiled
code (gather, forward, loss, backward, clipping, update), so a fit with
``batch_size=1`` costs microseconds per step, not a Python round trip.

The loop, the dense head, the loss and the update are written once
(``_network_forward``, ``_batch_loss_grad``, ``_train_epoch``; prediction
is a Python loop over ``_network_forward``); only the pass through the stack of recurrent layers
differs between cells (each cell's ``_layer_forward``/``_layer_backward``).
:func:`_compile_for_cell` compiles the shared functions once per cell, each
calling that cell's layers, so an LSTM fit never compiles or branches on GRU
code; the public functions read the network's cell from ``table`` and call its
kernels, once per call (an epoch, a batch), never per step.
"""

import math
from collections import namedtuple
from types import FunctionType, SimpleNamespace

import numpy as np
from numba import types
from numba.extending import overload

from numlstm._aligned import aligned, aligned_empty
from numlstm._cells import NAMES
from numlstm.core import ahead
from numlstm.core import losses as _losses
from numlstm.core.network import CELL_COLUMN, DIRECTION_COLUMN, EMBED_DIM, EMBED_OFFSET, VOCABULARY, Network
from numlstm.core.optimizers import KIND_ADAM, Adam, apply_update
from numlstm.kernels import dropout as _dropout
from numlstm.kernels import cpu as _cpu
from numlstm.kernels import gru_cpu
from numlstm.kernels._jit import njit
from numlstm.kernels.cpu import (FIRST, add_gram, add_tile, assign, chunk_count, layer_backward, layer_forward,
                                  no_initial, sum_parts)

# Plain error model, no fastmath: the loss and the norm must see NaN and inf.

_CHECKED = dict(error_model="numpy", nogil=True)

PREDICT_ROWS = 4096  # rows per predict pass: bounds the workspace, not the speed
NO_DROPOUT = np.zeros(2)  # (dropout, recurrent_dropout)
# keep_cache for the training forward, as a NumPy bool: a literal True passed inside compiled code
# would make Numba compile a Literal[bool](True) specialisation of the forward pass (see FIRST).
KEEP_CACHE = np.bool_(True)

# The dropout plan the compiled functions read, a (rows + 1, 3) float array: for each
# row of the network's table [input rate, recurrent rate, 1 if the input masks are
# drawn anew at every step else 0], and a last row [rate on the head's input, 0, 0].
RATE, RECURRENT_RATE, PER_STEP = 0, 1, 2


@njit(**_CHECKED)
def _views(params, table, layer):
    I, H, oW, oU, ob = table[layer, 0], table[layer, 1], table[layer, 2], table[layer, 3], table[layer, 4]
    G = 4 * H
    return params[oW:oU].reshape((I, G)), params[oU:ob].reshape((H, G)), params[ob:ob + G]


@njit(**_CHECKED)
def _gru_views(params, table, layer):
    I, H, oW, oU, ob = table[layer, 0], table[layer, 1], table[layer, 2], table[layer, 3], table[layer, 4]
    G = 3 * H
    return params[oW:oU].reshape((I, G)), params[oU:ob].reshape((H, G)), params[ob:ob + 2 * G].reshape((2, G))


@njit(**_CHECKED)
def _head_views(params, head):
    H, O, oW, ob = head[0], head[1], head[2], head[3]
    return params[oW:ob].reshape((H, O)), params[ob:ob + O]


# --- one recurrent layer (one row of ``table``) forward and backward, per cell ----------------
#
# ``_<cell>_layer_forward(params, table, row, x, keep, hmask, chunks, keep_cache, work)``
# returns ``(first, second, hs, used)``: the arrays the backward pass needs (pre-activations
# and cell states for an LSTM, input and recurrent projections for a GRU), the hidden states,
# and how many items of ``work`` they took. ``work`` is the rest of the caller's workspace
# (see :func:`workspace_size`): the three arrays are cut from its front where it is long
# enough, else allocated (``used`` 0). ``_<cell>_layer_backward(...)`` writes the row's weight
# gradients into ``grads`` and returns ``dx`` (left empty unless ``need_dx``).
# Inlined into the stack at the Numba IR level: as functions of their own they
# would each link and optimize the layer kernels once more.

WORK_ROUND = 16  # workspace pieces start on 16-item boundaries (64 bytes in float32)
# Per unit of a layer's hidden size, per (row, step): the items its forward pass stores for
# backpropagation, as (first, second, states): LSTM 4 pre-activations, a cell state and a
# hidden state; GRU 3 input projections, 3 recurrent ones and a hidden state.
STORED = {"lstm": (4, 1, 1), "gru": (3, 3, 1)}


@njit(inline="always", **_CHECKED)
def _rounded(n):
    return (n + WORK_ROUND - 1) // WORK_ROUND * WORK_ROUND


@njit(inline="always", **_CHECKED)
def _stored_arrays(work, n, T1, G1, T2, G2, T, H, dtype_of):
    """``first`` (n, T1, G1), ``second`` (n, T2, G2) and the states (n, T, H), cut one after
    another from the front of ``work`` where it is long enough (and how much they took), else
    allocated (and 0)."""
    a, b, c = _rounded(n * T1 * G1), _rounded(n * T2 * G2), _rounded(n * T * H)
    if work.shape[0] >= a + b + c:
        return (work[:n * T1 * G1].reshape((n, T1, G1)), work[a:a + n * T2 * G2].reshape((n, T2, G2)),
                work[a + b:a + b + n * T * H].reshape((n, T, H)), a + b + c)
    return (np.empty((n, T1, G1), dtype=dtype_of.dtype), np.empty((n, T2, G2), dtype=dtype_of.dtype),
            np.empty((n, T, H), dtype=dtype_of.dtype), 0)


@njit(inline="always", **_CHECKED)
def _lstm_layer_forward(params, table, row, x, keep, hmask, chunks, keep_cache, work):
    W, U, b = _views(params, table, row)
    n, T, H = x.shape[0], x.shape[1], U.shape[0]
    zs, cs, hs, used = _stored_arrays(work, n, T if keep_cache else 1, 4 * H, T if keep_cache else 2, H, T, H, x)
    zeros = np.zeros((n, H), dtype=x.dtype)
    layer_forward(x, W, U, b, zeros, zeros, zs, cs, hs, chunks, keep, hmask)
    return zs, cs, hs, used


@njit(inline="always", **_CHECKED)
def _lstm_layer_backward(params, grads, table, row, x, zs, cs, hs, dhs, keep, hmask, chunks, need_dx):
    W, U, _ = _views(params, table, row)
    dW, dU, db = _views(grads, table, row)
    n, H = x.shape[0], U.shape[0]
    zeros = np.zeros((n, H), dtype=x.dtype)
    dx = np.empty(x.shape, dtype=x.dtype)
    layer_backward(x, W, U, zeros, zeros, zs, cs, hs, dhs, np.zeros((n, H), dtype=x.dtype),
                   np.zeros((n, H), dtype=x.dtype), dW, dU, db, dx, chunks, need_dx, keep, hmask)
    return dx


@njit(inline="always", **_CHECKED)
def _gru_layer_forward(params, table, row, x, keep, hmask, chunks, keep_cache, work):
    W, U, b = _gru_views(params, table, row)
    n, T, H = x.shape[0], x.shape[1], U.shape[0]
    Tx = T if keep_cache else 1
    xs, gs, hs, used = _stored_arrays(work, n, Tx, 3 * H, Tx, 3 * H, T, H, x)
    gru_cpu.layer_forward(x, W, U, b, np.zeros((n, H), dtype=x.dtype), xs, gs, hs, chunks, keep, hmask)
    return xs, gs, hs, used


@njit(inline="always", **_CHECKED)
def _gru_layer_backward(params, grads, table, row, x, xs, gs, hs, dhs, keep, hmask, chunks, need_dx):
    W, U, _ = _gru_views(params, table, row)
    dW, dU, db = _gru_views(grads, table, row)
    n, H = x.shape[0], U.shape[0]
    dx = np.empty(x.shape, dtype=x.dtype)
    gru_cpu.layer_backward(x, W, U, np.zeros((n, H), dtype=x.dtype), xs, gs, hs, dhs,
                           np.zeros((n, H), dtype=x.dtype), dW, dU, db, dx, chunks, need_dx, keep, hmask)
    return dx


# --- what every cell shares: inputs, directions, dropout masks -----------------------------------


def embedded(params, head, X):  # pragma: no cover - replaced by the overload inside jitted code
    """The network's first-layer input: ``X`` itself for float sequences, or for
    integer token sequences (n, time) their rows of the embedding matrix."""


def keep_steps(X):  # pragma: no cover - replaced by the overload inside jitted code
    """The step mask: for token sequences ``X != 0`` (padding skipped) as int8;
    for float sequences a (0, 0) array, meaning every step."""


def add_embedding_grad(grads, head, X, dX):  # pragma: no cover - replaced by the overload
    """For token sequences, add ``dX`` (n, time, embedding_dim) to the embedding rows of the tokens."""


def _is_tokens(X):
    return isinstance(X, types.Array) and isinstance(X.dtype, types.Integer) and X.ndim == 2


@overload(embedded, jit_options=dict(error_model="numpy"))
def _embedded(params, head, X):
    if _is_tokens(X):
        def gather(params, head, X):
            n, T, E = X.shape[0], X.shape[1], head[EMBED_DIM]
            table = params[head[EMBED_OFFSET]:head[EMBED_OFFSET] + head[VOCABULARY] * E].reshape((head[VOCABULARY], E))
            out = np.empty((n, T, E), dtype=params.dtype)
            for r in range(n):
                for t in range(T):
                    assign(out[r, t], table[X[r, t]])
            return out
        return gather
    return lambda params, head, X: np.ascontiguousarray(X)


@overload(keep_steps, jit_options=dict(error_model="numpy"))
def _keep_steps(X):
    if _is_tokens(X):
        def from_tokens(X):
            keep = np.empty(X.shape, dtype=np.int8)
            for r in range(X.shape[0]):
                for t in range(X.shape[1]):
                    keep[r, t] = 1 if X[r, t] != 0 else 0
            return keep
        return from_tokens
    return lambda X: np.zeros((0, 0), dtype=np.int8)


@overload(add_embedding_grad, jit_options=dict(error_model="numpy"))
def _add_embedding_grad(grads, head, X, dX):
    if _is_tokens(X):
        def scatter(grads, head, X, dX):
            E = head[EMBED_DIM]
            dE = grads[head[EMBED_OFFSET]:head[EMBED_OFFSET] + head[VOCABULARY] * E].reshape((head[VOCABULARY], E))
            dE[:, :] = 0
            for r in range(X.shape[0]):  # in row, then step order: the same sum on every run
                for t in range(X.shape[1]):
                    dE[X[r, t]] += dX[r, t]
        return scatter
    return lambda grads, head, X, dX: None


@njit(**_CHECKED)
def reverse_time(a):
    """A C-contiguous copy of ``a`` (rows, time, ...) with time reversed; (0, 0) stays."""
    out = np.empty_like(a)
    T = a.shape[1]
    for t in range(T):
        assign(out[:, t], a[:, T - 1 - t])
    return out


@njit(**_CHECKED)
def _directions(table):
    return 2 if table[table.shape[0] - 1, DIRECTION_COLUMN] == 1 else 1


@njit(**_CHECKED)
def _concat_directions(forward, reverse):
    """A bidirectional layer's output: at step t the forward states, then the reverse
    direction's states at the same position of the sequence (as Keras' Bidirectional)."""
    n, T, H = forward.shape
    out = np.empty((n, T, 2 * H), dtype=forward.dtype)
    for t in range(T):
        assign(out[:, t, :H], forward[:, t])
        assign(out[:, t, H:], reverse[:, T - 1 - t])
    return out


@njit(**_CHECKED)
def _mask_or_none(n, units, dtype_of, seed, step, row0, stream, rate):
    """A dropout mask (n, units), or a (0, 0) array when ``rate`` is 0."""
    if rate <= 0:
        return np.zeros((0, 0), dtype=dtype_of.dtype)
    out = np.empty((n, units), dtype=dtype_of.dtype)
    _dropout.fill(out, seed, step, stream, rate, row0)
    return out


# Plain loops, not array expressions: Numba compiles a broadcasting expression
# into a loop nest of its own, which cost seconds of compilation per fit.


@njit(**_CHECKED)
def _scaled(a, mask):
    """``a`` (n, T, F) scaled by a dropout mask: ``mask`` (n, F) scales every step of a
    row alike, ``mask`` (n, T * F) each step by its own mask (step ``t`` at columns
    ``t * F`` to ``(t + 1) * F``)."""
    n, T, F = a.shape
    per_step = mask.shape[1] != F
    out = np.empty_like(a)
    for r in range(n):
        for t in range(T):
            o, v = out[r, t], a[r, t]
            base = t * F if per_step else 0
            for j in range(F):
                o[j] = v[j] * mask[r, base + j]
    return out


@njit(**_CHECKED)
def _add_scaled(out, a, mask):
    """``out += a`` scaled by ``mask`` as in :func:`_scaled`, or ``out += a`` when ``mask`` is (0, 0)."""
    n, T, F = a.shape
    per_step = mask.shape[1] != F
    for r in range(n):
        for t in range(T):
            o, v = out[r, t], a[r, t]
            if mask.shape[0] > 0:
                base = t * F if per_step else 0
                for j in range(F):
                    o[j] += v[j] * mask[r, base + j]
            else:
                for j in range(F):
                    o[j] += v[j]


@njit(**_CHECKED)
def _top_features(top, D):
    """The head's input (n, 1, features): the last step's states; for a bidirectional
    top layer, the forward direction's last and the reverse direction's final states."""
    n, T, F = top.shape
    last = np.empty((n, 1, F), dtype=top.dtype)
    Hd = F // D
    assign(last[:, 0, :Hd], top[:, T - 1, :Hd])
    if D == 2:
        assign(last[:, 0, Hd:], top[:, 0, Hd:])
    return last


# What the forward pass over the stack leaves for the backward pass: per table row, the
# layer's input (dropped out, time-reversed for a reverse direction), the kernels' saved
# gate values (first, second), the hidden states, and the input and state dropout masks.
# The head's input dropout mask, (n, features) or (0, 0), closes it.
StackCache = namedtuple("StackCache", ["inputs", "firsts", "seconds", "states", "imasks", "hmasks", "head_mask"])


def _forward_stack(params, table, X, keep, drop, seed, step, row0, chunks, keep_cache, work):
    """Every recurrent row forward. ``X`` (n, time, features) float, ``keep`` the
    step mask, ``drop`` the dropout plan (see ``RATE``; masks drawn from
    ``seed`` and ``step``, for rows ``row0, row0 + 1, ...``). A layer's per-step
    input mask is drawn once for both its directions, on its input before the
    reverse direction reverses it (as a Keras Dropout layer below a Bidirectional
    one). Returns the per-row lists ``(inputs, first, second, states, input_masks,
    state_masks)`` and the top layer's output (n, time, directions * hidden). With
    ``keep_cache`` False (prediction) ``first`` and ``second`` hold only the last step
    or two each, not the every-step cache backpropagation reads. The rows' stored arrays
    are cut from ``work`` while it lasts (see :func:`workspace_size`)."""
    n = X.shape[0]
    D = _directions(table)
    keep_rev = reverse_time(keep) if D == 2 and keep.shape[0] > 0 else keep
    inputs = []
    firsts = []
    seconds = []
    states = []
    imasks = []
    hmasks = []
    inp = np.ascontiguousarray(X)
    taken = 0
    for layer in range(table.shape[0] // D):
        step_mask = np.zeros((0, 0), dtype=params.dtype)
        for d in range(D):
            row = layer * D + d
            I, H = table[row, 0], table[row, 1]
            if drop[row, PER_STEP] > 0:
                if d == 0:
                    step_mask = _mask_or_none(n, inp.shape[1] * I, params, seed, step, row0,
                                              _dropout.stream_of(row, _dropout.STEP_MASK), drop[row, RATE])
                imask = step_mask
            else:
                imask = _mask_or_none(n, I, params, seed, step, row0, _dropout.stream_of(row, _dropout.INPUT_MASK),
                                      drop[row, RATE])
            x = inp
            if imask.shape[0] > 0:
                x = _scaled(inp, imask)
            if d == 1:
                x = reverse_time(x)
            hmask = _mask_or_none(n, H, params, seed, step, row0, _dropout.stream_of(row, _dropout.STATE_MASK),
                                  drop[row, RECURRENT_RATE])
            first, second, hs, used = _layer_forward(params, table, row, x, keep if d == 0 else keep_rev, hmask,
                                                     chunks, keep_cache, work[taken:])
            taken += used
            inputs.append(x)
            firsts.append(first)
            seconds.append(second)
            states.append(hs)
            imasks.append(imask)
            hmasks.append(hmask)
        inp = states[-1] if D == 1 else _concat_directions(states[-2], states[-1])
    return inputs, firsts, seconds, states, imasks, hmasks, inp


def _backward_stack(params, grads, table, keep, cache, dtop, chunks, need_dx):
    """Every recurrent row backward from ``cache`` (the forward stack's lists) and
    ``dtop``, the gradient reaching the top layer's output; writes the weight
    gradients into ``grads``. Returns the gradient with respect to the first
    layer's input when ``need_dx`` (else an empty array)."""
    inputs, firsts, seconds, states = cache.inputs, cache.firsts, cache.seconds, cache.states
    imasks, hmasks = cache.imasks, cache.hmasks
    D = _directions(table)
    keep_rev = reverse_time(keep) if D == 2 and keep.shape[0] > 0 else keep
    dout = dtop
    for layer in range(table.shape[0] // D - 1, -1, -1):
        x0 = inputs[layer * D]
        n, T, I = x0.shape
        want_dx = layer > 0 or need_dx
        dinp = np.zeros((n, T, I) if want_dx else (0, 0, 0), dtype=x0.dtype)
        H = table[layer * D, 1]
        for d in range(D):
            row = layer * D + d
            if D == 1:
                dh = dout
            elif d == 0:
                dh = np.ascontiguousarray(dout[:, :, :H])
            else:
                dh = reverse_time(np.ascontiguousarray(dout[:, :, H:]))
            dx = _layer_backward(params, grads, table, row, inputs[row], firsts[row], seconds[row], states[row], dh,
                                 keep if d == 0 else keep_rev, hmasks[row], chunks, want_dx)
            if want_dx:
                if d == 1:
                    dx = reverse_time(dx)
                _add_scaled(dinp, dx, imasks[row])
        dout = dinp
    return dout


# --- written once for every cell; compiled per cell by _compile_for_cell -----------------------


def _layer_forward(params, table, row, x, keep, hmask, chunks, keep_cache, work):  # pragma: no cover - the cell's
    raise NotImplementedError("replaced by the cell's layer forward in _compile_for_cell")


def _layer_backward(params, grads, table, row, x, first, second, hs, dhs, keep, hmask, chunks,
                    need_dx):  # pragma: no cover - each cell's own
    raise NotImplementedError("replaced by the cell's layer backward in _compile_for_cell")


def _network_forward(params, table, head, X, drop, seed, step, row0, n_threads, keep_cache, work):
    """Forward through the embedding (for tokens), every layer and the head.
    Returns the head's output (n, O), the step mask, the stack's cache (a
    :data:`StackCache` of :func:`_forward_stack`'s lists) and the head's input
    (n, 1, features)."""
    n = X.shape[0]
    chunks = chunk_count(n, n_threads)
    keep = keep_steps(X)
    inputs, firsts, seconds, states, imasks, hmasks, top = _forward_stack(
        params, table, embedded(params, head, X), keep, drop, seed, step, row0, chunks, keep_cache, work)
    last = _top_features(top, _directions(table))
    head_mask = _mask_or_none(n, last.shape[2], params, seed, step, row0,
                              _dropout.stream_of(0, _dropout.HEAD_MASK), drop[table.shape[0], RATE])
    if head_mask.shape[0] > 0:
        last = _scaled(last, head_mask)
    Wd, bd = _head_views(params, head)
    out = np.empty((n, 1, Wd.shape[1]), dtype=params.dtype)
    add_tile(out, FIRST, last, FIRST, Wd, FIRST, n, bd)  # the bias and the product, in one pass
    # A reshape, not out[:, 0, :]: the loss then sees a C-contiguous array, so the one
    # compiled specialisation of it serves training, validation and prediction alike.
    cache = StackCache(inputs, firsts, seconds, states, imasks, hmasks, head_mask)
    return out.reshape((n, Wd.shape[1])), keep, cache, last


def _batch_loss_grad(params, grads, table, head, Xb, Yb, Mb, loss_id, lparams, drop, seed, step, n_threads, work):
    """Loss on one batch; writes the gradient of every parameter into ``grads``. The forward
    pass's stored arrays are cut from ``work`` while it lasts."""
    n = Xb.shape[0]
    chunks = chunk_count(n, n_threads)
    pred, keep, cache, last = _network_forward(params, table, head, Xb, drop, seed, step, FIRST, n_threads,
                                               KEEP_CACHE, work)
    dpred64 = np.empty(pred.shape, dtype=np.float64)
    loss = _losses.loss_and_grad(loss_id, lparams, pred, Yb, Mb, dpred64)
    dpred = dpred64.astype(params.dtype)
    dWd, dbd = _head_views(grads, head)
    Wd, _ = _head_views(params, head)
    dWd[:, :] = 0
    add_gram(dWd, np.ascontiguousarray(last[:, 0, :].T), dpred)
    sum_parts(dpred, dbd)  # not dpred.sum(axis=0): the same sums, without compiling NumPy's axis machinery
    dlast = np.zeros(last.shape, dtype=params.dtype)
    add_tile(dlast, FIRST, dpred.reshape((n, 1, dpred.shape[1])), FIRST, np.ascontiguousarray(Wd.T), FIRST, n,
             no_initial(dlast))
    if cache.head_mask.shape[0] > 0:
        dlast = _scaled(dlast, cache.head_mask)
    top = cache.states[-1]
    T, F = top.shape[1], last.shape[2]
    D = _directions(table)
    Hd = F // D
    dtop = np.zeros((n, T, F), dtype=params.dtype)
    assign(dtop[:, T - 1, :Hd], dlast[:, 0, :Hd])
    if D == 2:
        assign(dtop[:, 0, Hd:], dlast[:, 0, Hd:])
    embedding = head[VOCABULARY] > 0
    dX = _backward_stack(params, grads, table, keep, cache, dtop, chunks, embedding)
    if embedding:
        add_embedding_grad(grads, head, Xb, dX)
    return loss


@njit(**_CHECKED)
def global_norm(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += float(v[i]) * float(v[i])
    return math.sqrt(s)


def _train_epoch(params, grads, table, head, X, Y, M, order, batch_size, loss_id, lparams, drop, seed,
                 opt_kind, hp, state, step, clipnorm, n_threads, batch_losses, work):
    """All batches of one epoch, in the order given. Returns ``(failed_batch, step)``:
    ``failed_batch`` is -1, or the index of the first batch whose loss or
    gradient was not finite (its update is not applied). Dropout masks are
    drawn from ``seed`` and the update step."""
    n = order.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    for bi in range(n_batches):
        idx = order[bi * batch_size: min(n, (bi + 1) * batch_size)]
        loss = _batch_loss_grad(params, grads, table, head, X[idx], Y[idx], M[idx], loss_id, lparams, drop, seed,
                                step, n_threads, work)
        norm = global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return bi, step
        if clipnorm > 0 and norm > clipnorm:
            grads *= clipnorm / norm
        step += 1
        apply_update(opt_kind, params, grads, state, step, hp)
        batch_losses[bi] = loss
    return -1, step


# The stack functions are inlined into their callers at the Numba IR level: as
# functions of their own, each caller would link and optimize the layer kernels
# once more (Numba re-optimizes a callee's code in every caller's module), which
# made compiling a fit twice as slow. The batch gradient is inlined into the epoch
# loop for the same reason (11% less compile time for a first fit, measured with
# benchmarks/compile_profile.py); called from Python (L-BFGS, dask) it compiles alone.
_INLINED = (_forward_stack, _backward_stack, _network_forward, _batch_loss_grad)
_SHARED = (_forward_stack, _backward_stack, _network_forward, _batch_loss_grad, _train_epoch)


def _compile_for_cell(cell, layer_forward_fn, layer_backward_fn):
    """The shared functions compiled for one cell: copies of them whose global names
    ``_layer_forward``/``_layer_backward`` are that cell's, and whose calls to one
    another stay within the cell (as :func:`numlstm.kernels.gates.gpu_twin` does
    for the GPU). Each copy has a qualified name of its own, hence its own
    on-disk cache file under ``NUMLSTM_CACHE=1``. Compiled lazily, on first call."""
    namespace = dict(globals())
    namespace.update(_layer_forward=layer_forward_fn, _layer_backward=layer_backward_fn)
    kernels = {}
    for fn in _SHARED:
        twin = FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        twin.__qualname__ = f"{fn.__qualname__}_{cell}"
        twin.__doc__ = fn.__doc__
        options = dict(_CHECKED, inline="always") if fn in _INLINED else _CHECKED
        namespace[fn.__name__] = kernels[fn.__name__.lstrip("_")] = njit(**options)(twin)
    return SimpleNamespace(**kernels)


_LAYERS = {"lstm": (_lstm_layer_forward, _lstm_layer_backward), "gru": (_gru_layer_forward, _gru_layer_backward)}
# Indexed by the cell column of Network.table (the cell's position in numlstm._cells.NAMES).
_KERNELS = tuple(_compile_for_cell(cell, *_LAYERS[cell]) for cell in NAMES)


def _compiled_ahead(cell):
    """(module, qualified name) of each function :func:`compile_ahead` compiles for ``cell``
    (the LSTM's and the GRU's backward passes share their names, not their modules)."""
    layer = _cpu if cell == "lstm" else gru_cpu
    functions = (layer._backward_chunks, layer.backward_rows, sum_parts, global_norm, apply_update,
                 _KERNELS[NAMES.index(cell)].network_forward)
    return frozenset((f.py_func.__module__, f.py_func.__qualname__) for f in functions)


_COMPILED_AHEAD = {cell: _compiled_ahead(cell) for cell in NAMES}


def kernels_for(table):
    """The compiled training functions of the cell of the network described by ``table``."""
    return _KERNELS[table[0, CELL_COLUMN]]


def _drop(drop):
    return NO_DROPOUT if drop is None else np.asarray(drop, dtype=np.float64)


def dropout_plan(drop, table):
    """The dropout plan (see ``RATE``) of a network with ``table``: from ``None`` (no
    dropout), ``(dropout, recurrent_dropout)`` (those rates on every layer, one mask
    per sequence), or a plan of its own shape (checked and returned contiguous)."""
    rows = table.shape[0]
    d = _drop(drop)
    if d.ndim == 1 and d.shape[0] == 2:
        plan = np.zeros((rows + 1, 3))
        plan[:rows, RATE], plan[:rows, RECURRENT_RATE] = d
        return plan
    if d.shape != (rows + 1, 3):
        raise ValueError(f"drop must be (dropout, recurrent_dropout) or a dropout plan of shape ({rows + 1}, 3) "
                         f"for this network of {rows} recurrent rows; got shape {d.shape}.")
    if not ((d[:, :2] >= 0) & (d[:, :2] < 1)).all():
        raise ValueError(f"drop's rates must be in [0, 1); got {d[:, :2].tolist()}.")
    if _directions(table) == 2:
        fwd, rev = d[0:rows:2], d[1:rows:2]
        per_step = (fwd[:, PER_STEP] > 0) | (rev[:, PER_STEP] > 0)
        if (per_step & ((fwd[:, PER_STEP] != rev[:, PER_STEP]) | (fwd[:, RATE] != rev[:, RATE]))).any():
            raise ValueError("drop: a bidirectional layer's per-step input mask is shared by its two directions; "
                             "give both rows of the layer the same rate and per-step flag.")
    return np.ascontiguousarray(d)


def workspace_size(table, n, T):
    """Items of the workspace in which a training forward pass of ``n`` sequences of ``T``
    steps through the network of ``table`` stores what backpropagation reads (see
    ``STORED``): with it, the epoch loop allocates none of it per batch.

    At (64, 768, 8, 64) those arrays are 75 MB a batch. Allocated per batch, above the C
    library's 32-MB threshold, they came from the kernel every time, 19,900 page faults a
    training step (the step 66 ms, 44 ms without the faults; Intel Xeon, 2 threads)."""
    first, second, states = STORED[NAMES[table[0, CELL_COLUMN]]]
    total = 0
    for row in range(table.shape[0]):
        H = int(table[row, 1])
        total += sum(-(-n * T * k * H // WORK_ROUND) * WORK_ROUND for k in (first, second, states))
    return total


def workspace(table, n, T, dtype):
    """A new workspace (:func:`workspace_size`) for ``n`` sequences of ``T`` steps."""
    return aligned_empty(workspace_size(table, n, T), dtype)


def no_workspace(dtype):
    """The ``work`` argument for none: every stored array is allocated."""
    return np.empty(0, dtype=dtype)


def network_forward(params, table, head, X, n_threads, drop=None, seed=0, step=0, row0=0):
    """Forward through every layer and the head: ``(out, keep, cache, last)``, the
    head's output (n, O), the step mask, the stack's per-row arrays and the head's input."""
    return kernels_for(table).network_forward(aligned(params), table, head, X, dropout_plan(drop, table), seed, step,
                                              row0, n_threads, True, no_workspace(params.dtype))


def batch_loss_grad(params, grads, table, head, Xb, Yb, Mb, loss_id, lparams, n_threads, drop=None, seed=0, step=0):
    """Loss on one batch; writes the gradient of every parameter into ``grads``.
    ``drop`` is ``(dropout, recurrent_dropout)`` or a dropout plan (:func:`dropout_plan`),
    the masks drawn from ``seed`` and ``step``."""
    g = aligned(grads)
    loss = kernels_for(table).batch_loss_grad(aligned(params), g, table, head, Xb, Yb, Mb, loss_id, lparams,
                                              dropout_plan(drop, table), seed, step, n_threads,
                                              no_workspace(params.dtype))
    _copy_back(g, grads)  # (the parameters are only read)
    return loss


def _copy_back(*pairs):
    """After a kernel ran on aligned copies (:func:`~numlstm._aligned.aligned`) of the
    caller's buffers, ``(copy, original, ...)``: the results into the originals."""
    for work, original in zip(pairs[::2], pairs[1::2]):
        if work is not original:
            original[...] = work


def train_epoch(params, grads, table, head, X, Y, M, order, batch_size, loss_id, lparams,
                opt_kind, hp, state, step, clipnorm, n_threads, batch_losses, drop=None, seed=0, work=None):
    """All batches of one epoch, in the order given, in one compiled call. Returns
    ``(failed_batch, step)``: ``failed_batch`` is -1, or the index of the first
    batch whose loss or gradient was not finite (its update is not applied).
    ``work``: a :func:`workspace` for the largest batch, kept by a caller that runs
    many epochs (the CPU trainer does); without one, each batch allocates its own arrays.
    (A workspace made afresh for every call costs more than it saves: at (64, 100, 16, 256)
    the step took 68-90 ms with one against 50-51 ms without, the kernel zeroing and
    compacting huge pages for NumPy's 39-MB allocation; kept across epochs, 42-49 ms an
    epoch against 56-61 without, Intel Xeon, 2 threads.)"""
    p, g = aligned(params), aligned(grads)
    if work is None:
        work = no_workspace(params.dtype)
    epoch = kernels_for(table).train_epoch
    cell = NAMES[table[0, CELL_COLUMN]]
    with ahead.helper_if_compiling(epoch, (__name__, "compile_ahead"), _COMPILED_AHEAD[cell], cell, params.dtype):
        result = epoch(p, g, table, head, X, Y, M, order, batch_size, loss_id, lparams, dropout_plan(drop, table),
                       seed, opt_kind, hp, state, step, clipnorm, n_threads, batch_losses, work)
    _copy_back(p, params, g, grads)
    return result


def predict_rows(params, table, head, X, n_threads, out, drop=None, seed=0, step=0, row0=0):
    """Head outputs for every row of ``X`` into ``out``, ``PREDICT_ROWS`` at a time; with
    ``drop``, row ``i`` draws the masks of row ``row0 + i`` at ``step``."""
    # A loop in Python over the compiled forward pass (the one the epoch loop calls, so nothing
    # more is compiled for prediction): a compiled loop around it was a library of its own, into
    # which Numba linked, optimised and emitted the whole forward pass once more (about 1 s of a
    # cold first fit and predict).
    forward = kernels_for(table).network_forward
    plan = dropout_plan(drop, table)
    params = aligned(params)
    n = X.shape[0]
    for start in range(0, n, PREDICT_ROWS):
        stop = min(n, start + PREDICT_ROWS)
        # keep_cache False: each layer keeps only the current step's pre-activations and the last
        # two cell states (the cache is for backpropagation), not every step's; on an Intel Xeon
        # (2 threads) the forward pass ran 11-19% faster at (64, 100, 16, 256) and (256, 60, 8, 64).
        out[start:stop] = forward(params, table, head, X[start:stop], plan, seed, step, row0 + start, n_threads,
                                  False, no_workspace(params.dtype))[0]


def dataset_loss(params, table, head, X, Y, M, loss_id, lparams, n_threads):
    """Mean loss over a whole data set (dropout off), evaluated in ``PREDICT_ROWS`` passes.

    Written in Python over the compiled prediction and loss, not compiled as a
    whole: a compiled version linked and optimized the forward pass once more
    (and, called with literal arguments, compiled a second specialisation of it).
    """
    out = np.empty((X.shape[0], head[1]), dtype=params.dtype)
    predict_rows(params, table, head, X, n_threads, out)
    return _losses.loss_and_grad(loss_id, lparams, out, Y, M, np.empty(out.shape, dtype=np.float64))


def compile_ahead(cell, dtype):
    """What a helper process compiles (or loads) into the cache while a cold process compiles
    the epoch loop (see :mod:`numlstm.core.ahead`): ``cell``'s parallel backward pass for
    ``dtype``, what the loop calls after it (the threads' gradients added up, the gradient norm,
    the optimizer update) and prediction's forward pass, each with the argument types the loop
    and ``predict_rows`` call it with, by calling it on a tiny problem."""
    dt = np.dtype(dtype)
    B, T, I, H, chunks = 2, 2, 1, 1, 2
    G = (4 if cell == "lstm" else 3) * H

    def zeros(*shape):
        return np.zeros(shape, dtype=dt)

    x, W_T, U_T, h0 = zeros(B, T, I), zeros(G, I), zeros(G, H), zeros(B, 1, H)
    keep, hmask, hm = _cpu.NO_KEEP, _cpu.no_hmask(dt), zeros(0, 1, H)
    if cell == "lstm":
        _cpu._backward_chunks(x, W_T, U_T, h0, zeros(B, 1, H), zeros(B, T, G), zeros(B, T, H), zeros(B, T, H),
                              zeros(B, T, H), zeros(B, 1, H), zeros(B, 1, H), zeros(chunks, I + H + 1, G),
                              zeros(B, T, I), chunks, False, keep, hmask, hm)
    else:
        gru_cpu._backward_chunks(x, W_T, U_T, h0, zeros(B, T, G), zeros(B, T, G), zeros(B, T, H), zeros(B, T, H),
                                 zeros(B, 1, H), zeros(chunks, I + 1, G), zeros(chunks, H + 1, G), zeros(B, T, I),
                                 chunks, False, keep, hmask, hm)
    sum_parts(zeros(chunks, I, G), zeros(I, G))
    sum_parts(zeros(chunks, G), zeros(G))  # (every cell's head bias)
    params = zeros(8)
    global_norm(params)
    apply_update(KIND_ADAM, params, zeros(8), zeros(2, 8), 1, Adam().hyperparams())
    net = Network(I, (H,), 1, dt, cell=cell)
    predict_rows(net.params, net.table, net.head, zeros(B, T, I), 1, zeros(B, 1))
