"""CPU kernels for one LSTM layer: forward and backpropagation through time.

Layout (see DESIGN.md): ``x`` (batch, time, input), ``W`` (input, 4H),
``U`` (H, 4H), ``b`` (4H,), gate blocks ``[i | f | g | o]``.

Batch rows are independent through time, so the recurrence is parallelised
over chunks of rows: each thread carries its rows through every time step with
its own rows of the state arrays (no shared writes, no races). Within a row the
work is written as loops over contiguous memory that LLVM vectorizes. Weight
gradients are one GEMM each over all (batch, time) rows after the recurrence.

Kernels here do no validation; the wrappers in :mod:`numlstm.functional` and
:mod:`numlstm.core` do.
"""

import numpy as np
from numba import njit, prange

from numlstm.kernels._jit import CPU_OPTIONS
from numlstm.kernels.gates import cell_backward, cell_forward


@njit(**CPU_OPTIONS)
def add_vecmat(z, v, M):
    """``z += v @ M`` for one row: ``v`` (K,), ``M`` (K, N), ``z`` (N,).

    Four rows of ``M`` per pass over ``z``: one load and store of ``z`` per four
    multiply-adds instead of per one.
    """
    K, N = M.shape
    k = 0
    while k + 4 <= K:
        v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        M0, M1, M2, M3 = M[k], M[k + 1], M[k + 2], M[k + 3]
        for j in range(N):
            z[j] += (v0 * M0[j] + v1 * M1[j]) + (v2 * M2[j] + v3 * M3[j])
        k += 4
    while k < K:
        vk = v[k]
        Mk = M[k]
        for j in range(N):
            z[j] += vk * Mk[j]
        k += 1


@njit(**CPU_OPTIONS)
def add_matvec(out, M, v):
    """``out += M @ v``: ``M`` (K, N), ``v`` (N,), ``out`` (K,)."""
    K, N = M.shape
    for k in range(K):
        Mk = M[k]
        acc = out[k] * 0
        for j in range(N):
            acc += Mk[j] * v[j]
        out[k] += acc


@njit(**CPU_OPTIONS)
def _cell_forward_row(z, c_prev, c, h):
    H = c.shape[0]
    for j in range(H):
        _, _, _, _, c_j, h_j = cell_forward(z[j], z[H + j], z[2 * H + j], z[3 * H + j], c_prev[j])
        c[j] = c_j
        h[j] = h_j


@njit(**CPU_OPTIONS)
def _cell_backward_row(z, c_prev, c, dh, dc):
    """``z`` holds the pre-activations on entry and their gradients on exit;
    ``dc`` goes in as the gradient into ``c_t`` and comes out as that into ``c_{t-1}``."""
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


@njit(**CPU_OPTIONS)
def forward_rows(x, W, U, b, h0, c0, zs, cs, hs, r0, r1):
    """Rows ``r0:r1`` through every time step; fills pre-activations ``zs``,
    cell states ``cs`` and hidden states ``hs``."""
    T = x.shape[1]
    for r in range(r0, r1):
        for t in range(T):
            z = zs[r, t]
            z[:] = b
            add_vecmat(z, x[r, t], W)
            if t == 0:
                add_vecmat(z, h0[r], U)
                _cell_forward_row(z, c0[r], cs[r, t], hs[r, t])
            else:
                add_vecmat(z, hs[r, t - 1], U)
                _cell_forward_row(z, cs[r, t - 1], cs[r, t], hs[r, t])


@njit(parallel=True, **CPU_OPTIONS)
def _forward_chunks(x, W, U, b, h0, c0, zs, cs, hs, n_chunks):
    B = x.shape[0]
    for chunk in prange(n_chunks):
        forward_rows(x, W, U, b, h0, c0, zs, cs, hs, chunk * B // n_chunks, (chunk + 1) * B // n_chunks)


@njit(**CPU_OPTIONS)
def layer_forward(x, W, U, b, h0, c0, zs, cs, hs, n_chunks):
    """One layer forward over the whole batch, in ``n_chunks`` parallel chunks of rows."""
    if n_chunks > 1:
        _forward_chunks(x, W, U, b, h0, c0, zs, cs, hs, n_chunks)
    else:
        forward_rows(x, W, U, b, h0, c0, zs, cs, hs, 0, x.shape[0])


@njit(**CPU_OPTIONS)
def add_outer_sum(out, A, Bm):
    """``out += A.T @ Bm``: ``A`` (T, K), ``Bm`` (T, N), ``out`` (K, N).

    Four rows of ``A``/``Bm`` per pass over ``out``, for the same reason as in
    :func:`add_vecmat`.
    """
    T, K = A.shape
    N = Bm.shape[1]
    t = 0
    while t + 4 <= T:
        B0, B1, B2, B3 = Bm[t], Bm[t + 1], Bm[t + 2], Bm[t + 3]
        for k in range(K):
            a0, a1, a2, a3 = A[t, k], A[t + 1, k], A[t + 2, k], A[t + 3, k]
            ok = out[k]
            for j in range(N):
                ok[j] += (a0 * B0[j] + a1 * B1[j]) + (a2 * B2[j] + a3 * B3[j])
        t += 4
    while t < T:
        Bt = Bm[t]
        for k in range(K):
            a = A[t, k]
            ok = out[k]
            for j in range(N):
                ok[j] += a * Bt[j]
        t += 1


@njit(**CPU_OPTIONS)
def backward_rows(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, dW, dU, db, dx, r0, r1, need_dx, dh_t):
    """Backpropagation through time for rows ``r0:r1``.

    On entry ``dh_carry``/``dc_carry`` hold the gradients with respect to the
    final states (``dh_T``, ``dc_T``); on exit, those with respect to the
    initial states. ``zs`` is overwritten with the pre-activation gradients.
    The weight gradients of these rows are *added* to ``dW``, ``dU``, ``db``
    (the caller gives each thread its own). ``dh_t`` is a scratch row (H,).
    """
    T = zs.shape[1]
    for r in range(r0, r1):
        dh_next = dh_carry[r]
        dc = dc_carry[r]
        for t in range(T - 1, -1, -1):
            dh_t[:] = dhs[r, t]
            dh_t += dh_next
            dz = zs[r, t]
            if t == 0:
                _cell_backward_row(dz, c0[r], cs[r, t], dh_t, dc)
            else:
                _cell_backward_row(dz, cs[r, t - 1], cs[r, t], dh_t, dc)
            dh_next[:] = 0
            add_vecmat(dh_next, dz, U_T)
            if need_dx:
                dx[r, t, :] = 0
                add_matvec(dx[r, t], W, dz)
        dzr = zs[r]
        add_outer_sum(dW, x[r], dzr)
        add_outer_sum(dU, h0[r : r + 1], dzr[:1])
        if T > 1:
            add_outer_sum(dU, hs[r, : T - 1], dzr[1:])
        for t in range(T):
            db += dzr[t]


@njit(parallel=True, **CPU_OPTIONS)
def _backward_chunks(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, dW_parts, dU_parts, db_parts, dx,
                     n_chunks, need_dx):
    B = zs.shape[0]
    H = U_T.shape[1]
    for chunk in prange(n_chunks):
        backward_rows(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry,
                      dW_parts[chunk], dU_parts[chunk], db_parts[chunk], dx,
                      chunk * B // n_chunks, (chunk + 1) * B // n_chunks, need_dx, np.empty(H, dtype=zs.dtype))


@njit(**CPU_OPTIONS)
def layer_backward(x, W, U, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, dW, dU, db, dx, n_chunks, need_dx):
    """One layer backward. Overwrites ``zs`` with gradients of the pre-activations,
    ``dh_carry``/``dc_carry`` (``dh_T``/``dc_T`` in, ``dh0``/``dc0`` out), and
    writes ``dW``, ``dU``, ``db`` and, when ``need_dx``, ``dx``.

    Each thread sums its rows' weight gradients into a buffer of its own; the
    buffers are added in a fixed order afterwards, so the result does not
    depend on scheduling.
    """
    H = U.shape[0]
    U_T = np.ascontiguousarray(U.T)
    dW_parts = np.zeros((n_chunks,) + dW.shape, dtype=dW.dtype)
    dU_parts = np.zeros((n_chunks,) + dU.shape, dtype=dU.dtype)
    db_parts = np.zeros((n_chunks,) + db.shape, dtype=db.dtype)
    if n_chunks > 1:
        _backward_chunks(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, dW_parts, dU_parts, db_parts, dx,
                         n_chunks, need_dx)
    else:
        backward_rows(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, dW_parts[0], dU_parts[0],
                      db_parts[0], dx, 0, zs.shape[0], need_dx, np.empty(H, dtype=zs.dtype))
    dW[:] = dW_parts[0]
    dU[:] = dU_parts[0]
    db[:] = db_parts[0]
    for k in range(1, n_chunks):
        dW += dW_parts[k]
        dU += dU_parts[k]
        db += db_parts[k]
