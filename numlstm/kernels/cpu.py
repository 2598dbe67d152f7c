"""CPU kernels for one LSTM layer: forward and backpropagation through time.

Layout (see DESIGN.md): ``x`` (batch, time, input), ``W`` (input, 4H),
``U`` (H, 4H), ``b`` (4H,), gate blocks ``[i | f | g | o]``.

Batch rows are independent through time, so the recurrence is parallelised
over chunks of rows, one per thread: each thread carries tiles of its rows
through every time step with its own rows of the state arrays (no shared
writes, no races). Every matrix product goes through one register-blocked,
vectorized loop (:func:`add_tile`). Each thread sums its weight gradients
into a buffer of its own, one product per tile over all its (row, step)
pairs; the buffers are added in a fixed order afterwards. No BLAS: its thread
pool and Numba's would fight over the cores.

Kernels here do no validation; the wrappers in :mod:`numlstm.functional` and
:mod:`numlstm.core` do.
"""

import numpy as np
from numba import prange

from numlstm.kernels import fpenv
from numlstm.kernels import tile as _tile
from numlstm.kernels._jit import CPU_OPTIONS, njit
from numlstm.kernels.gates import cell_backward, cell_forward

# Index 0 as a plain int64: a literal 0 passed to a jitted function makes Numba
# compile a separate Literal[int](0) specialization of it (and of everything
# it calls), which cost seconds of compilation each.
FIRST = np.int64(0)
PREVIOUS = np.int64(1)  # (steps_T's shift to the previous step, as a plain int64 too)
# ``keep`` for no skipped steps (``hmask`` for no recurrent dropout is a (0, 0) array of the layer's dtype).
NO_KEEP = np.zeros((0, 0), dtype=np.int8)


def no_hmask(dtype):
    """The ``hmask`` argument for no recurrent dropout."""
    return np.zeros((0, 0), dtype=dtype)


@njit(**CPU_OPTIONS)
def assign(dst, src):
    """``dst[...] = src`` for two arrays of one shape (1-D or 2-D), as a loop.

    Numba compiles its slice assignment with a string-formatting error path,
    once for every pair of ranks, which cost about a tenth of a fit's first
    compile; shapes here are right by construction and need no check.
    """
    if dst.ndim == 1:
        for i in range(dst.shape[0]):
            dst[i] = src[i]
    else:
        for i in range(dst.shape[0]):
            for j in range(dst.shape[1]):
                dst[i, j] = src[i, j]


# INLINED_LEVELS: the layer entry points and the recurrent-product helpers are inlined into
# their callers at Numba's IR level. Every function Numba compiles separately is a library of its
# own, and each library is optimised and turned into machine code with the code of everything it
# calls linked in, so each separate level of the chain from add_tile up to the epoch loop compiled
# the same kernels once more (a cold fit and predict on an Intel Xeon: 23.7-24.1 s of wall time
# before, 21.2-22.1 s after, alternated three times). Called from Python they still compile as
# functions of their own.


@njit(**CPU_OPTIONS)
def chunk_count(batch, n_threads):
    """How many row chunks run in parallel: one per thread, never more than rows."""
    return max(1, min(batch, n_threads))


@njit(**CPU_OPTIONS)
def add_tile(Z, t_out, S, t_src, M, r0, r1, b):
    """``Z[r, t_out] += S[r, t_src] @ M`` for every row ``r`` in ``r0:r1``; where ``b``
    (N,) is not empty (``no_initial(Z)`` is), ``Z[r, t_out] = b + S[r, t_src] @ M``.

    ``Z`` (rows, time, N), ``S`` (rows, time, K), ``M`` (K, N), C-contiguous, one
    float dtype. The one matrix-product loop of the package: input and recurrent
    projections, their transposes in the backward pass, the weight gradients and
    the dense head all go through it. Its body is a register-blocked micro-kernel
    with vectors as wide as the CPU's registers, emitted as LLVM IR
    (:mod:`numlstm.kernels.tile`); a function of its own so that each call site
    links one compiled copy.
    """
    _tile.add_tile(Z, t_out, S, t_src, M, r0, r1, b)


@njit(inline="always", **CPU_OPTIONS)
def no_initial(Z):
    """The ``b`` of :func:`add_tile` for adding onto ``Z``: an empty view, not an allocation
    (and of the one array type every call passes, so one compiled loop serves them all)."""
    return Z.reshape(Z.size)[:0]


@njit(**CPU_OPTIONS)
def tile_rows(G):
    """Rows carried together through time, so each block of weights loaded
    into L1 serves all of them (measured best: 32 rows up to G=256, then 16)."""
    return 32 if G <= 256 else 16


# The cell's row functions take whole arrays and a row's indices, and make the row's views
# themselves: views made by the caller and passed in cost as much again as the cell's arithmetic
# at hidden 64 (Numba counts references to each view made in a loop; here they are borrowed
# within one function). One function a row, not one a tile: with the loop over rows around it,
# LLVM's overlap test between the source and the new cell states (rows of one array) covered
# every row at once and failed, and the arithmetic ran unvectorized, 6x slower.
# LSTM cell forward at (32 rows, hidden 64): 2.5-2.8 us a step against 3.8-4.0 (Intel Xeon, one thread).


@njit(**CPU_OPTIONS)
def _cell_forward_row(zs, tz, c_src, t_src, cs, tc, hs, t, r):
    """Row ``r`` of one step: ``zs[r, tz]`` the pre-activations, ``c_src[r, t_src]`` the cell
    state before, ``cs[r, tc]`` and ``hs[r, t]`` the states written."""
    _tile.full_width()
    z, c_prev, c, h = zs[r, tz], c_src[r, t_src], cs[r, tc], hs[r, t]
    H = c.shape[0]
    for j in range(H):
        _, _, _, _, c_j, h_j = cell_forward(z[j], z[H + j], z[2 * H + j], z[3 * H + j], c_prev[j])
        c[j] = c_j
        h[j] = h_j


@njit(**CPU_OPTIONS)
def _cell_backward_row(zs, t, c_src, t_src, cs, dh, dc_carry, r):
    """Row ``r`` of step ``t``: ``z = zs[r, t]`` holds the pre-activations on entry and their
    gradients on exit; ``c_src[r, t_src]`` is the cell state before, ``cs[r, t]`` after;
    ``dc = dc_carry[r, 0]`` goes in as the gradient into ``c_t`` and comes out as that into
    ``c_{t-1}``; ``dh`` (hidden,) the total gradient into ``h_t``."""
    _tile.full_width()
    z, c_prev, c, dc = zs[r, t], c_src[r, t_src], cs[r, t], dc_carry[r, 0]
    H = c.shape[0]
    for j in range(H):
        dzi, dzf, dzg, dzo, dc_prev = cell_backward(
            z[j], z[H + j], z[2 * H + j], z[3 * H + j], c[j], c_prev[j], dh[j], dc[j]
        )
        z[j] = dzi
        z[H + j] = dzf
        z[2 * H + j] = dzg
        z[3 * H + j] = dzo
        dc[j] = dc_prev


# PREFETCH: the backward pass reads what the forward pass stored for each step (an LSTM's
# pre-activations and cell states, a GRU's two projections and its states), and the incoming
# gradients, long out of the nearer caches when the problem is large (46 MB stored for a GRU layer
# at (64, 100, 16, 256)), a step at a time, last step first, and the cell's arithmetic waited for
# them. While a step's products run, the rows the step before will read are asked for
# (tile.prefetch_rows), so that they are in L2 when its cells need them. The same bits; the
# backward pass alone with and without, alternated in one process (31 calls each, two runs whose
# levels differ by more than the gain, Intel Xeon, two threads): at (64, 100, 16, 256) LSTM
# 36.1/40.2 ms against 36.9/41.5, GRU 27.5/32.0 against 28.7/33.3; at (256, 60, 8, 64) LSTM 8.4/8.9
# against 9.5/10.1, GRU 6.5/7.7 against 6.7/8.1. It costs about 0.2 s of compile time a backward
# pass (a GRU's 6.23-6.51 s against 6.06-6.34, four alternated runs); written as a loop in Python
# rather than one emitted in LLVM IR, 0.75 s.


@njit(**CPU_OPTIONS)
def masked_state(prev, hmask, hm, r):
    """``hm[r, 0] = prev * hmask[r]``: the state entering the recurrent product under
    recurrent dropout (one mask per row, the same at every step)."""
    out = hm[r, 0]
    m = hmask[r]
    for j in range(out.shape[0]):
        out[j] = prev[j] * m[j]


@njit(**CPU_OPTIONS)
def forward_rows(x, W, U, b, h0, c0, zs, cs, hs, r0, r1, keep, hmask, hm):
    """Rows ``r0:r1`` through every time step, a tile of rows at a time; fills
    pre-activations ``zs``, cell states ``cs`` and hidden states ``hs``.
    ``h0``/``c0`` are (batch, 1, hidden).

    ``keep`` (batch, time) int8, or shape (0, 0) for none: a step with
    ``keep == 0`` is skipped, the states passing through it unchanged.
    ``hmask`` (batch, hidden), or shape (0, 0) for none: recurrent dropout, the
    state entering ``h @ U`` multiplied by the row's mask; ``hm`` (batch, 1,
    hidden) is scratch for the masked states.
    """
    _tile.full_width()
    env = fpenv.flush_subnormals()  # (see kernels.fpenv)
    T = x.shape[1]
    R = tile_rows(U.shape[1])
    skipping = keep.shape[0] > 0
    # zs and cs keep every step for backpropagation (time T); for prediction only the current
    # step's pre-activations and the last two cell states (time 1 and 2), as rings: step t at t % length.
    Tz, Tc = zs.shape[1], cs.shape[1]
    for a in range(r0, r1, R):
        e = min(r1, a + R)
        for t in range(T):
            tz, tc = t % Tz, t % Tc
            add_tile(zs, tz, x, t, W, a, e, b)  # the bias and the input projection, in one pass
            add_recurrent_product(zs, tz, t, h0, hs, U, hmask, hm, a, e, no_initial(zs))
            c_src, t_src = (c0, FIRST) if t == 0 else (cs, (t - 1) % Tc)
            for r in range(a, e):
                _cell_forward_row(zs, tz, c_src, t_src, cs, tc, hs, t, r)
                if skipping and keep[r, t] == 0:
                    assign(cs[r, tc], c_src[r, t_src])
                    assign(hs[r, t], h0[r, 0] if t == 0 else hs[r, t - 1])
    fpenv.restore(env)


@njit(inline="always", **CPU_OPTIONS)  # see INLINED_LEVELS
def add_recurrent_product(Z, t_out, t, h0, hs, U, hmask, hm, a, e, b):
    """``Z[r, t_out] += h_{t-1} @ U`` for rows ``a:e`` (``h_{-1}`` being ``h0``), the state
    times the row's ``hmask`` under recurrent dropout (staged in the scratch ``hm``); where
    ``b`` is not empty, ``Z[r, t_out] = b + h_{t-1} @ U`` (as :func:`add_tile`)."""
    if hmask.shape[0] > 0:
        for r in range(a, e):
            masked_state(h0[r, 0] if t == 0 else hs[r, t - 1], hmask, hm, r)
    # one call site of the product (each one is compiled code of its own)
    src, t_src = (hm, FIRST) if hmask.shape[0] > 0 else ((h0, FIRST) if t == 0 else (hs, t - 1))
    add_tile(Z, t_out, src, t_src, U, a, e, b)


@njit(parallel=True, **CPU_OPTIONS)
def _forward_chunks(x, W, U, b, h0, c0, zs, cs, hs, n_chunks, keep, hmask, hm):
    B = x.shape[0]
    for chunk in prange(n_chunks):
        forward_rows(x, W, U, b, h0, c0, zs, cs, hs, chunk * B // n_chunks, (chunk + 1) * B // n_chunks, keep,
                     hmask, hm)


@njit(**CPU_OPTIONS)
def scratch_states(hmask, B, H, dtype):
    """The (batch, 1, hidden) scratch for masked states (empty without recurrent dropout)."""
    return np.empty((B if hmask.shape[0] > 0 else 0, 1, H), dtype=dtype)


@njit(inline="always", **CPU_OPTIONS)  # see INLINED_LEVELS
def layer_forward(x, W, U, b, h0, c0, zs, cs, hs, n_chunks, keep, hmask):
    """One layer forward over the whole batch, in ``n_chunks`` parallel chunks of rows.

    ``keep`` (batch, time) int8 and ``hmask`` (batch, hidden) as in
    :func:`forward_rows`; pass shape (0, 0) arrays for neither."""
    B = x.shape[0]
    H = U.shape[0]
    h0 = h0.reshape((B, 1, H))
    c0 = c0.reshape((B, 1, H))
    hm = scratch_states(hmask, B, H, x.dtype)
    if n_chunks > 1:
        _forward_chunks(x, W, U, b, h0, c0, zs, cs, hs, n_chunks, keep, hmask, hm)
    else:
        forward_rows(x, W, U, b, h0, c0, zs, cs, hs, FIRST, x.shape[0], keep, hmask, hm)


@njit(**CPU_OPTIONS)
def add_gram(out, A_T, B):
    """``out += A_T @ B`` where ``A_T`` (K, n) holds one column per (row, step)
    and ``B`` (n, N) one row: the weight gradients, as one :func:`add_tile`."""
    K, N = out.shape
    add_tile(out.reshape((K, 1, N)), FIRST, A_T.reshape((K, 1, A_T.shape[1])), FIRST, B, FIRST, K, no_initial(out))


@njit(**CPU_OPTIONS)
def add_masked_carry(dh_carry, hm, hmask, r):
    """``dh_carry[r, 0] += hm[r, 0] * hmask[r]``: the gradient through ``(h * mask) @ U``."""
    out = dh_carry[r, 0]
    g = hm[r, 0]
    m = hmask[r]
    for j in range(out.shape[0]):
        out[j] += g[j] * m[j]


@njit(inline="always", **CPU_OPTIONS)  # see INLINED_LEVELS
def add_recurrent_grad(dh_carry, grads, t, U_T, hmask, hm, a, e):
    """``dh_carry[r, 0] += grads[r, t] @ U_T`` for rows ``a:e``: the gradient reaching
    ``h_{t-1}`` through the recurrent product, times the row's ``hmask`` under
    recurrent dropout (``hm`` is then the scratch for the unmasked product)."""
    masked = hmask.shape[0] > 0
    if masked:
        for r in range(a, e):
            hm[r, 0, :] = 0
    add_tile(hm if masked else dh_carry, FIRST, grads, t, U_T, a, e, no_initial(dh_carry))
    if masked:
        for r in range(a, e):
            add_masked_carry(dh_carry, hm, hmask, r)


TRANSPOSE_BLOCK = 64  # steps per block of steps_T: a block's source rows stay in L1 across its columns


@njit(**CPU_OPTIONS)
def steps_T(out, row0, first, src, mask, a, e, T, shift):
    """Fill rows ``row0:row0 + features`` of ``out`` with one column per (row, step) of rows
    ``a:e``, column ``(r - a) * T + t`` holding ``src[r, t - shift]`` (``first[r, 0]`` where
    ``t < shift``), times ``mask[r]`` where ``mask`` is not empty: the inputs (``shift`` 0)
    and the states entering each step's recurrent product (``shift`` 1, ``first`` the
    initial state, ``mask`` the recurrent dropout) as the weight gradients' ``A_T``
    (see BIAS_ROW).

    Transposed a block of ``TRANSPOSE_BLOCK`` steps at a time, each output row written
    along. Written a column at a time, each value of a column went to another output row,
    a row length ((e - a) * T values) from the last: at 32 rows of 96 steps 12 KB apart,
    of 768 steps 98 KB. The states' transpose of 32 rows took 0.60 ms at 96 steps and
    4.9 ms at 768 that way, 0.12 and 1.2 ms now (Intel Xeon, one thread)."""
    F = src.shape[2]
    for r in range(a, e):
        base = (r - a) * T
        for t0 in range(0, T, TRANSPOSE_BLOCK):
            t1 = min(T, t0 + TRANSPOSE_BLOCK)
            for j in range(F):
                row = out[row0 + j]
                for t in range(max(t0, shift), t1):
                    row[base + t] = src[r, t - shift, j]
        for j in range(F):  # the steps before the first source step (t < shift)
            for t in range(min(shift, T)):
                out[row0 + j, base + t] = first[r, 0, j]
        if mask.shape[0] > 0:
            for j in range(F):
                m = mask[r, j]
                row = out[row0 + j]
                for t in range(T):
                    row[base + t] *= m


# BIAS_ROW: the weight gradients of a tile are one product ``grads += A_T @ dz`` (add_gram), whose
# ``A_T`` stacks the inputs' and the states' columns (steps_T) over a row of ones: the row of ones
# makes the last row of ``grads`` the bias gradient, the sum of ``dz`` over every (row, step) in
# order, as a loop ``db += dz[i]`` added it before (a fused multiply-add by 1 rounds as an add does:
# the same bits). That loop read ``dz`` from memory once more on its own, an array operation a
# (row, step): at (64, 100, 16, 256) it took 2.9 ms of a GRU layer's backward pass (two biases;
# Intel Xeon, two threads), and the product's extra row costs next to nothing. An LSTM layer's
# inputs and states multiply the same ``dz``, so its ``dW``, ``dU`` and ``db`` are one product,
# which reads ``dz`` once instead of three times.


@njit(inline="always", **CPU_OPTIONS)  # (a loop of a few lines: no compiled function of its own)
def ones_row(out, row):
    """``out[row, :] = 1``: the row of ones of a weight-gradient product's ``A_T`` (see BIAS_ROW)."""
    r = out[row]
    for i in range(r.shape[0]):
        r[i] = 1


@njit(**CPU_OPTIONS)
def backward_rows(x, W_T, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, grads, dx, r0, r1, need_dx, dh_t, keep,
                  hmask, hm):
    """Backpropagation through time for rows ``r0:r1``, a tile of rows at a time.

    ``h0``, ``c0``, ``dh_carry``, ``dc_carry`` are (batch, 1, hidden). On entry
    the carries hold the gradients with respect to the final states (``dh_T``,
    ``dc_T``); on exit, those with respect to the initial states. ``zs`` is
    overwritten with the pre-activation gradients. The weight gradients of
    these rows are *added* to ``grads`` (input + hidden + 1, 4 * hidden): ``dW``,
    ``dU`` and ``db`` stacked (see BIAS_ROW; the caller gives each thread its
    own). ``dh_t`` is a scratch row (H,). ``keep``, ``hmask`` and
    ``hm`` as in :func:`forward_rows`: a skipped step passes its gradients
    through and has zero pre-activation gradients.
    """
    _tile.full_width()
    env = fpenv.flush_subnormals()  # (see kernels.fpenv)
    T = zs.shape[1]
    R = tile_rows(zs.shape[2])
    skipping = keep.shape[0] > 0
    for a in range(r0, r1, R):
        e = min(r1, a + R)
        for t in range(T - 1, -1, -1):
            c_src, t_src = (c0, FIRST) if t == 0 else (cs, t - 1)
            for r in range(a, e):
                assign(dh_t, dhs[r, t])
                dh_t += dh_carry[r, 0]
                if skipping and keep[r, t] == 0:
                    zs[r, t, :] = 0
                    assign(dh_carry[r, 0], dh_t)
                    continue
                _cell_backward_row(zs, t, c_src, t_src, cs, dh_t, dc_carry, r)
                dh_carry[r, 0, :] = 0
            if t > 0:  # what the next step's cells read, while this step's products run (see PREFETCH)
                _tile.prefetch_rows(zs, t - 1, a, e)
                _tile.prefetch_rows(dhs, t - 1, a, e)
                if t > 1:
                    _tile.prefetch_rows(cs, t - 2, a, e)
            add_recurrent_grad(dh_carry, zs, t, U_T, hmask, hm, a, e)
            if need_dx:
                for r in range(a, e):
                    dx[r, t, :] = 0
                add_tile(dx, t, zs, t, W_T, a, e, no_initial(dx))
        n = (e - a) * T
        I = x.shape[2]
        A_T = np.empty((grads.shape[0], n), dtype=zs.dtype)
        steps_T(A_T, FIRST, x, x, hmask[:0], a, e, T, FIRST)
        steps_T(A_T, I, h0, hs, hmask, a, e, T, PREVIOUS)
        ones_row(A_T, grads.shape[0] - 1)
        add_gram(grads, A_T, zs[a:e].reshape((n, zs.shape[2])))
    fpenv.restore(env)


@njit(parallel=True, **CPU_OPTIONS)
def _backward_chunks(x, W_T, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, grad_parts, dx, n_chunks, need_dx,
                     keep, hmask, hm):
    B = zs.shape[0]
    H = U_T.shape[1]
    for chunk in prange(n_chunks):
        backward_rows(x, W_T, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, grad_parts[chunk], dx,
                      chunk * B // n_chunks, (chunk + 1) * B // n_chunks, need_dx, np.empty(H, dtype=zs.dtype),
                      keep, hmask, hm)


@njit(**CPU_OPTIONS)
def sum_parts(parts, out):
    """``out[:] = parts.sum(axis=0)``, added in a fixed order (chunk 0 first)."""
    assign(out, parts[0])
    for k in range(1, parts.shape[0]):
        out += parts[k]


@njit(inline="always", **CPU_OPTIONS)  # see INLINED_LEVELS
def layer_backward(x, W, U, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, dW, dU, db, dx, n_chunks, need_dx, keep,
                   hmask):
    """One layer backward. Overwrites ``zs`` with gradients of the pre-activations,
    ``dh_carry``/``dc_carry`` (``dh_T``/``dc_T`` in, ``dh0``/``dc0`` out), and
    writes ``dW``, ``dU``, ``db`` and, when ``need_dx``, ``dx``. ``keep`` and
    ``hmask`` as in :func:`layer_forward` (the same as the forward pass's).

    Each thread sums its rows' weight gradients into a buffer of its own; the
    buffers are added in a fixed order afterwards, so the result does not
    depend on scheduling.
    """
    B = zs.shape[0]
    H = U.shape[0]
    U_T = np.ascontiguousarray(U.T)
    W_T = np.ascontiguousarray(W.T)
    h0 = h0.reshape((B, 1, H))
    c0 = c0.reshape((B, 1, H))
    dh_carry = dh_carry.reshape((B, 1, H))
    dc_carry = dc_carry.reshape((B, 1, H))
    hm = scratch_states(hmask, B, H, zs.dtype)
    I = x.shape[2]
    grad_parts = np.zeros((n_chunks, I + H + 1, zs.shape[2]), dtype=zs.dtype)  # [dW; dU; db] (see BIAS_ROW)
    if n_chunks > 1:
        _backward_chunks(x, W_T, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, grad_parts, dx, n_chunks, need_dx,
                         keep, hmask, hm)
    else:
        backward_rows(x, W_T, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, grad_parts[0], dx, FIRST,
                      zs.shape[0], need_dx, np.empty(H, dtype=zs.dtype), keep, hmask, hm)
    grads = np.empty(grad_parts.shape[1:], dtype=zs.dtype)
    sum_parts(grad_parts, grads)
    assign(dW, grads[:I])
    assign(dU, grads[I:I + H])
    assign(db, grads[I + H])
