"""The LSTM's float32 CUDA kernels for layers without masks: register-resident
kernels for hidden sizes up to ``FAST_HIDDEN``, and one launch per step (or one
cooperative launch for every step) above it.

:func:`numlstm.kernels.cuda.layer_forward` and ``layer_backward`` choose them
(:func:`fast_path`, :func:`step_path`) and fall back on the general kernels
there for float64, masks and the rest. Same gate math (the GPU twins of
:mod:`numlstm.kernels.gates`), the same fixed order of every sum: the same bits
on every run. Sizes in :mod:`numlstm.kernels.cuda_sizes`.
"""

import warnings

import numba
import numpy as np
from numba import cuda

from numlstm._device import launch
from numlstm.kernels import cuda_sizes as sizes
from numlstm.kernels import gates

cell_forward = gates.gpu_twin(gates.cell_forward)
cell_backward = gates.gpu_twin(gates.cell_backward)


# --- register-resident kernels: float32, hidden <= FAST_HIDDEN -----------------------------------
#
# A block of 4H threads carries FAST_ROWS rows through every step. Thread (unit j,
# quarter q) (``tid = 4 j + q``) keeps in registers, for the whole sequence, the part of
# ``U`` it multiplies: forward, rows ``q*KQ .. q*KQ + KQ - 1`` of unit j's four gate
# columns (KQ = ceil(H / 4)); backward, row j of U in gate q's columns. The states
# ``h_{t-1}`` (forward) and the gate gradients ``dz_t`` (backward) of the block's rows
# live in shared memory, interleaved so that the four quarters read four neighbouring
# banks. Per step: each thread multiplies its slice for every row of the block, the
# four partial sums land in shared memory, and after a barrier thread (j, q) adds them
# in quarter order for rows q, q + 4, ... and runs the cell there, keeping ``c`` (and,
# backward, the carried gradients) in registers. Two barriers a step, no atomics, a
# fixed order of summation: the same bits on every run. Shapes are compile-time
# constants (kernels are built per hidden size, input size and rows), so every loop
# over the register slices unrolls and the slices stay in registers.


def _jit(max_registers=None):
    """``cuda.jit`` with a register cap where the target takes one (not the simulator)."""
    if max_registers is None or numba.config.ENABLE_CUDASIM:
        return cuda.jit
    return cuda.jit(max_registers=max_registers)


def _fast_forward_shared(H, F, R):
    kq = (H + 3) // 4
    return 4 * (R * 4 * kq + R * 16 * H + F * 4 * H)


def fast_rows(H, F):
    """Rows per block for the register-resident kernels: ``FAST_ROWS``, or 4 where the
    forward kernel's shared memory would not fit; 0 where neither fits."""
    for rows in (sizes.FAST_ROWS, 4):
        if rows % 4 == 0 and _fast_forward_shared(H, F, rows) <= sizes.FAST_SHARED:
            return rows
    return 0


def fast_path(dtype, H, F):
    """Whether the register-resident kernels take a layer: float32, hidden <= FAST_HIDDEN,
    and its input weights and partial sums fit in a block's shared memory."""
    return np.dtype(dtype) == np.float32 and 1 <= H <= sizes.FAST_HIDDEN and fast_rows(H, F) > 0


def _make_fast_forward(H, F, R, store, all_h, max_registers=None):
    f32 = numba.float32
    KQ = (H + 3) // 4  # units of h_{t-1} per quarter
    RQ = R // 4  # rows a thread runs the cell for
    G = 4 * H
    HP = 4 * KQ  # units of h_{t-1} with the padding
    NP = R * 16 * H  # partial sums of a step

    @_jit(max_registers)
    def forward(x, W, U, b, h0, c0, zs, cs, hs):
        """Rows ``blockIdx.x * R ..`` through every step. With ``store``, the pre-activations
        and cell states of every step (for the backward pass) into ``zs``, ``cs``; with
        ``all_h`` every step's ``h`` into ``hs``, else only the last one, into ``hs[:, 0]``."""
        h_s = cuda.shared.array((R, HP), f32)  # h_{t-1}[row, k] at (k % KQ) * 4 + k // KQ
        part = cuda.shared.array(NP, f32)  # [row][gate][unit][quarter]
        w_s = cuda.shared.array((F, G), f32)
        B, T = x.shape[0], x.shape[1]
        tid = cuda.threadIdx.x
        j = tid >> 2
        q = tid & 3
        r0 = cuda.blockIdx.x * R
        u = cuda.local.array(HP, f32)  # U[q * KQ + kk, gate * H + j] at 4 * kk + gate
        for kk in range(KQ):
            m = q * KQ + kk
            for gate in range(4):
                u[4 * kk + gate] = U[m, gate * H + j] if m < H else f32(0.0)
        e = tid
        while e < F * G:
            w_s[e // G, e % G] = W[e // G, e % G]
            e += 4 * H
        e = tid
        while e < R * 4 * KQ:  # the padding units (H not a multiple of 4) stay zero
            h_s[e // (4 * KQ), e % (4 * KQ)] = f32(0.0)
            e += 4 * H
        cuda.syncthreads()
        at = (j % KQ) * 4 + j // KQ  # where unit j's state lives in h_s
        c = cuda.local.array(RQ, f32)
        for i in range(RQ):
            r = r0 + q + 4 * i
            c[i] = c0[r, j] if r < B else f32(0.0)
            h_s[q + 4 * i, at] = h0[r, j] if r < B else f32(0.0)
        cuda.syncthreads()
        acc = cuda.local.array(16, f32)
        for t in range(T):
            # four rows at a time: a loop body the compiler unrolls whole, so that ``u`` and
            # ``acc`` are indexed by constants and stay in registers
            for rb in range(0, R, 4):
                for i in range(16):
                    acc[i] = f32(0.0)
                for kk in range(KQ):
                    for rr in range(4):
                        v = h_s[rb + rr, 4 * kk + q]
                        for gate in range(4):
                            acc[4 * rr + gate] += v * u[4 * kk + gate]
                for rr in range(4):
                    for gate in range(4):
                        part[((4 * (rb + rr) + gate) * H + j) * 4 + q] = acc[4 * rr + gate]
            cuda.syncthreads()  # every partial sum of step t is written
            for i in range(RQ):
                rr = q + 4 * i
                r = r0 + rr
                z0 = b[j]
                z1 = b[H + j]
                z2 = b[2 * H + j]
                z3 = b[3 * H + j]
                if r < B:
                    for f in range(F):
                        v = x[r, t, f]
                        z0 += v * w_s[f, j]
                        z1 += v * w_s[f, H + j]
                        z2 += v * w_s[f, 2 * H + j]
                        z3 += v * w_s[f, 3 * H + j]
                p = (4 * rr * H + j) * 4
                z0 = z0 + part[p] + part[p + 1] + part[p + 2] + part[p + 3]
                p += 4 * H
                z1 = z1 + part[p] + part[p + 1] + part[p + 2] + part[p + 3]
                p += 4 * H
                z2 = z2 + part[p] + part[p + 1] + part[p + 2] + part[p + 3]
                p += 4 * H
                z3 = z3 + part[p] + part[p + 1] + part[p + 2] + part[p + 3]
                _, _, _, _, cn, hn = cell_forward(z0, z1, z2, z3, c[i])
                c[i] = cn
                h_s[rr, at] = hn
                if r < B:
                    if store:
                        zs[r, t, j] = z0
                        zs[r, t, H + j] = z1
                        zs[r, t, 2 * H + j] = z2
                        zs[r, t, 3 * H + j] = z3
                        cs[r, t, j] = cn
                    if all_h:
                        hs[r, t, j] = hn
                    elif t == T - 1:
                        hs[r, 0, j] = hn
            cuda.syncthreads()  # h_t is complete before step t + 1 reads it

    return forward


def _make_fast_backward(H, R, use_dhs, F, fused, store_dz):
    f32 = numba.float32
    RQ = R // 4
    G = 4 * H
    F1 = F + 1 if fused else 1  # the input rows and the bias row of this thread's column

    @cuda.jit
    def backward(U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs, x, h0, hs, parts):
        """BPTT for rows ``blockIdx.x * R ..``: as the generic backward kernel, with ``U``
        itself (not transposed): thread (j, q) holds ``U[j, q*H : q*H + H]``. With ``fused``,
        the block's weight gradients too, summed in registers while ``dz`` is in shared
        memory: thread (j, q) owns ``dU[j, q*H : q*H + H]`` and column ``q*H + j`` of ``dW``
        and ``db``; they go to ``parts[blockIdx.x]`` (rows ``dW``, ``dU``, ``db``), added in
        block order afterwards. ``dzs`` is written only with ``store_dz`` (for ``dx``)."""
        dz_s = cuda.shared.array((R, G), f32)  # dz_t[row, gate * H + m] at 4 * m + gate
        part = cuda.shared.array((R, G), f32)  # [row][unit * 4 + quarter]
        B, T = zs.shape[0], zs.shape[1]
        tid = cuda.threadIdx.x
        j = tid >> 2
        q = tid & 3
        r0 = cuda.blockIdx.x * R
        u = cuda.local.array(H, f32)
        gu = cuda.local.array(H, f32)  # dU[j, q * H + m]
        gw = cuda.local.array(F1, f32)  # dW[f, q * H + j], then db[q * H + j]
        for m in range(H):
            u[m] = U[j, q * H + m]
            gu[m] = f32(0.0)
        for f in range(F1):
            gw[f] = f32(0.0)
        dh = cuda.local.array(RQ, f32)
        dc = cuda.local.array(RQ, f32)
        for i in range(RQ):
            r = r0 + q + 4 * i
            dh[i] = dh_carry[r, j] if r < B else f32(0.0)
            dc[i] = dc_carry[r, j] if r < B else f32(0.0)
        for t in range(T - 1, -1, -1):
            for i in range(RQ):
                rr = q + 4 * i
                r = r0 + rr
                d0 = d1 = d2 = d3 = f32(0.0)
                if r < B:
                    c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                    d = dh[i] + dhs[r, t, j] if use_dhs else dh[i]
                    d0, d1, d2, d3, dcp = cell_backward(zs[r, t, j], zs[r, t, H + j], zs[r, t, 2 * H + j],
                                                        zs[r, t, 3 * H + j], cs[r, t, j], c_prev, d, dc[i])
                    dc[i] = dcp
                    if store_dz:
                        dzs[r, t, j] = d0
                        dzs[r, t, H + j] = d1
                        dzs[r, t, 2 * H + j] = d2
                        dzs[r, t, 3 * H + j] = d3
                dz_s[rr, 4 * j] = d0
                dz_s[rr, 4 * j + 1] = d1
                dz_s[rr, 4 * j + 2] = d2
                dz_s[rr, 4 * j + 3] = d3
            cuda.syncthreads()  # every gate gradient of step t is in dz_s
            for rr in range(R):
                r = r0 + rr
                a = f32(0.0)
                if fused:
                    hp = f32(0.0)  # h_{t-1}[r, j]; a row past the batch has dz = 0
                    if r < B:
                        hp = h0[r, j] if t == 0 else hs[r, t - 1, j]
                    for m in range(H):
                        v = dz_s[rr, 4 * m + q]
                        a += v * u[m]
                        gu[m] += hp * v
                    if r < B:
                        v = dz_s[rr, 4 * j + q]  # dz[r, q * H + j]
                        for f in range(F):
                            gw[f] += x[r, t, f] * v
                        gw[F] += v
                else:
                    for m in range(H):
                        a += dz_s[rr, 4 * m + q] * u[m]
                part[rr, 4 * j + q] = a
            cuda.syncthreads()  # every partial sum is written
            for i in range(RQ):
                rr = q + 4 * i
                dh[i] = part[rr, 4 * j] + part[rr, 4 * j + 1] + part[rr, 4 * j + 2] + part[rr, 4 * j + 3]
        for i in range(RQ):
            r = r0 + q + 4 * i
            if r < B:
                dh_carry[r, j] = dh[i]
                dc_carry[r, j] = dc[i]
        if fused:
            blk = cuda.blockIdx.x
            for m in range(H):
                parts[blk, F + j, q * H + m] = gu[m]
            for f in range(F):
                parts[blk, f, q * H + j] = gw[f]
            parts[blk, F + H, q * H + j] = gw[F]

    return backward


_FAST = {}


def fast_forward_kernel(H, F, rows, store=True, all_h=True):
    """The register-resident forward kernel for hidden ``H``, ``F`` inputs, ``rows`` rows per
    block, made on first use (with the current ``FAST_MAX_REGISTERS``)."""
    key = "forward", int(H), int(F), int(rows), bool(store), bool(all_h), sizes.FAST_MAX_REGISTERS
    if key not in _FAST:
        _FAST[key] = _make_fast_forward(*key[1:])
    return _FAST[key]


def fast_backward_kernel(H, rows, use_dhs=True, F=0, fused=False, store_dz=True):
    """The register-resident backward kernel, made on first use (``F`` inputs matter only
    ``fused``, with the weight gradients)."""
    key = "backward", int(H), int(rows), bool(use_dhs), int(F) if fused else 0, bool(fused), bool(store_dz)
    if key not in _FAST:
        _FAST[key] = _make_fast_backward(*key[1:])
    return _FAST[key]


# --- one launch per step: float32, hidden > FAST_HIDDEN ------------------------------------------
#
# Where ``U`` is too large for registers, each step is one launch over tiles of
# (STEP_ROWS rows, STEP_UNITS hidden units): a block multiplies ``h_{t-1}`` by the four
# gate columns of its units, staging STEP_K entries of ``h`` and ``U`` at a time in
# shared memory, each thread holding two rows x four gates in registers, and runs the
# cell on them (forward); backward, a block multiplies ``dz_{t+1}`` by ``U^T`` for its
# units (two rows x four units a thread) and runs the cell's backward step on them.
# The launch boundary is the barrier between steps; the order of every sum is fixed.


def step_path(dtype, H):
    """Whether a layer runs one launch per step: float32 and hidden > FAST_HIDDEN."""
    return np.dtype(dtype) == np.float32 and H > sizes.FAST_HIDDEN


def _make_step_forward(store, TR, TJ, KS):
    f32 = numba.float32
    half = TR // 2
    NT = half * TJ
    G_T = 4 * TJ

    @cuda.jit(device=True)
    def tile_forward(t, r0, j0, x, W, U, b, h0, c0, zs, cs, hs):
        """Step ``t`` for rows ``r0 ..`` and units ``j0 ..``; thread (row ``ra``, unit ``jj``)
        runs rows ``ra`` and ``ra + TR / 2``."""
        h_s = cuda.shared.array((KS, TR), f32)
        u_s = cuda.shared.array((KS, G_T), f32)
        B, T, F = x.shape
        H = U.shape[0]
        tid = cuda.threadIdx.x
        ra = tid // TJ
        jj = tid - ra * TJ
        acc = cuda.local.array(8, f32)
        for i in range(8):
            acc[i] = f32(0.0)
        for k0 in range(0, H, KS):
            e = tid
            while e < KS * TR:
                rr = e // KS
                kk = e - rr * KS
                r = r0 + rr
                k = k0 + kk
                v = f32(0.0)
                if r < B and k < H:
                    v = h0[r, k] if t == 0 else hs[r, t - 1, k]
                h_s[kk, rr] = v
                e += NT
            e = tid
            while e < KS * G_T:
                kk = e // G_T
                col = e - kk * G_T
                gate = col // TJ
                j = j0 + col - gate * TJ
                k = k0 + kk
                u_s[kk, col] = U[k, gate * H + j] if (k < H and j < H) else f32(0.0)
                e += NT
            cuda.syncthreads()
            for kk in range(KS):
                a0 = h_s[kk, ra]
                a1 = h_s[kk, ra + half]
                for gate in range(4):
                    u = u_s[kk, gate * TJ + jj]
                    acc[gate] += a0 * u
                    acc[4 + gate] += a1 * u
            cuda.syncthreads()
        j = j0 + jj
        if j < H:
            for i in range(2):
                r = r0 + ra + i * half
                if r < B:
                    z0 = b[j]
                    z1 = b[H + j]
                    z2 = b[2 * H + j]
                    z3 = b[3 * H + j]
                    for f in range(F):
                        v = x[r, t, f]
                        z0 += v * W[f, j]
                        z1 += v * W[f, H + j]
                        z2 += v * W[f, 2 * H + j]
                        z3 += v * W[f, 3 * H + j]
                    z0 += acc[4 * i]
                    z1 += acc[4 * i + 1]
                    z2 += acc[4 * i + 2]
                    z3 += acc[4 * i + 3]
                    c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                    _, _, _, _, c, h = cell_forward(z0, z1, z2, z3, c_prev)
                    if store:
                        zs[r, t, j] = z0
                        zs[r, t, H + j] = z1
                        zs[r, t, 2 * H + j] = z2
                        zs[r, t, 3 * H + j] = z3
                    cs[r, t, j] = c
                    hs[r, t, j] = h

    @cuda.jit
    def step_forward(t, x, W, U, b, h0, c0, zs, cs, hs):
        """Step ``t``, one tile a block: rows ``blockIdx.x * TR ..``, units ``blockIdx.y * TJ ..``."""
        tile_forward(t, cuda.blockIdx.x * TR, cuda.blockIdx.y * TJ, x, W, U, b, h0, c0, zs, cs, hs)

    @cuda.jit
    def grid_forward(x, W, U, b, h0, c0, zs, cs, hs):
        """Every step in one cooperative launch: the blocks share out the tiles of a step and
        meet at a grid barrier before the next."""
        grid = cuda.cg.this_grid()
        B, T = x.shape[0], x.shape[1]
        n_r = (B + TR - 1) // TR
        n_j = (U.shape[0] + TJ - 1) // TJ
        for t in range(T):
            tr, tj = _first_tile(n_r)
            while tj < n_j:
                tile_forward(t, tr * TR, tj * TJ, x, W, U, b, h0, c0, zs, cs, hs)
                tr, tj = _next_tile(tr, tj, n_r)
            grid.sync()

    return step_forward, grid_forward


def _make_step_backward(use_dhs, TR, TJ, KS):
    f32 = numba.float32
    half = TR // 2
    quarter = TJ // 4
    NT = half * quarter

    @cuda.jit(device=True)
    def tile_backward(t, r0, j0, U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs):
        """Step ``t`` of the backward pass for rows ``r0 ..`` and units ``j0 ..``: the gradient reaching ``h_t`` (``dh_carry``, that is ``dh_T``,
        at the last step, else ``dz_{t+1} U^T``; plus ``dhs[:, t]``) through the cell, ``dc_carry``
        carried in place. At ``t = -1`` only ``dh0 = dz_0 U^T`` into ``dh_carry``. Thread
        (``ra``, ``jq``) runs rows ``ra, ra + TR / 2`` and units ``jq, jq + TJ / 4, ...``."""
        d_s = cuda.shared.array((KS, TR), f32)
        u_s = cuda.shared.array((KS, TJ), f32)
        B, T, G = zs.shape
        H = G // 4
        tid = cuda.threadIdx.x
        ra = tid // quarter
        jq = tid - ra * quarter
        acc = cuda.local.array(8, f32)  # [row i][unit m] at 4 * i + m
        for i in range(8):
            acc[i] = f32(0.0)
        if t < T - 1:  # the gradient through the recurrence, dz_{t+1} U^T
            for k0 in range(0, G, KS):
                e = tid
                while e < KS * TR:
                    rr = e // KS
                    kk = e - rr * KS
                    r = r0 + rr
                    k = k0 + kk
                    d_s[kk, rr] = dzs[r, t + 1, k] if (r < B and k < G) else f32(0.0)
                    e += NT
                e = tid
                while e < KS * TJ:
                    jl = e // KS
                    kk = e - jl * KS
                    j = j0 + jl
                    k = k0 + kk
                    u_s[kk, jl] = U[j, k] if (j < H and k < G) else f32(0.0)
                    e += NT
                cuda.syncthreads()
                for kk in range(KS):
                    a0 = d_s[kk, ra]
                    a1 = d_s[kk, ra + half]
                    for m in range(4):
                        u = u_s[kk, jq + m * quarter]
                        acc[m] += a0 * u
                        acc[4 + m] += a1 * u
                cuda.syncthreads()
        for i in range(2):
            r = r0 + ra + i * half
            for m in range(4):
                j = j0 + jq + m * quarter
                if r < B and j < H:
                    d = dh_carry[r, j] if t == T - 1 else acc[4 * i + m]
                    if t < 0:
                        dh_carry[r, j] = d
                    else:
                        if use_dhs:
                            d += dhs[r, t, j]
                        c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                        d0, d1, d2, d3, dcp = cell_backward(zs[r, t, j], zs[r, t, H + j], zs[r, t, 2 * H + j],
                                                            zs[r, t, 3 * H + j], cs[r, t, j], c_prev, d,
                                                            dc_carry[r, j])
                        dc_carry[r, j] = dcp
                        dzs[r, t, j] = d0
                        dzs[r, t, H + j] = d1
                        dzs[r, t, 2 * H + j] = d2
                        dzs[r, t, 3 * H + j] = d3

    @cuda.jit
    def step_backward(t, U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs):
        """Step ``t``, one tile a block: rows ``blockIdx.x * TR ..``, units ``blockIdx.y * TJ ..``."""
        tile_backward(t, cuda.blockIdx.x * TR, cuda.blockIdx.y * TJ, U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs)

    @cuda.jit
    def grid_backward(U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs):
        """Every step (and ``dh0``) in one cooperative launch, as :func:`grid_forward`."""
        grid = cuda.cg.this_grid()
        B, T = zs.shape[0], zs.shape[1]
        n_r = (B + TR - 1) // TR
        n_j = (U.shape[0] + TJ - 1) // TJ
        for t in range(T - 1, -2, -1):
            tr, tj = _first_tile(n_r)
            while tj < n_j:
                tile_backward(t, tr * TR, tj * TJ, U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs)
                tr, tj = _next_tile(tr, tj, n_r)
            grid.sync()

    return step_backward, grid_backward


_STEP = {}


def step_kernels(store=True, use_dhs=True):
    """``((step forward, grid forward), (step backward, grid backward))`` at the current
    ``STEP_*`` sizes, made on first use: the one-step kernels (a launch per step) and
    the cooperative ones (every step in one launch, a grid barrier between steps)."""
    key = bool(store), bool(use_dhs), sizes.STEP_ROWS, sizes.STEP_UNITS, sizes.STEP_K
    if key not in _STEP:
        _STEP[key] = (_make_step_forward(key[0], sizes.STEP_ROWS, sizes.STEP_UNITS, sizes.STEP_K),
                      _make_step_backward(key[1], sizes.STEP_ROWS, 2 * sizes.STEP_UNITS, sizes.STEP_K))
    return _STEP[key]


@cuda.jit(device=True)
def _first_tile(n_r):
    """``(row tile, unit tile)`` of this block's first tile in a cooperative grid."""
    return cuda.blockIdx.x % n_r, cuda.blockIdx.x // n_r


@cuda.jit(device=True)
def _next_tile(tr, tj, n_r):
    """The tile ``gridDim.x`` tiles on, by counting (no division in the step loop)."""
    tr += cuda.gridDim.x
    while tr >= n_r:
        tr -= n_r
        tj += 1
    return tr, tj


_GRID_FAILED = []  # the reason, once a cooperative launch has failed here


def run_steps(kernels, grid_tiles, threads, steps, args):
    """Run every step: one cooperative launch of at most one block per multiprocessor
    (tiles shared out), or, without one, a launch per step of ``steps`` (t values)."""
    step, whole = kernels
    if sizes.STEP_GRID and not _GRID_FAILED:
        if numba.config.ENABLE_CUDASIM:
            blocks = 1  # the simulator's grid barrier holds for one block only
        else:
            blocks = min(grid_tiles[0] * grid_tiles[1], cuda.get_current_device().MULTIPROCESSOR_COUNT)
        try:
            launch(whole, blocks, threads)(*args)
            return
        except Exception as error:  # no cooperative launch here (no device runtime library, ...)
            _GRID_FAILED.append(f"{type(error).__name__}: {error}")
            warnings.warn(f"numlstm: one launch per step instead of a cooperative launch ({_GRID_FAILED[0]})",
                          RuntimeWarning, stacklevel=3)
    configured = launch(step, grid_tiles, threads)
    for t in steps:
        configured(t, *args)
