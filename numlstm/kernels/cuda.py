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
without atomics, so a result is the same bit for bit on every run: a
split-K matrix product (:func:`weight_grads`) writes each chunk of pairs'
partial sums to a buffer of its own, and a second kernel adds the buffers in
chunk order (:func:`numlstm.kernels.cuda_common.reduce_parts`).

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
plain arithmetic. The launch sizes are :mod:`numlstm.kernels.cuda_sizes`'
attributes, read at launch time (tests set them small there so that the
multi-block and tail paths run on the simulator). The shared helpers are in
:mod:`numlstm.kernels.cuda_common`, the float32 kernels for layers without
masks (register-resident, and one launch per step) in
:mod:`numlstm.kernels.cuda_fast`; :func:`layer_forward` and
:func:`layer_backward` choose among them. Nothing here validates:
:mod:`numlstm.functional` does.
"""

import numba
import numpy as np
from numba import cuda

from numlstm._device import launch
from numlstm.kernels import cuda_sizes as sizes
from numlstm.kernels.cuda_common import (Workspace, ceil_div, empty_device, first_pair, input_grad_kernel, mask_args,
                                         next_pair, reduce_parts, shared_bytes, stage_in_shared, staged_weight,
                                         transpose_kernel, workspace_array)
from numlstm.kernels.cuda_fast import (cell_backward, cell_forward, fast_backward_kernel, fast_forward_kernel,
                                       fast_path, fast_rows, run_steps, step_kernels, step_path)

__all__ = ["Workspace", "layer_backward", "layer_forward", "recurrent_kernels", "weight_grads", "weight_grads_kernel"]


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
            stage_in_shared(U, staged)
        B, T, n_in = x.shape
        H = U.shape[0]
        r0 = cuda.blockIdx.x * rows_per_block
        r1 = r0 + rows_per_block if r0 + rows_per_block < B else B
        n_pairs = (r1 - r0) * H
        r_first, j_first = first_pair(H)
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
                    r, j = next_pair(r, j, H)
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
                    zi += v * staged_weight(U, staged, stage, m, j)
                    zf += v * staged_weight(U, staged, stage, m, H + j)
                    zg += v * staged_weight(U, staged, stage, m, 2 * H + j)
                    zo += v * staged_weight(U, staged, stage, m, 3 * H + j)
                _, _, _, _, c, h = cell_forward(zi, zf, zg, zo, c_prev)
                zs[r, t, j] = zi
                zs[r, t, H + j] = zf
                zs[r, t, 2 * H + j] = zg
                zs[r, t, 3 * H + j] = zo
                cs[r, t, j] = c
                hs[r, t, j] = h
                p += cuda.blockDim.x
                r, j = next_pair(r, j, H)
            cuda.syncthreads()  # step t's hidden states are read by every thread at t + 1

    @cuda.jit
    def backward(U_T, c0, zs, cs, dhs, dh_carry, dc_carry, keep, hmask, dzs, rows_per_block, stage):
        """BPTT for a tile of rows. ``dh_carry``/``dc_carry`` (B, H) hold ``dh_T``/``dc_T``
        on entry and ``dh0``/``dc0`` on exit; ``dzs`` receives the pre-activation gradients.
        ``keep``/``hmask`` as in the forward pass."""
        staged = cuda.shared.array(0, dtype=dtype)
        if stage:
            stage_in_shared(U_T, staged)
        B, T, G = zs.shape
        H = G // 4
        r0 = cuda.blockIdx.x * rows_per_block
        r1 = r0 + rows_per_block if r0 + rows_per_block < B else B
        n_pairs = (r1 - r0) * H
        r_first, j_first = first_pair(H)
        for t in range(T - 1, -1, -1):
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                if use_keep and keep[r, t] == 0:  # skipped: dh_t goes to h_{t-1}, dc_carry is unchanged
                    dzs[r, t, j] = dzs[r, t, H + j] = dzs[r, t, 2 * H + j] = dzs[r, t, 3 * H + j] = 0
                    if use_dhs:
                        dh_carry[r, j] += dhs[r, t, j]
                    p += cuda.blockDim.x
                    r, j = next_pair(r, j, H)
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
                r, j = next_pair(r, j, H)
            cuda.syncthreads()  # every gate gradient of step t is written
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                if not (use_keep and keep[r, t] == 0):  # a skipped step's dh_carry is already dh_{t-1}
                    acc = dzs[r, t, 0] * staged_weight(U_T, staged, stage, 0, j)
                    for k in range(1, G):
                        acc += dzs[r, t, k] * staged_weight(U_T, staged, stage, k, j)
                    if use_hmask:
                        acc *= hmask[r, j]
                    dh_carry[r, j] = acc  # the gradient reaching h_{t-1} through the recurrence
                p += cuda.blockDim.x
                r, j = next_pair(r, j, H)
            cuda.syncthreads()

    return forward, backward


_RECURRENT = {}


def recurrent_kernels(dtype, use_keep=False, use_hmask=False, use_dhs=True):
    """``(forward, backward)`` for a NumPy float dtype and a choice of masks, made on first use."""
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask), bool(use_dhs)
    if key not in _RECURRENT:
        _RECURRENT[key] = _make_recurrent_kernels(numba.from_dtype(key[0]), *key[1:])
    return _RECURRENT[key]


# --- weight gradients: a deterministic split-K matrix product ----------------------------------
#
# ``[dW; dU; db] = sum over (row, step) pairs of a^T dz``, ``a = [x_t, h_{t-1} * hmask, 1]``:
# a (input + hidden + 1, 4H) matrix product whose inner dimension is the B*T pairs.
# The pairs are cut into chunks of consecutive pairs; block (row tile, column tile,
# chunk) multiplies its tile over its chunk, staging GEMM_K pairs at a time in shared
# memory, each thread holding a 4 x 4 patch of the tile in registers; the chunks'
# partial products are added in chunk order by :func:`reduce_parts`. No atomics:
# the same bits on every run.


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
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask), sizes.GEMM_TY, sizes.GEMM_TX, sizes.GEMM_K
    if key not in _GRADS:
        _GRADS[key] = _make_weight_grads(numba.from_dtype(key[0]), *key[1:])
    return _GRADS[key], sizes.GEMM_TY * sizes.GEMM_TX, 4 * sizes.GEMM_TY, 4 * sizes.GEMM_TX, sizes.GEMM_K


def weight_grads(x, h0, hs, dzs, keep, hmask, use_keep, use_hmask, grads, ws=None, tag=""):
    """``grads`` (n_in + H + 1, G) = the sum over every pair of ``[x_t, h_{t-1} * hmask, 1]^T
    dz_t`` (the rows of the output are the input, recurrent and bias rows; ``hs`` are the
    states ``h_t``, ``h0`` the initial ones). ``dzs`` (B, T, G) may have any number of gate
    columns (4H for an LSTM, the GRU's own layout too)."""
    B, T, n_in = x.shape
    G = dzs.shape[2]
    n_rows = grads.shape[0]
    kernel, threads, rows, cols, stage = weight_grads_kernel(x.dtype, use_keep, use_hmask)
    tiles_r, tiles_c = ceil_div(n_rows, rows), ceil_div(G, cols)
    n_pairs = B * T
    chunks = max(1, min(ceil_div(n_pairs, stage), sizes.GEMM_BLOCKS // (tiles_r * tiles_c)))
    per = ceil_div(ceil_div(n_pairs, chunks), stage) * stage
    chunks = ceil_div(n_pairs, per)
    parts = workspace_array(ws, tag + "grad-parts", (chunks, n_rows, G), x.dtype)
    launch(kernel, (tiles_r, tiles_c, chunks), threads)(x, h0, hs, dzs, keep, hmask, parts, per)
    launch(reduce_parts, ceil_div(n_rows * G, sizes.THREADS), sizes.THREADS)(parts, grads)


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
        zs = workspace_array(ws, tag + "zs", (B, T, 4 * H), dtype) if store else empty_device(dtype, 3)
        cs = workspace_array(ws, tag + "cs", (B, T, H), dtype) if store else empty_device(dtype, 3)
        hs = workspace_array(ws, tag + "hs", (B, T if all_h else 1, H), dtype)
        kernel = fast_forward_kernel(H, n_in, rows, store, all_h)
        launch(kernel, ceil_div(B, rows), 4 * H)(x, W, U, b, h0, c0, zs, cs, hs)
        return (zs, cs, hs) if store else (None, None, hs)
    if keep is None and hmask is None and step_path(dtype, H):
        zs = workspace_array(ws, tag + "zs", (B, T, 4 * H), dtype) if store else empty_device(dtype, 3)
        cs = workspace_array(ws, tag + "cs", (B, T, H), dtype)
        hs = workspace_array(ws, tag + "hs", (B, T, H), dtype)
        forward, _ = step_kernels(store=store)
        run_steps(forward, (ceil_div(B, sizes.STEP_ROWS), ceil_div(H, sizes.STEP_UNITS)),
                  sizes.STEP_ROWS // 2 * sizes.STEP_UNITS, range(T), (x, W, U, b, h0, c0, zs, cs, hs))
        return (zs if store else None), cs, hs
    keep, hmask, use_keep, use_hmask = mask_args(keep, hmask, dtype)
    zs = workspace_array(ws, tag + "zs", (B, T, 4 * H), dtype)
    cs = workspace_array(ws, tag + "cs", (B, T, H), dtype)
    hs = workspace_array(ws, tag + "hs", (B, T, H), dtype)
    rows = sizes.ROWS_PER_BLOCK
    forward, _ = recurrent_kernels(dtype, use_keep, use_hmask)
    shared = shared_bytes(U)
    launch(forward, ceil_div(B, rows), sizes.THREADS, shared)(x, W, U, b, h0, c0, keep, hmask, zs, cs, hs, rows,
                                                       shared > 0)
    return zs, cs, hs


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
        dhs = empty_device(dtype, 3)
    dzs = workspace_array(ws, tag + "dzs", (B, T, G), dtype)
    fused = False
    if keep is None and hmask is None and fast_path(dtype, H, n_in):
        if U is None:
            U = workspace_array(ws, tag + "U", (H, G), dtype)
            launch(transpose_kernel, ceil_div(H * G, sizes.THREADS), sizes.THREADS)(U_T, U)
        rows = sizes.FAST_BACKWARD_ROWS
        fused = sizes.FAST_FUSED_GRADS
        n_blocks = ceil_div(B, rows)
        parts = (workspace_array(ws, tag + "grad-parts", (n_blocks, n_in + H + 1, G), dtype) if fused
                 else empty_device(dtype, 3))
        if not (need_dx or not fused):
            dzs = empty_device(dtype, 3)
        kernel = fast_backward_kernel(H, rows, use_dhs, n_in, fused, need_dx or not fused)
        launch(kernel, n_blocks, 4 * H)(U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs, x, h0, hs, parts)
    elif keep is None and hmask is None and step_path(dtype, H):
        if U is None:
            U = workspace_array(ws, tag + "U", (H, G), dtype)
            launch(transpose_kernel, ceil_div(H * G, sizes.THREADS), sizes.THREADS)(U_T, U)
        _, backward = step_kernels(use_dhs=use_dhs)
        units = 2 * sizes.STEP_UNITS
        run_steps(backward, (ceil_div(B, sizes.STEP_ROWS), ceil_div(H, units)), sizes.STEP_ROWS // 2 * (units // 4),
                  range(T - 1, -2, -1), (U, c0, zs, cs, dhs, dh_carry, dc_carry, dzs))  # t = -1: dh0 alone
    else:
        if U_T is None:
            U_T = workspace_array(ws, tag + "U_T", (G, H), dtype)
            launch(transpose_kernel, ceil_div(H * G, sizes.THREADS), sizes.THREADS)(U, U_T)
        k, hm, use_keep, use_hmask = mask_args(keep, hmask, dtype)
        rows = sizes.ROWS_PER_BLOCK
        _, backward = recurrent_kernels(dtype, use_keep, use_hmask, use_dhs)
        shared = shared_bytes(U_T)
        launch(backward, ceil_div(B, rows), sizes.THREADS, shared)(U_T, c0, zs, cs, dhs, dh_carry, dc_carry, k, hm, dzs,
                                                            rows, shared > 0)
    dx = None
    if need_dx:
        dx = workspace_array(ws, tag + "dx", (B, T, n_in), dtype)
        launch(input_grad_kernel, ceil_div(B * T * n_in, sizes.THREADS), sizes.THREADS)(dzs, W, dx)
    k, hm, use_keep, use_hmask = mask_args(keep, hmask, dtype)
    grads = cuda.device_array((n_in + H + 1, G), dtype=dtype) if out is None else out
    if fused:  # the backward kernel's per-block sums, added in block order
        launch(reduce_parts, ceil_div((n_in + H + 1) * G, sizes.THREADS), sizes.THREADS)(parts, grads)
    else:
        weight_grads(x, h0, hs, dzs, k, hm, use_keep, use_hmask, grads, ws, tag)
    return dx, grads[:n_in], grads[n_in:n_in + H], grads[n_in + H]
