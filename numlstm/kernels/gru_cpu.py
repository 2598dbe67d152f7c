"""CPU kernels for one GRU layer: forward and backpropagation through time.

Layout (see docs/gru.md): ``x`` (batch, time, input), ``W`` (input, 3H),
``U`` (H, 3H), ``b`` (2, 3H) (row 0 the input bias, row 1 the recurrent
bias), gate blocks ``[z | r | n]``, the reset gate applied after the
recurrent product (a Keras GRU with ``reset_after=True``, a PyTorch
``nn.GRU``).

The same scheme as :mod:`numlstm.kernels.cpu`, whose matrix-product loop
(:func:`~numlstm.kernels.cpu.add_tile`), tiling and chunking it reuses:
chunks of batch rows in parallel, one per thread, each carrying tiles of its
rows through time; weight gradients summed per thread and added in a fixed
order afterwards. The difference is that the two projections are kept apart,
the input one ``xs = x W + b[0]`` and the recurrent one ``gs = h U + b[1]``,
because the candidate needs ``r * (h U_n + b[1, n])`` on its own. The
backward pass overwrites both with their gradients, which differ only in the
candidate block.

Kernels here do no validation; :mod:`numlstm.functional` does.
"""

import numpy as np
from numba import prange

from numlstm.kernels import fpenv
from numlstm.kernels import tile as _tile
from numlstm.kernels._jit import CPU_OPTIONS, njit
from numlstm.kernels.cpu import (FIRST, add_gram, assign, add_recurrent_grad, add_recurrent_product, add_tile,
                                 PREVIOUS, no_initial, ones_row, scratch_states, steps_T, sum_parts, tile_rows)
from numlstm.kernels.gates import gru_cell_backward, gru_cell_forward


# (The row functions take whole arrays and a row's indices: see kernels.cpu's.)
@njit(**CPU_OPTIONS)
def _cell_forward_row(xs, gs, tx, h_src, t_src, hs, t, r):
    """Row ``r`` of one step: ``xs[r, tx]``/``gs[r, tx]`` the projections, ``h_src[r, t_src]``
    the state before, ``hs[r, t]`` the state written."""
    _tile.full_width()
    a, g, h_prev, h = xs[r, tx], gs[r, tx], h_src[r, t_src], hs[r, t]
    H = h.shape[0]
    for j in range(H):
        h[j] = gru_cell_forward(a[j], a[H + j], a[2 * H + j], g[j], g[H + j], g[2 * H + j], h_prev[j])


@njit(**CPU_OPTIONS)
def _cell_backward_row(xs, gs, t, h_src, t_src, dh_carry, r):
    """Row ``r`` of step ``t``: ``a = xs[r, t]``/``g = gs[r, t]`` hold the input/recurrent
    projections on entry and their gradients on exit; ``h_src[r, t_src]`` is the state
    before; ``dh = dh_carry[r, 0]`` goes in as the total gradient into ``h_t`` and comes
    out as the part of the gradient into ``h_{t-1}`` that bypasses ``U``."""
    _tile.full_width()
    a, g, h_prev, dh = xs[r, t], gs[r, t], h_src[r, t_src], dh_carry[r, 0]
    H = dh.shape[0]
    for j in range(H):
        dz, dr, dan, dgn, dh_prev = gru_cell_backward(
            a[j], a[H + j], a[2 * H + j], g[j], g[H + j], g[2 * H + j], h_prev[j], dh[j]
        )
        a[j] = dz
        a[H + j] = dr
        a[2 * H + j] = dan
        g[j] = dz
        g[H + j] = dr
        g[2 * H + j] = dgn
        dh[j] = dh_prev


@njit(**CPU_OPTIONS)
def forward_rows(x, W, U, b, h0, xs, gs, hs, r0, r1, keep, hmask, hm):
    """Rows ``r0:r1`` through every time step, a tile of rows at a time; fills the
    input projections ``xs``, the recurrent projections ``gs`` and the hidden
    states ``hs``. ``h0`` is (batch, 1, hidden). ``keep``, ``hmask`` and ``hm``
    as in :func:`numlstm.kernels.cpu.forward_rows`: under recurrent dropout only
    the recurrent product sees the masked state; the blend ``z * h_{t-1}`` uses
    the state itself."""
    _tile.full_width()
    env = fpenv.flush_subnormals()  # (see kernels.fpenv)
    T = x.shape[1]
    R = tile_rows(U.shape[1])
    b_in, b_rec = b[0], b[1]
    skipping = keep.shape[0] > 0
    # xs and gs keep every step for backpropagation (time T); for prediction only the current
    # step's (time 1): step t at t % length.
    Tx = xs.shape[1]
    for a in range(r0, r1, R):
        e = min(r1, a + R)
        for t in range(T):
            tx = t % Tx
            # each projection and its bias in one pass
            add_tile(xs, tx, x, t, W, a, e, b_in)
            add_recurrent_product(gs, tx, t, h0, hs, U, hmask, hm, a, e, b_rec)
            h_src, t_src = (h0, FIRST) if t == 0 else (hs, t - 1)
            for r in range(a, e):
                _cell_forward_row(xs, gs, tx, h_src, t_src, hs, t, r)
                if skipping and keep[r, t] == 0:
                    assign(hs[r, t], h_src[r, t_src])
    fpenv.restore(env)


@njit(parallel=True, **CPU_OPTIONS)
def _forward_chunks(x, W, U, b, h0, xs, gs, hs, n_chunks, keep, hmask, hm):
    B = x.shape[0]
    for chunk in prange(n_chunks):
        forward_rows(x, W, U, b, h0, xs, gs, hs, chunk * B // n_chunks, (chunk + 1) * B // n_chunks, keep, hmask, hm)


@njit(inline="always", **CPU_OPTIONS)  # as kernels.cpu's (see INLINED_LEVELS there)
def layer_forward(x, W, U, b, h0, xs, gs, hs, n_chunks, keep, hmask):
    """One GRU layer forward over the whole batch, in ``n_chunks`` parallel chunks of rows.
    ``keep`` (batch, time) int8 and ``hmask`` (batch, hidden), or shape (0, 0) arrays for none."""
    B = x.shape[0]
    H = U.shape[0]
    h0 = h0.reshape((B, 1, H))
    hm = scratch_states(hmask, B, H, x.dtype)
    if n_chunks > 1:
        _forward_chunks(x, W, U, b, h0, xs, gs, hs, n_chunks, keep, hmask, hm)
    else:
        forward_rows(x, W, U, b, h0, xs, gs, hs, FIRST, B, keep, hmask, hm)


@njit(**CPU_OPTIONS)
def backward_rows(x, W_T, U_T, h0, xs, gs, hs, dhs, dh_carry, in_grads, rec_grads, dx, r0, r1, need_dx, keep, hmask,
                  hm):
    """Backpropagation through time for rows ``r0:r1``, a tile of rows at a time.

    ``h0`` and ``dh_carry`` are (batch, 1, hidden); the carry holds ``dh_T``
    on entry and ``dh0`` on exit. ``xs``/``gs`` are overwritten with the
    gradients of the input/recurrent projections. The weight gradients of
    these rows are *added* to ``in_grads`` (input + 1, 3 * hidden), ``dW`` over
    the input bias's, and ``rec_grads`` (hidden + 1, 3 * hidden), ``dU`` over the
    recurrent bias's (see :data:`numlstm.kernels.cpu.BIAS_ROW`; the caller gives
    each thread its own). ``keep``, ``hmask``, ``hm`` as in :func:`forward_rows`.
    """
    _tile.full_width()
    env = fpenv.flush_subnormals()  # (see kernels.fpenv)
    T = xs.shape[1]
    G = xs.shape[2]
    R = tile_rows(G)
    skipping = keep.shape[0] > 0
    for a in range(r0, r1, R):
        e = min(r1, a + R)
        for t in range(T - 1, -1, -1):
            h_src, t_src = (h0, FIRST) if t == 0 else (hs, t - 1)
            for r in range(a, e):
                dh_t = dh_carry[r, 0]
                dh_t += dhs[r, t]
                if skipping and keep[r, t] == 0:  # the gradient passes through to h_{t-1}
                    xs[r, t, :] = 0
                    gs[r, t, :] = 0
                else:
                    _cell_backward_row(xs, gs, t, h_src, t_src, dh_carry, r)
            if t > 0:  # what the next step's cells read, while this step's products run (see cpu.PREFETCH)
                _tile.prefetch_rows(xs, t - 1, a, e)
                _tile.prefetch_rows(gs, t - 1, a, e)
                _tile.prefetch_rows(dhs, t - 1, a, e)
                if t > 1:
                    _tile.prefetch_rows(hs, t - 2, a, e)
            add_recurrent_grad(dh_carry, gs, t, U_T, hmask, hm, a, e)
            if need_dx:
                for r in range(a, e):
                    dx[r, t, :] = 0
                add_tile(dx, t, xs, t, W_T, a, e, no_initial(dx))
        n = (e - a) * T
        A_T = np.empty((in_grads.shape[0], n), dtype=xs.dtype)
        steps_T(A_T, FIRST, x, x, hmask[:0], a, e, T, FIRST)
        ones_row(A_T, in_grads.shape[0] - 1)
        add_gram(in_grads, A_T, xs[a:e].reshape((n, G)))
        A_T = np.empty((rec_grads.shape[0], n), dtype=xs.dtype)
        steps_T(A_T, FIRST, h0, hs, hmask, a, e, T, PREVIOUS)
        ones_row(A_T, rec_grads.shape[0] - 1)
        add_gram(rec_grads, A_T, gs[a:e].reshape((n, G)))
    fpenv.restore(env)


@njit(parallel=True, **CPU_OPTIONS)
def _backward_chunks(x, W_T, U_T, h0, xs, gs, hs, dhs, dh_carry, in_parts, rec_parts, dx, n_chunks, need_dx, keep,
                     hmask, hm):
    B = xs.shape[0]
    for chunk in prange(n_chunks):
        backward_rows(x, W_T, U_T, h0, xs, gs, hs, dhs, dh_carry, in_parts[chunk], rec_parts[chunk], dx,
                      chunk * B // n_chunks, (chunk + 1) * B // n_chunks, need_dx, keep, hmask, hm)


@njit(inline="always", **CPU_OPTIONS)  # as kernels.cpu's (see INLINED_LEVELS there)
def layer_backward(x, W, U, h0, xs, gs, hs, dhs, dh_carry, dW, dU, db, dx, n_chunks, need_dx, keep, hmask):
    """One GRU layer backward. Overwrites ``xs``/``gs`` with the gradients of the
    projections and ``dh_carry`` (``dh_T`` in, ``dh0`` out), and writes ``dW``,
    ``dU``, ``db`` (2, 3H) and, when ``need_dx``, ``dx``. ``keep`` and ``hmask``
    as in :func:`layer_forward`.

    Each thread sums its rows' weight gradients into a buffer of its own; the
    buffers are added in a fixed order afterwards, so the result does not
    depend on scheduling.
    """
    B = xs.shape[0]
    H = U.shape[0]
    U_T = np.ascontiguousarray(U.T)
    W_T = np.ascontiguousarray(W.T)
    h0 = h0.reshape((B, 1, H))
    dh_carry = dh_carry.reshape((B, 1, H))
    hm = scratch_states(hmask, B, H, xs.dtype)
    I, G = x.shape[2], xs.shape[2]
    # [dW; the input bias's] and [dU; the recurrent bias's] per thread (see kernels.cpu.BIAS_ROW)
    in_parts = np.zeros((n_chunks, I + 1, G), dtype=xs.dtype)
    rec_parts = np.zeros((n_chunks, H + 1, G), dtype=xs.dtype)
    if n_chunks > 1:
        _backward_chunks(x, W_T, U_T, h0, xs, gs, hs, dhs, dh_carry, in_parts, rec_parts, dx, n_chunks, need_dx, keep,
                         hmask, hm)
    else:
        backward_rows(x, W_T, U_T, h0, xs, gs, hs, dhs, dh_carry, in_parts[0], rec_parts[0], dx, FIRST, B, need_dx,
                      keep, hmask, hm)
    grads = np.empty((I + 1, G), dtype=xs.dtype)
    sum_parts(in_parts, grads)
    assign(dW, grads[:I])
    assign(db[0], grads[I])
    grads = np.empty((H + 1, G), dtype=xs.dtype)
    sum_parts(rec_parts, grads)
    assign(dU, grads[:H])
    assign(db[1], grads[H])
