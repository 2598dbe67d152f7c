"""CUDA kernels for one LSTM layer: forward and backpropagation through time.

Same layout and gate math as :mod:`numlstm.kernels.cpu` (the GPU twins of the
cell functions of :mod:`numlstm.kernels.gates` are compiled for the GPU here).

Batch rows are independent through time, so each block carries a tile of
``ROWS_PER_BLOCK`` rows through the whole sequence in one launch: its threads
share out the (row, hidden unit) pairs, compute a step, and meet at a barrier
before the next step reads the hidden states just written. Every step reads
all of ``U``: when it fits in the ``SHARED_LIMIT`` bytes of shared memory a
launch may take without opting in (hidden <= 55 in float32, <= 39 in
float64), each block copies it there once; larger ``U`` are read from global
memory through the caches. ``U`` is read transposed in the backward pass so
that neighbouring threads read neighbouring words.

Weight gradients are sums over every (row, step) pair. They are reduced
without atomics, so a result is the same bit for bit on every run: each block
of ``PAIRS_PER_BLOCK`` pairs writes its partial sums to a buffer of its own
(:func:`_partial_grads_kernel`), and a second kernel adds the buffers in
block order (:func:`_reduce_parts`).

Two optional per-row masks, ``None`` by default in :func:`layer_forward` and
:func:`layer_backward`. Whether each is used is a compile-time constant of
the kernels (a mask kernel is compiled only when first used), so the
unmasked kernels hold no trace of the mask code; they are passed zero-size
arrays in place of the masks, which they never read:

- ``keep`` (batch, time), int8 0 or 1: a step with ``keep == 0`` is skipped,
  the state passing through it unchanged (``h_t = h_{t-1}``, ``c_t =
  c_{t-1}``; its pre-activations are stored as zeros). Backward, the gradient
  reaching ``h_t`` and the cell-state carry pass straight through it, and
  its pre-activation gradients are zero (it adds nothing to ``dx``, ``dW``,
  ``dU``, ``db``: the weight-gradient kernel skips it outright, so padding
  need not even be finite);
- ``hmask`` (batch, hidden), the layer's dtype: recurrent dropout. The state
  entering the recurrent product at every step is ``h_{t-1} * hmask[r]``, so
  the gradient leaving through ``U`` is multiplied by it, and ``dU``
  accumulates ``(h_{t-1} * hmask)^T dz``.

Kernels compile lazily on first use, once per dtype (and per choice of
masks). They avoid the ``min`` and ``max`` builtins, whose CUDA overloads
Numba compiles as separate device functions; a conditional expression is
plain arithmetic. The launch sizes are
module attributes read at launch time (tests set them small so that the
multi-block and tail paths run on the simulator). Nothing here validates:
:mod:`numlstm.functional` does.
"""

import warnings

import numba
import numpy as np
from numba import cuda

from numlstm._device import launch
from numlstm.kernels import gates

cell_forward = gates.gpu_twin(gates.cell_forward)
cell_backward = gates.gpu_twin(gates.cell_backward)

THREADS = 256  # threads per block
ROWS_PER_BLOCK = 4  # batch rows a block carries through time
PAIRS_PER_BLOCK = 256  # (row, step) pairs per block of partial weight gradients


SHARED_LIMIT = 48 * 1024  # dynamic shared memory a launch may use without opting in, in bytes


@cuda.jit(device=True)
def _stage(M, staged):
    """Copy the 2-D array ``M`` into this block's shared memory, row-major."""
    cols = M.shape[1]
    i = cuda.threadIdx.x
    while i < M.shape[0] * cols:
        staged[i] = M[i // cols, i % cols]
        i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def _weight(M, staged, stage, row, col):
    """``M[row, col]``, from the block's shared copy when it was staged."""
    if stage:
        return staged[row * M.shape[1] + col]
    return M[row, col]


@cuda.jit(device=True)
def _first_pair(H):
    """``(row, unit)`` of this thread's first (row, hidden unit) pair of its tile."""
    return cuda.threadIdx.x // H, cuda.threadIdx.x % H


@cuda.jit(device=True)
def _next_pair(r, j, H):
    """The pair ``blockDim.x`` pairs after ``(r, j)``, by counting: no division in the
    step loops (a division by a run-time value is a 64-bit division routine)."""
    j += cuda.blockDim.x
    while j >= H:
        j -= H
        r += 1
    return r, j


def _make_recurrent_kernels(dtype, use_keep, use_hmask, use_dhs=True):
    """The forward and backward kernels for one dtype (a shared array's type is fixed
    when the kernel is compiled). ``use_keep``/``use_hmask`` are frozen into the
    kernels as constants: without them the mask branches compile to nothing. Without
    ``use_dhs`` the backward kernel reads no per-step ``dhs`` (the gradient enters
    through ``dh_carry`` alone: a dense head on the last step)."""

    @cuda.jit
    def forward(x, W, U, b, h0, c0, keep, hmask, zs, cs, hs, rows_per_block, stage):
        """A tile of rows through the whole sequence. ``keep``/``hmask`` are the masks
        of the module docstring (read only when ``use_keep``/``use_hmask``)."""
        staged = cuda.shared.array(0, dtype=dtype)
        if stage:  # every step reads all of U: read it from global memory once per block
            _stage(U, staged)
        B, T, n_in = x.shape
        H = U.shape[0]
        r0 = cuda.blockIdx.x * rows_per_block
        r1 = r0 + rows_per_block if r0 + rows_per_block < B else B
        n_pairs = (r1 - r0) * H
        r_first, j_first = _first_pair(H)
        for t in range(T):
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                if use_keep and keep[r, t] == 0:  # a skipped step: the state passes through
                    zs[r, t, j] = zs[r, t, H + j] = zs[r, t, 2 * H + j] = zs[r, t, 3 * H + j] = 0
                    cs[r, t, j] = c_prev
                    hs[r, t, j] = h0[r, j] if t == 0 else hs[r, t - 1, j]
                    p += cuda.blockDim.x
                    r, j = _next_pair(r, j, H)
                    continue
                zi, zf, zg, zo = b[j], b[H + j], b[2 * H + j], b[3 * H + j]
                for k in range(n_in):
                    v = x[r, t, k]
                    zi += v * W[k, j]
                    zf += v * W[k, H + j]
                    zg += v * W[k, 2 * H + j]
                    zo += v * W[k, 3 * H + j]
                for m in range(H):
                    v = h0[r, m] if t == 0 else hs[r, t - 1, m]
                    if use_hmask:
                        v *= hmask[r, m]
                    zi += v * _weight(U, staged, stage, m, j)
                    zf += v * _weight(U, staged, stage, m, H + j)
                    zg += v * _weight(U, staged, stage, m, 2 * H + j)
                    zo += v * _weight(U, staged, stage, m, 3 * H + j)
                _, _, _, _, c, h = cell_forward(zi, zf, zg, zo, c_prev)
                zs[r, t, j] = zi
                zs[r, t, H + j] = zf
                zs[r, t, 2 * H + j] = zg
                zs[r, t, 3 * H + j] = zo
                cs[r, t, j] = c
                hs[r, t, j] = h
                p += cuda.blockDim.x
                r, j = _next_pair(r, j, H)
            cuda.syncthreads()  # step t's hidden states are read by every thread at t + 1

    @cuda.jit
    def backward(U_T, c0, zs, cs, dhs, dh_carry, dc_carry, keep, hmask, dzs, rows_per_block, stage):
        """BPTT for a tile of rows. ``dh_carry``/``dc_carry`` (B, H) hold ``dh_T``/``dc_T``
        on entry and ``dh0``/``dc0`` on exit; ``dzs`` receives the pre-activation gradients.
        ``keep``/``hmask`` as in the forward pass."""
        staged = cuda.shared.array(0, dtype=dtype)
        if stage:
            _stage(U_T, staged)
        B, T, G = zs.shape
        H = G // 4
        r0 = cuda.blockIdx.x * rows_per_block
        r1 = r0 + rows_per_block if r0 + rows_per_block < B else B
        n_pairs = (r1 - r0) * H
        r_first, j_first = _first_pair(H)
        for t in range(T - 1, -1, -1):
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                if use_keep and keep[r, t] == 0:  # skipped: dh_t goes to h_{t-1}, dc_carry is unchanged
                    dzs[r, t, j] = dzs[r, t, H + j] = dzs[r, t, 2 * H + j] = dzs[r, t, 3 * H + j] = 0
                    if use_dhs:
                        dh_carry[r, j] += dhs[r, t, j]
                    p += cuda.blockDim.x
                    r, j = _next_pair(r, j, H)
                    continue
                c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                dzi, dzf, dzg, dzo, dc_prev = cell_backward(
                    zs[r, t, j], zs[r, t, H + j], zs[r, t, 2 * H + j], zs[r, t, 3 * H + j], cs[r, t, j], c_prev,
                    dhs[r, t, j] + dh_carry[r, j] if use_dhs else dh_carry[r, j], dc_carry[r, j])
                dzs[r, t, j] = dzi
                dzs[r, t, H + j] = dzf
                dzs[r, t, 2 * H + j] = dzg
                dzs[r, t, 3 * H + j] = dzo
                dc_carry[r, j] = dc_prev
                p += cuda.blockDim.x
                r, j = _next_pair(r, j, H)
            cuda.syncthreads()  # every gate gradient of step t is written
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                if not (use_keep and keep[r, t] == 0):  # a skipped step's dh_carry is already dh_{t-1}
                    acc = dzs[r, t, 0] * _weight(U_T, staged, stage, 0, j)
                    for k in range(1, G):
                        acc += dzs[r, t, k] * _weight(U_T, staged, stage, k, j)
                    if use_hmask:
                        acc *= hmask[r, j]
                    dh_carry[r, j] = acc  # the gradient reaching h_{t-1} through the recurrence
                p += cuda.blockDim.x
                r, j = _next_pair(r, j, H)
            cuda.syncthreads()

    return forward, backward


_RECURRENT = {}


def recurrent_kernels(dtype, use_keep=False, use_hmask=False, use_dhs=True):
    """``(forward, backward)`` for a NumPy float dtype and a choice of masks, made on first use."""
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask), bool(use_dhs)
    if key not in _RECURRENT:
        _RECURRENT[key] = _make_recurrent_kernels(numba.from_dtype(key[0]), *key[1:])
    return _RECURRENT[key]


def _shared_bytes(M):
    """Bytes of shared memory to stage ``M``, or 0 when it does not fit."""
    size = M.shape[0] * M.shape[1] * np.dtype(M.dtype).itemsize
    return size if size <= SHARED_LIMIT else 0


@cuda.jit
def _input_grad_kernel(dzs, W, dx):
    """``dx[r, t] = dzs[r, t] @ W.T``, one thread per element of ``dx``."""
    B, T, n_in = dx.shape
    G = dzs.shape[2]
    e = cuda.grid(1)
    if e < B * T * n_in:
        i = e % n_in
        rt = e // n_in
        r = rt // T
        t = rt % T
        acc = dzs[r, t, 0] * W[i, 0]
        for k in range(1, G):
            acc += dzs[r, t, k] * W[i, k]
        dx[r, t, i] = acc


# --- weight gradients: a deterministic split-K matrix product ----------------------------------
#
# ``[dW; dU; db] = sum over (row, step) pairs of a^T dz``, ``a = [x_t, h_{t-1} * hmask, 1]``:
# a (input + hidden + 1, 4H) matrix product whose inner dimension is the B*T pairs.
# The pairs are cut into chunks of consecutive pairs; block (row tile, column tile,
# chunk) multiplies its tile over its chunk, staging GEMM_K pairs at a time in shared
# memory, each thread holding a 4 x 4 patch of the tile in registers; the chunks'
# partial products are added in chunk order by :func:`_reduce_parts`. No atomics:
# the same bits on every run.

GEMM_TY = 8  # thread rows of a weight-gradient block; the tile is 4 * GEMM_TY rows
GEMM_TX = 32  # thread columns; the tile is 4 * GEMM_TX gate columns
GEMM_K = 32  # pairs staged in shared memory at a time
GEMM_BLOCKS = 528  # blocks to aim for (4 per multiprocessor of an H100/H200)


def _make_weight_grads(dtype, use_keep, use_hmask, ty, tx, k_stage):
    n_threads = ty * tx
    tile_rows = 4 * ty
    tile_cols = 4 * tx

    @cuda.jit
    def weight_grads(x, h0, hs, dzs, keep, hmask, parts, pairs_per_chunk):
        """``parts[chunk]`` = this block's tile of ``a^T dz`` over the chunk's pairs; the
        pairs with ``keep == 0`` left out (the masks read only when ``use_keep``/``use_hmask``)."""
        a_s = cuda.shared.array((k_stage, tile_rows), dtype)
        b_s = cuda.shared.array((k_stage, tile_cols), dtype)
        pr_s = cuda.shared.array(k_stage, numba.int64)  # the staged pairs' batch row (-1: none)
        pt_s = cuda.shared.array(k_stage, numba.int64)  # and step
        B, T, n_in = x.shape
        H = hs.shape[2]
        G = dzs.shape[2]
        row0 = cuda.blockIdx.x * tile_rows
        col0 = cuda.blockIdx.y * tile_cols
        first = cuda.blockIdx.z * pairs_per_chunk
        last = first + pairs_per_chunk if first + pairs_per_chunk < B * T else B * T
        tid = cuda.threadIdx.x
        ty_ = tid // tx
        tx_ = tid - ty_ * tx
        zero = dtype(0.0)
        acc = cuda.local.array(16, dtype)
        for i in range(16):
            acc[i] = zero
        # thread tid < k_stage follows pair (first + tid + k_stage * stage) by counting
        r = first // T
        t = first - r * T
        t += tid if tid < k_stage else 0
        while t >= T:
            t -= T
            r += 1
        for base in range(first, last, k_stage):
            if tid < k_stage:
                ok = base + tid < last
                if use_keep and ok:
                    ok = keep[r, t] != 0
                pr_s[tid] = r if ok else -1
                pt_s[tid] = t
                t += k_stage
                while t >= T:
                    t -= T
                    r += 1
            cuda.syncthreads()
            e = tid
            while e < k_stage * tile_rows:
                kk = e // tile_rows
                gr = row0 + e - kk * tile_rows
                pr = pr_s[kk]
                pt = pt_s[kk]
                a = zero
                if pr >= 0:
                    if gr < n_in:
                        a = x[pr, pt, gr]
                    elif gr < n_in + H:
                        m = gr - n_in
                        a = h0[pr, m] if pt == 0 else hs[pr, pt - 1, m]
                        if use_hmask:
                            a *= hmask[pr, m]
                    elif gr == n_in + H:
                        a = dtype(1.0)
                a_s[kk, e - kk * tile_rows] = a
                e += n_threads
            e = tid
            while e < k_stage * tile_cols:
                kk = e // tile_cols
                col = col0 + e - kk * tile_cols
                pr = pr_s[kk]
                v = zero
                if pr >= 0 and col < G:
                    v = dzs[pr, pt_s[kk], col]
                b_s[kk, e - kk * tile_cols] = v
                e += n_threads
            cuda.syncthreads()
            for kk in range(k_stage):
                a0 = a_s[kk, 4 * ty_]
                a1 = a_s[kk, 4 * ty_ + 1]
                a2 = a_s[kk, 4 * ty_ + 2]
                a3 = a_s[kk, 4 * ty_ + 3]
                for c in range(4):
                    v = b_s[kk, tx_ + c * tx]
                    acc[c] += a0 * v
                    acc[4 + c] += a1 * v
                    acc[8 + c] += a2 * v
                    acc[12 + c] += a3 * v
            cuda.syncthreads()
        n_rows = parts.shape[1]
        for i in range(4):
            gr = row0 + 4 * ty_ + i
            for c in range(4):
                col = col0 + tx_ + c * tx
                if gr < n_rows and col < G:
                    parts[cuda.blockIdx.z, gr, col] = acc[4 * i + c]

    return weight_grads


_GRADS = {}


def weight_grads_kernel(dtype, use_keep=False, use_hmask=False):
    """The weight-gradient kernel for a dtype and a choice of masks at the current
    ``GEMM_*`` sizes, made on first use; returns ``(kernel, threads, tile rows, tile columns,
    pairs per stage)``."""
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask), GEMM_TY, GEMM_TX, GEMM_K
    if key not in _GRADS:
        _GRADS[key] = _make_weight_grads(numba.from_dtype(key[0]), *key[1:])
    return _GRADS[key], GEMM_TY * GEMM_TX, 4 * GEMM_TY, 4 * GEMM_TX, GEMM_K


def weight_grads(x, h0, hs, dzs, keep, hmask, use_keep, use_hmask, grads, ws=None, tag=""):
    """``grads`` (n_in + H + 1, G) = the sum over every pair of ``[x_t, h_{t-1} * hmask, 1]^T
    dz_t`` (the rows of the output are the input, recurrent and bias rows; ``hs`` are the
    states ``h_t``, ``h0`` the initial ones). ``dzs`` (B, T, G) may have any number of gate
    columns (4H for an LSTM, the GRU's own layout too)."""
    B, T, n_in = x.shape
    G = dzs.shape[2]
    n_rows = grads.shape[0]
    kernel, threads, rows, cols, stage = weight_grads_kernel(x.dtype, use_keep, use_hmask)
    tiles_r, tiles_c = _blocks(n_rows, rows), _blocks(G, cols)
    n_pairs = B * T
    chunks = max(1, min(_blocks(n_pairs, stage), GEMM_BLOCKS // (tiles_r * tiles_c)))
    per = _blocks(_blocks(n_pairs, chunks), stage) * stage
    chunks = _blocks(n_pairs, per)
    parts = _array(ws, tag + "grad-parts", (chunks, n_rows, G), x.dtype)
    launch(kernel, (tiles_r, tiles_c, chunks), threads)(x, h0, hs, dzs, keep, hmask, parts, per)
    launch(_reduce_parts, _blocks(n_rows * G, THREADS), THREADS)(parts, grads)


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

FAST_HIDDEN = 64  # largest hidden size of the register-resident kernels
FAST_ROWS = 4  # batch rows per block of the forward kernel (a multiple of 4; 8 was slower on an H200)
FAST_BACKWARD_ROWS = 4  # and of the backward kernel (at 8 it needs too many registers for 2 blocks an SM)
FAST_FUSED_GRADS = True  # the backward kernel sums the weight gradients itself (no split-K product)
FAST_SHARED = 48 * 1024  # static shared memory a kernel may declare, in bytes
# A register cap for the forward kernel (None: the compiler's choice, about 155-165): at 128
# two blocks share an SM, at the cost of a few spilled registers (40-92 bytes); on an H200
# this was faster at every size measured (benchmarks/results/gpu-h200-issue17-run2.txt).
FAST_MAX_REGISTERS = 128


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
    for rows in (FAST_ROWS, 4):
        if rows % 4 == 0 and _fast_forward_shared(H, F, rows) <= FAST_SHARED:
            return rows
    return 0


def fast_path(dtype, H, F):
    """Whether the register-resident kernels take a layer: float32, hidden <= FAST_HIDDEN,
    and its input weights and partial sums fit in a block's shared memory."""
    return np.dtype(dtype) == np.float32 and 1 <= H <= FAST_HIDDEN and fast_rows(H, F) > 0


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
    key = "forward", int(H), int(F), int(rows), bool(store), bool(all_h), FAST_MAX_REGISTERS
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

STEP_ROWS = 32  # batch rows of a step tile (even)
STEP_UNITS = 16  # hidden units of a forward step tile; the backward tile has 2 * STEP_UNITS
STEP_K = 32  # entries of the inner dimension staged at a time


def step_path(dtype, H):
    """Whether a layer runs one launch per step: float32 and hidden > FAST_HIDDEN."""
    return np.dtype(dtype) == np.float32 and H > FAST_HIDDEN


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
    key = bool(store), bool(use_dhs), STEP_ROWS, STEP_UNITS, STEP_K
    if key not in _STEP:
        _STEP[key] = (_make_step_forward(key[0], STEP_ROWS, STEP_UNITS, STEP_K),
                      _make_step_backward(key[1], STEP_ROWS, 2 * STEP_UNITS, STEP_K))
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


STEP_GRID = True  # one cooperative launch for all steps where the device takes one
_GRID_FAILED = []  # the reason, once a cooperative launch has failed here


def _run_steps(kernels, grid_tiles, threads, steps, args):
    """Run every step: one cooperative launch of at most one block per multiprocessor
    (tiles shared out), or, without one, a launch per step of ``steps`` (t values)."""
    step, whole = kernels
    if STEP_GRID and not _GRID_FAILED:
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


@cuda.jit
def _reduce_parts(parts, out):
    """``out = parts.sum(axis=0)``, added in block order: the same bits on every run."""
    n_rows, G = out.shape
    e = cuda.grid(1)
    if e < n_rows * G:
        row = e // G
        k = e % G
        acc = parts[0, row, k]
        for blk in range(1, parts.shape[0]):
            acc += parts[blk, row, k]
        out[row, k] = acc


def _blocks(n, per_block):
    return (n + per_block - 1) // per_block


_EMPTY = {}


def _empty(dtype, ndim=2):
    """A zero-size (0, 0) (or ``ndim``-dimensional) device array, made once per dtype: it
    owns no memory (its pointer is null), and stands in for an array that a kernel never
    reads or writes."""
    key = np.dtype(dtype), ndim
    if key not in _EMPTY:
        _EMPTY[key] = cuda.device_array((0,) * ndim, dtype=key[0])
    return _EMPTY[key]


def _mask_args(keep, hmask, dtype):
    """``(keep, hmask, use_keep, use_hmask)`` for the kernels, a None mask replaced by an
    empty array."""
    return (_empty(np.int8) if keep is None else keep, _empty(dtype) if hmask is None else hmask,
            keep is not None, hmask is not None)


class Workspace:
    """Device arrays kept from one batch to the next, by name and shape: a trainer asks
    for the same arrays every batch, and gets them without a new allocation (a device
    allocation synchronises and costs far more than the kernels at small sizes)."""

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype, zero=False):
        """The array ``name`` of this shape and dtype; with ``zero``, filled with zeros when
        it is made (for arrays that kernels only read, such as a zero initial state)."""
        key = name, tuple(int(s) for s in shape), np.dtype(dtype)
        a = self._arrays.get(key)
        if a is None:
            if zero:
                a = cuda.to_device(np.zeros(key[1], dtype=key[2]))
            else:
                a = cuda.device_array(key[1], dtype=key[2])
            self._arrays[key] = a
        return a


def _array(ws, name, shape, dtype):
    """A device array from the workspace ``ws``, or a new one without a workspace."""
    return cuda.device_array(shape, dtype=dtype) if ws is None else ws.get(name, shape, dtype)


def layer_forward(x, W, U, b, h0, c0, keep=None, hmask=None, ws=None, tag="", store=True, all_h=True):
    """One layer forward on the GPU; device arrays in, ``(zs, cs, hs)`` device arrays out.

    ``keep`` (device int8 (B, T), 0 or 1) skips the steps where it is 0, the
    state passing through unchanged; ``hmask`` (device (B, H), the layer's
    dtype) multiplies the state entering the recurrent product at every step
    (recurrent dropout). Either may be None: no mask.

    ``ws`` (a :class:`Workspace`) supplies the outputs, under names prefixed by
    ``tag``. For prediction, ``store=False`` writes no ``zs``/``cs`` (None is
    returned for them) and ``all_h=False`` only the last step's state, as ``hs``
    of shape (B, 1, H), where the register-resident kernels run (float32, hidden
    <= FAST_HIDDEN, no masks); float32 layers of larger hidden size without masks
    run one launch per step and write ``cs`` and every ``hs`` (which the next step
    reads), ``zs`` only with ``store`` (None without); elsewhere every output is
    written. Where ``hs`` has every step, the head reads ``hs[:, -1]``.
    """
    B, T, n_in = x.shape
    H = U.shape[0]
    dtype = x.dtype
    if keep is None and hmask is None and fast_path(dtype, H, n_in):
        rows = fast_rows(H, n_in)
        zs = _array(ws, tag + "zs", (B, T, 4 * H), dtype) if store else _empty(dtype, 3)
        cs = _array(ws, tag + "cs", (B, T, H), dtype) if store else _empty(dtype, 3)
        hs = _array(ws, tag + "hs", (B, T if all_h else 1, H), dtype)
        kernel = fast_forward_kernel(H, n_in, rows, store, all_h)
        launch(kernel, _blocks(B, rows), 4 * H)(x, W, U, b, h0, c0, zs, cs, hs)
        return (zs, cs, hs) if store else (None, None, hs)
    if keep is None and hmask is None and step_path(dtype, H):
        zs = _array(ws, tag + "zs", (B, T, 4 * H), dtype) if store else _empty(dtype, 3)
        cs = _array(ws, tag + "cs", (B, T, H), dtype)
        hs = _array(ws, tag + "hs", (B, T, H), dtype)
        forward, _ = step_kernels(store=store)
        _run_steps(forward, (_blocks(B, STEP_ROWS), _blocks(H, STEP_UNITS)), STEP_ROWS // 2 * STEP_UNITS, range(T),
                   (x, W, U, b, h0, c0, zs, cs, hs))
        return (zs if store else None), cs, hs
    keep, hmask, use_keep, use_hmask = _mask_args(keep, hmask, dtype)
    zs = _array(ws, tag + "zs", (B, T, 4 * H), dtype)
    cs = _array(ws, tag + "cs", (B, T, H), dtype)
    hs = _array(ws, tag + "hs", (B, T, H), dtype)
    rows = ROWS_PER_BLOCK
    forward, _ = recurrent_kernels(dtype, use_keep, use_hmask)
    shared = _shared_bytes(U)
    launch(forward, _blocks(B, rows), THREADS, shared)(x, W, U, b, h0, c0, keep, hmask, zs, cs, hs, rows,
                                                       shared > 0)
    return zs, cs, hs


@cuda.jit
def _transpose(src, dst):
    rows, cols = src.shape
    e = cuda.grid(1)
    if e < rows * cols:
        i = e // cols
        dst[e - i * cols, i] = src[i, e - i * cols]


def layer_backward(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, need_dx=True, out=None, keep=None,
                   hmask=None, U=None, ws=None, tag=""):
    """One layer backward on the GPU, from the forward pass's ``zs, cs, hs``.

    ``U_T`` is ``U.T`` as a C-contiguous (device) array; either it or ``U`` may be None
    (the other is made from it when a kernel needs it).
    ``dh_carry``/``dc_carry`` (device, (B, H)) are overwritten: ``dh_T``/``dc_T``
    in, ``dh0``/``dc0`` out. ``dhs`` (B, T, H) is the gradient reaching every step's
    ``h``, or None when only ``dh_T`` carries one (a head on the last step).
    Returns device arrays ``(dx, dW, dU, db)`` (``dx``
    None unless ``need_dx``). With ``out`` (a device (input + hidden + 1, 4H) array, e.g.
    the layer's slice of a flat gradient buffer, whose rows are ``dW``, ``dU``, ``db``
    in that order), the weight gradients are written there. ``keep`` and ``hmask``
    must be those of the forward pass (see :func:`layer_forward`; None: no mask):
    a skipped step passes the gradients reaching it straight through and adds
    nothing to ``dx`` or the weight gradients; the gradient leaving through ``U``
    is multiplied by ``hmask``, and ``dU`` is taken against the masked states.
    ``ws`` and ``tag`` as in :func:`layer_forward`.
    """
    B, T, n_in = x.shape
    H = zs.shape[2] // 4
    G = 4 * H
    dtype = x.dtype
    use_dhs = dhs is not None
    if dhs is None:
        dhs = _empty(dtype, 3)
    dzs = _array(ws, tag + "dzs", (B, T, G), dtype)
    fused = False
    if keep is None and hmask is None and fast_path(dtype, H, n_in):
        if U is None:
            U = _array(ws, tag + "U", (H, G), dtype)
            launch(_transpose, _blocks(H * G, THREADS), THREADS)(U_T, U)
        rows = FAST_BACKWARD_ROWS
        fused = FAST_FUSED_GRADS
        n_blocks = _blocks(B, rows)
        parts = _array(ws, tag + "grad-parts", (n_blocks, n_in + H + 1, G), dtype) if fused else _empty(dtype, 3)
        if not (need_dx or not fused):
            dzs = _empty(dtype, 3)
        kernel = fast_backward_kernel(H, rows, use_dhs, n_in, fused, need_dx or not fused)
        launch(kernel, n_blocks, 4 * H)(U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs, x, h0, hs, parts)
    elif keep is None and hmask is None and step_path(dtype, H):
        if U is None:
            U = _array(ws, tag + "U", (H, G), dtype)
            launch(_transpose, _blocks(H * G, THREADS), THREADS)(U_T, U)
        _, backward = step_kernels(use_dhs=use_dhs)
        units = 2 * STEP_UNITS
        _run_steps(backward, (_blocks(B, STEP_ROWS), _blocks(H, units)), STEP_ROWS // 2 * (units // 4),
                   range(T - 1, -2, -1), (U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs))  # t = -1: dh0 alone
    else:
        if U_T is None:
            U_T = _array(ws, tag + "U_T", (G, H), dtype)
            launch(_transpose, _blocks(H * G, THREADS), THREADS)(U, U_T)
        k, hm, use_keep, use_hmask = _mask_args(keep, hmask, dtype)
        rows = ROWS_PER_BLOCK
        _, backward = recurrent_kernels(dtype, use_keep, use_hmask, use_dhs)
        shared = _shared_bytes(U_T)
        launch(backward, _blocks(B, rows), THREADS, shared)(U_T, c0, zs, cs, dhs, dh_carry, dc_carry, k, hm, dzs,
                                                            rows, shared > 0)
    dx = None
    if need_dx:
        dx = _array(ws, tag + "dx", (B, T, n_in), dtype)
        launch(_input_grad_kernel, _blocks(B * T * n_in, THREADS), THREADS)(dzs, W, dx)
    k, hm, use_keep, use_hmask = _mask_args(keep, hmask, dtype)
    grads = cuda.device_array((n_in + H + 1, G), dtype=dtype) if out is None else out
    if fused:  # the backward kernel's per-block sums, added in block order
        launch(_reduce_parts, _blocks((n_in + H + 1) * G, THREADS), THREADS)(parts, grads)
    else:
        weight_grads(x, h0, hs, dzs, k, hm, use_keep, use_hmask, grads, ws, tag)
    return dx, grads[:n_in], grads[n_in:n_in + H], grads[n_in + H]

