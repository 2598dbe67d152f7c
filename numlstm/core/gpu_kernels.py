"""The CUDA kernels of the GPU engine around the recurrent layers (:mod:`numlstm.core.gpu`).

Gathering a batch, the dense head forward and backward, the loss, the
dropout masks, reversing and joining directions, the embedding and its
gradient, the global gradient norm and the optimizer update: small kernels,
launched by :class:`numlstm.core.gpu.DeviceNetwork` and
:class:`numlstm.core.gpu.Trainer` with their launch sizes. The loss and the
optimizer rule are the CPU's own code compiled for the GPU, so both devices
agree to the last bit of float arithmetic order.
"""

import math

from numba import cuda

from numlstm.core import losses as _losses
from numlstm.core.optimizers import update_one
from numlstm.kernels import dropout as _dropout
from numlstm.kernels.gates import gpu_twin

update_one_gpu = gpu_twin(update_one)


@cuda.jit
def gather3(src, order, start, out):
    """``out[i] = src[order[start + i]]`` for (n, T, F) arrays."""
    n, T, F = out.shape
    e = cuda.grid(1)
    if e < n * T * F:
        f = e % F
        t = (e // F) % T
        i = e // (F * T)
        out[i, t, f] = src[order[start + i], t, f]


@cuda.jit
def gather2(src, order, start, out):
    n, F = out.shape
    e = cuda.grid(1)
    if e < n * F:
        out[e // F, e % F] = src[order[start + e // F], e % F]


@cuda.jit
def zero2(a):
    e = cuda.grid(1)
    if e < a.shape[0] * a.shape[1]:
        a[e // a.shape[1], e % a.shape[1]] = 0


@cuda.jit
def head_forward(hs, Wd, bd, out):
    n, O = out.shape
    T, H = hs.shape[1], hs.shape[2]
    e = cuda.grid(1)
    if e < n * O:
        r = e // O
        o = e % O
        acc = bd[o]
        for j in range(H):
            acc += hs[r, T - 1, j] * Wd[j, o]
        out[r, o] = acc


@cuda.jit
def loss(loss_id, lparams, pred, Y, M, dpred, losses, slot, flag):
    """One thread: the batch's loss into ``losses[slot]`` and its gradient into ``dpred``."""
    if cuda.grid(1) == 0 and flag[0] < 0:
        losses[slot] = _losses.loss_and_grad_impl(loss_id, lparams, pred, Y, M, dpred)


@cuda.jit
def head_backward(hs, Wd, dpred, dWd, dbd, dhs):
    """Head gradients (one thread per weight, rows summed in order) and the gradient
    reaching the top layer's last hidden state; ``dhs`` is zero elsewhere."""
    n, T, H = dhs.shape
    O = dpred.shape[1]
    e = cuda.grid(1)
    if e < H * O:
        j = e // O
        o = e % O
        acc = dpred[0, o] * 0
        for r in range(n):
            acc += hs[r, T - 1, j] * dpred[r, o]
        dWd[j, o] = acc
        if j == 0:
            acc = dpred[0, o] * 0
            for r in range(n):
                acc += dpred[r, o]
            dbd[o] = acc
    if e < n * T * H:
        j = e % H
        rt = e // H
        r = rt // T
        t = rt % T
        acc = dpred[0, 0] * 0
        if t == T - 1:
            for o in range(O):
                acc += dpred[r, o] * Wd[j, o]
        dhs[r, t, j] = acc


@cuda.jit
def head_backward_last(hs, Wd, dpred, dWd, dbd, dh_T):
    """As :func:`head_backward` for a one-direction top layer: the gradient reaching its
    last hidden state goes into ``dh_T`` (n, H), the backward pass's carried gradient,
    instead of a (n, T, H) array that is zero but at the last step."""
    n, H = dh_T.shape
    T = hs.shape[1]
    O = dpred.shape[1]
    e = cuda.grid(1)
    if e < H * O:
        j = e // O
        o = e - j * O
        acc = dpred[0, o] * 0.0
        for r in range(n):
            acc += hs[r, T - 1, j] * dpred[r, o]
        dWd[j, o] = acc
        if j == 0:
            acc = dpred[0, o] * 0.0
            for r in range(n):
                acc += dpred[r, o]
            dbd[o] = acc
    if e < n * H:
        r = e // H
        j = e - r * H
        acc = dpred[0, 0] * 0.0
        for o in range(O):
            acc += dpred[r, o] * Wd[j, o]
        dh_T[r, j] = acc


# --- dropout, embedding and bidirectional layers: small element-wise kernels ----------------------


@cuda.jit
def dropout_mask(seed, step, stream, rate, row0, out):
    """``out[r, j]``: the dropout mask entry of the CPU's :func:`numlstm.kernels.dropout.fill`."""
    rows, units = out.shape
    e = cuda.grid(1)
    if e < rows * units:
        r = e // units
        j = e % units
        out[r, j] = _dropout.keep_scale(seed, step, stream, row0 + r, j, rate)


@cuda.jit
def layer_input(inp, imask, reverse, out):
    """``out[r, t] = inp[r, t'] * imask[r]``, ``t'`` being ``t`` or, with ``reverse``,
    ``T - 1 - t``; a (0, 0) ``imask`` means no mask."""
    n, T, F = out.shape
    e = cuda.grid(1)
    if e < n * T * F:
        j = e % F
        t = (e // F) % T
        r = e // (F * T)
        src = T - 1 - t if reverse else t
        v = inp[r, src, j]
        if imask.shape[0] > 0:
            v = v * imask[r, j]
        out[r, t, j] = v


@cuda.jit
def reverse_steps(a, out):
    """``out[r, t] = a[r, T - 1 - t]`` for (n, T) arrays (the step mask of the reverse direction)."""
    n, T = out.shape
    e = cuda.grid(1)
    if e < n * T:
        r = e // T
        t = e % T
        out[r, t] = a[r, T - 1 - t]


@cuda.jit
def concat_directions(forward, reverse, out):
    """A bidirectional layer's output, as the CPU's ``concat_directions``: the forward
    states at step t, then the reverse direction's states at the same position."""
    n, T, H = forward.shape
    e = cuda.grid(1)
    if e < n * T * 2 * H:
        j = e % (2 * H)
        t = (e // (2 * H)) % T
        r = e // (2 * H * T)
        if j < H:
            out[r, t, j] = forward[r, t, j]
        else:
            out[r, t, j] = reverse[r, T - 1 - t, j - H]


@cuda.jit
def top_features(top, out):
    """The head's input (n, 1, 2H) of a bidirectional top layer: the forward direction's
    last step, the reverse direction's final state (at position 0)."""
    n, T, F = top.shape
    Hd = F // 2
    e = cuda.grid(1)
    if e < n * F:
        r = e // F
        j = e % F
        out[r, 0, j] = top[r, T - 1, j] if j < Hd else top[r, 0, j]


@cuda.jit
def spread_top(dlast, dtop):
    """The gradient reaching a bidirectional top layer's output from ``dlast`` (n, 1, 2H),
    the gradient of :func:`top_features`'s output; zero elsewhere."""
    n, T, F = dtop.shape
    Hd = F // 2
    e = cuda.grid(1)
    if e < n * T * F:
        j = e % F
        t = (e // F) % T
        r = e // (F * T)
        v = dlast[r, 0, j] * 0
        if (j < Hd and t == T - 1) or (j >= Hd and t == 0):
            v = dlast[r, 0, j]
        dtop[r, t, j] = v


@cuda.jit
def direction_grad(dout, direction, out):
    """The part of ``dout`` (n, T, 2H) of one direction, (n, T, H): the forward units,
    or the reverse units in the reverse direction's own step order."""
    n, T, H = out.shape
    e = cuda.grid(1)
    if e < n * T * H:
        j = e % H
        t = (e // H) % T
        r = e // (H * T)
        if direction == 0:
            out[r, t, j] = dout[r, t, j]
        else:
            out[r, t, j] = dout[r, T - 1 - t, H + j]


@cuda.jit
def add_input_grad(dinp, dx, imask, reverse, first):
    """``dinp (+)= dx' * imask`` as the CPU's ``_add_scaled`` (``dinp`` starting at zero
    when ``first``), ``dx'`` being ``dx`` or, with ``reverse``, ``dx`` reversed in time;
    a (0, 0) ``imask`` means no mask."""
    n, T, F = dinp.shape
    e = cuda.grid(1)
    if e < n * T * F:
        j = e % F
        t = (e // F) % T
        r = e // (F * T)
        v = dx[r, T - 1 - t if reverse else t, j]
        acc = v * 0 if first else dinp[r, t, j]
        if imask.shape[0] > 0:
            acc += v * imask[r, j]
        else:
            acc += v
        dinp[r, t, j] = acc


@cuda.jit
def embed(params, offset, X, out):
    """``out[r, t] = E[X[r, t]]``, ``E`` the (vocabulary, dim) matrix at ``offset`` of ``params``."""
    n, T, E = out.shape
    e = cuda.grid(1)
    if e < n * T * E:
        j = e % E
        t = (e // E) % T
        r = e // (E * T)
        out[r, t, j] = params[offset + X[r, t] * E + j]


@cuda.jit
def keep_of(X, keep):
    """The step mask of token sequences: 1 where the token is not padding (0)."""
    n, T = X.shape
    e = cuda.grid(1)
    if e < n * T:
        keep[e // T, e % T] = 1 if X[e // T, e % T] != 0 else 0


@cuda.jit
def zero1(a, start, stop):
    i = start + cuda.grid(1)
    if i < stop:
        a[i] = 0


@cuda.jit
def embedding_grad(dX, perm, tokens, starts, begin, n_tokens, grads, offset):
    """One thread per (distinct token of the batch, unit): the token's embedding row of
    ``grads`` is the sum of ``dX`` over the batch's (row, step) positions holding it,
    added in row, then step order (the CPU's order). ``perm[starts[begin + u]:starts[begin
    + u + 1]]`` are those positions (flat ``r * T + t``) of token ``tokens[begin + u]``."""
    n, T, E = dX.shape
    e = cuda.grid(1)
    if e < n_tokens * E:
        u = begin + e // E
        j = e % E
        acc = dX[0, 0, j] * 0
        for p in range(starts[u], starts[u + 1]):
            q = perm[p]
            acc += dX[q // T, q % T, j]
        grads[offset + tokens[u] * E + j] = acc


@cuda.jit
def sum_squares(v, parts):
    acc = 0.0
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    while i < v.shape[0]:
        acc += float(v[i]) * float(v[i])
        i += stride
    parts[cuda.grid(1)] = acc


@cuda.jit
def check_and_scale(parts, losses, slot, clipnorm, flag, scale):
    """One thread: the global norm from the partial sums (in order); mark the batch as
    failed when its loss or norm is not finite; the clipping factor into ``scale[0]``."""
    if cuda.grid(1) == 0 and flag[0] < 0:
        s = 0.0
        for k in range(parts.shape[0]):
            s += parts[k]
        norm = math.sqrt(s)
        if not (math.isfinite(losses[slot]) and math.isfinite(norm)):
            flag[0] = slot
        scale[0] = clipnorm / norm if clipnorm > 0 and norm > clipnorm else 1.0


@cuda.jit
def update(kind, params, grads, state, alpha, hp, flag, scale):
    i = cuda.grid(1)
    if i < params.shape[0] and flag[0] < 0:
        update_one_gpu(kind, params, state, i, grads[i] * scale[0], alpha, hp)
