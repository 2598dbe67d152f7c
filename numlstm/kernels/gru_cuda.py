"""CUDA kernels for one GRU layer: forward and backpropagation through time.

Same layout and gate math as :mod:`numlstm.kernels.gru_cpu` (the GPU twins of
the GRU cell functions of :mod:`numlstm.kernels.gates`), and the same scheme
as the LSTM kernels of :mod:`numlstm.kernels.cuda`, sharing with them the
helpers of :mod:`numlstm.kernels.cuda_common` (shared memory staging, the
input-gradient kernel, the ordered reduction):

- each block carries a tile of ``ROWS_PER_BLOCK`` rows through the whole
  sequence in one launch; its threads share out the (row, hidden unit) pairs,
  compute a step, and meet at a barrier before the next step reads the hidden
  states just written. ``U`` (transposed in the backward pass) is staged in
  shared memory when it fits in ``numlstm.kernels.cuda_sizes.SHARED_LIMIT`` bytes;
- the forward pass stores the input projections ``xs = x W + b[0]`` and the
  recurrent ones ``gs = h U + b[1]`` apart (the candidate needs
  ``r * (h U_n + b[1, n])`` on its own); the backward pass writes their
  gradients ``das``/``dgs``, which differ only in the candidate block;
- weight gradients are reduced without atomics: each block of
  ``PAIRS_PER_BLOCK`` (row, step) pairs writes partial sums to a buffer of
  its own (:func:`_partial_grads_kernel`), added afterwards in block order, so a
  result is the same bit for bit on every run;
- the two optional per-row masks of :mod:`numlstm.kernels.cuda`, compile-time
  choices there as here (the unmasked kernels hold no mask code): ``keep`` (batch, time) skips the
  steps where it is 0 (``h_t = h_{t-1}``, projections stored as zeros; their
  gradients are zero and the gradient reaching ``h_t`` passes to ``h_{t-1}``
  unchanged), and ``hmask`` (batch, hidden) multiplies the state entering the
  recurrent product ``h U`` (recurrent dropout). Only that product sees the
  masked state: the blend ``z * h_{t-1}`` and the gradient that bypasses
  ``U`` use the state itself, while the gradient through ``U`` is multiplied
  by ``hmask`` and ``dU`` is taken against ``h_{t-1} * hmask``.

Kernels compile lazily on first use, once per dtype (and per choice of
masks), and avoid the ``min``
and ``max`` builtins (see :mod:`numlstm.kernels.cuda`). The launch sizes are
:mod:`numlstm.kernels.cuda_sizes`' attributes, read at launch time (tests set
them small there so that the multi-block and tail paths run on the simulator). Nothing here validates:
:mod:`numlstm.functional` does.
"""

import numba
import numpy as np
from numba import cuda

from numlstm._device import launch
from numlstm.kernels import cuda_sizes as sizes
from numlstm.kernels import gates
from numlstm.kernels.cuda_common import (ceil_div, first_pair, input_grad_kernel, mask_args, next_pair, reduce_parts,
                                         shared_bytes, stage_in_shared, staged_weight)

gru_cell_forward = gates.gpu_twin(gates.gru_cell_forward)
gru_cell_backward = gates.gpu_twin(gates.gru_cell_backward)


def _make_recurrent_kernels(dtype, use_keep, use_hmask):
    """The forward and backward kernels for one dtype (a shared array's type is fixed
    when the kernel is compiled). ``use_keep``/``use_hmask`` are frozen into the
    kernels as constants: without them the mask branches compile to nothing."""

    @cuda.jit
    def forward(x, W, U, b, h0, keep, hmask, xs, gs, hs, rows_per_block, stage):
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
                h_prev = h0[r, j] if t == 0 else hs[r, t - 1, j]
                if use_keep and keep[r, t] == 0:  # a skipped step: the state passes through
                    xs[r, t, j] = xs[r, t, H + j] = xs[r, t, 2 * H + j] = 0
                    gs[r, t, j] = gs[r, t, H + j] = gs[r, t, 2 * H + j] = 0
                    hs[r, t, j] = h_prev
                    p += cuda.blockDim.x
                    r, j = next_pair(r, j, H)
                    continue
                az, ar, an = b[0, j], b[0, H + j], b[0, 2 * H + j]
                gz, gr, gn = b[1, j], b[1, H + j], b[1, 2 * H + j]
                for k in range(n_in):
                    v = x[r, t, k]
                    az += v * W[k, j]
                    ar += v * W[k, H + j]
                    an += v * W[k, 2 * H + j]
                for m in range(H):
                    v = h0[r, m] if t == 0 else hs[r, t - 1, m]
                    if use_hmask:
                        v *= hmask[r, m]
                    gz += v * staged_weight(U, staged, stage, m, j)
                    gr += v * staged_weight(U, staged, stage, m, H + j)
                    gn += v * staged_weight(U, staged, stage, m, 2 * H + j)
                h = gru_cell_forward(az, ar, an, gz, gr, gn, h_prev)
                xs[r, t, j] = az
                xs[r, t, H + j] = ar
                xs[r, t, 2 * H + j] = an
                gs[r, t, j] = gz
                gs[r, t, H + j] = gr
                gs[r, t, 2 * H + j] = gn
                hs[r, t, j] = h
                p += cuda.blockDim.x
                r, j = next_pair(r, j, H)
            cuda.syncthreads()  # step t's hidden states are read by every thread at t + 1

    @cuda.jit
    def backward(U_T, h0, xs, gs, hs, dhs, dh_carry, keep, hmask, das, dgs, rows_per_block, stage):
        """BPTT for a tile of rows. ``dh_carry`` (B, H) holds ``dh_T`` on entry and
        ``dh0`` on exit; ``das``/``dgs`` receive the gradients of the projections.
        ``keep``/``hmask`` as in the forward pass."""
        staged = cuda.shared.array(0, dtype=dtype)
        if stage:
            stage_in_shared(U_T, staged)
        B, T, G = xs.shape
        H = G // 3
        r0 = cuda.blockIdx.x * rows_per_block
        r1 = r0 + rows_per_block if r0 + rows_per_block < B else B
        n_pairs = (r1 - r0) * H
        r_first, j_first = first_pair(H)
        for t in range(T - 1, -1, -1):
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                if use_keep and keep[r, t] == 0:  # skipped: dh_t goes to h_{t-1} unchanged
                    das[r, t, j] = das[r, t, H + j] = das[r, t, 2 * H + j] = 0
                    dgs[r, t, j] = dgs[r, t, H + j] = dgs[r, t, 2 * H + j] = 0
                    dh_carry[r, j] += dhs[r, t, j]
                    p += cuda.blockDim.x
                    r, j = next_pair(r, j, H)
                    continue
                h_prev = h0[r, j] if t == 0 else hs[r, t - 1, j]
                dz, dr, dan, dgn, dh_prev = gru_cell_backward(
                    xs[r, t, j], xs[r, t, H + j], xs[r, t, 2 * H + j], gs[r, t, j], gs[r, t, H + j],
                    gs[r, t, 2 * H + j], h_prev, dhs[r, t, j] + dh_carry[r, j])
                das[r, t, j] = dz
                das[r, t, H + j] = dr
                das[r, t, 2 * H + j] = dan
                dgs[r, t, j] = dz
                dgs[r, t, H + j] = dr
                dgs[r, t, 2 * H + j] = dgn
                dh_carry[r, j] = dh_prev  # the part of the gradient into h_{t-1} that bypasses U
                p += cuda.blockDim.x
                r, j = next_pair(r, j, H)
            cuda.syncthreads()  # every projection gradient of step t is written
            p = cuda.threadIdx.x
            r, j = r0 + r_first, j_first
            while p < n_pairs:
                if use_keep and keep[r, t] == 0:
                    pass  # a skipped step's dh_carry is dh_{t-1} already
                elif use_hmask:  # the bypass, plus the gradient through U: only that part sees hmask
                    acc = dgs[r, t, 0] * staged_weight(U_T, staged, stage, 0, j)
                    for k in range(1, G):
                        acc += dgs[r, t, k] * staged_weight(U_T, staged, stage, k, j)
                    dh_carry[r, j] += acc * hmask[r, j]
                else:
                    acc = dh_carry[r, j]
                    for k in range(G):
                        acc += dgs[r, t, k] * staged_weight(U_T, staged, stage, k, j)
                    dh_carry[r, j] = acc
                p += cuda.blockDim.x
                r, j = next_pair(r, j, H)
            cuda.syncthreads()

    return forward, backward


_RECURRENT = {}


def recurrent_kernels(dtype, use_keep=False, use_hmask=False):
    """``(forward, backward)`` for a NumPy float dtype and a choice of masks, made on first use."""
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask)
    if key not in _RECURRENT:
        _RECURRENT[key] = _make_recurrent_kernels(numba.from_dtype(key[0]), key[1], key[2])
    return _RECURRENT[key]


def _make_partial_grads(dtype, use_keep, use_hmask):
    @cuda.jit
    def partial_grads(x, h0, hs, das, dgs, keep, hmask, parts, pairs_per_block):
        """Block ``blk`` sums the weight gradients of its pairs into ``parts[blk]``, whose
        rows are those of ``dW`` (``x_t^T da_t``), then ``dU`` (``(h_{t-1} * hmask)^T dg_t``),
        then the input bias (``da_t``) and the recurrent bias (``dg_t``), leaving out the
        pairs with ``keep == 0`` (the masks read only when ``use_keep``/``use_hmask``)."""
        B, T, n_in = x.shape
        G = das.shape[2]
        H = G // 3
        first = cuda.blockIdx.x * pairs_per_block
        last = first + pairs_per_block if first + pairs_per_block < B * T else B * T
        n_out = (n_in + H + 2) * G
        e = cuda.threadIdx.x
        while e < n_out:
            row = e // G
            k = e % G
            acc = dtype(0.0)  # in the layer's dtype (a float32 times an int literal is a float64)
            r = first // T
            t = first - r * T - 1
            for _ in range(first, last):
                t += 1  # (r, t) of the pair, by counting: no division in the loop
                if t == T:
                    t = 0
                    r += 1
                if use_keep and keep[r, t] == 0:
                    continue
                if row < n_in:
                    acc += x[r, t, row] * das[r, t, k]
                elif row < n_in + H:
                    a = h0[r, row - n_in] if t == 0 else hs[r, t - 1, row - n_in]
                    if use_hmask:
                        a *= hmask[r, row - n_in]
                    acc += a * dgs[r, t, k]
                elif row == n_in + H:
                    acc += das[r, t, k]
                else:
                    acc += dgs[r, t, k]
            parts[cuda.blockIdx.x, row, k] = acc
            e += cuda.blockDim.x

    return partial_grads


_PARTIAL = {}


def _partial_grads_kernel(dtype, use_keep=False, use_hmask=False):
    """The kernel of partial weight gradients for a dtype and a choice of masks, made on first use."""
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask)
    if key not in _PARTIAL:
        _PARTIAL[key] = _make_partial_grads(numba.from_dtype(key[0]), *key[1:])
    return _PARTIAL[key]


def layer_forward(x, W, U, b, h0, keep=None, hmask=None):
    """One GRU layer forward on the GPU; device arrays in, ``(xs, gs, hs)`` device arrays out.

    ``keep`` (device int8 (B, T), 0 or 1) skips the steps where it is 0, the
    state passing through unchanged; ``hmask`` (device (B, H), the layer's
    dtype) multiplies the state entering ``h U`` at every step (recurrent
    dropout; the blend ``z * h`` uses the state itself). Either may be None:
    no mask.
    """
    B, T, _ = x.shape
    H = U.shape[0]
    keep, hmask, use_keep, use_hmask = mask_args(keep, hmask, x.dtype)
    xs = cuda.device_array((B, T, 3 * H), dtype=x.dtype)
    gs = cuda.device_array((B, T, 3 * H), dtype=x.dtype)
    hs = cuda.device_array((B, T, H), dtype=x.dtype)
    rows = sizes.ROWS_PER_BLOCK
    forward, _ = recurrent_kernels(x.dtype, use_keep, use_hmask)
    shared = shared_bytes(U)
    launch(forward, ceil_div(B, rows), sizes.THREADS, shared)(x, W, U, b, h0, keep, hmask, xs, gs, hs, rows, shared > 0)
    return xs, gs, hs


def layer_backward(x, W, U_T, h0, xs, gs, hs, dhs, dh_carry, need_dx=True, out=None, keep=None, hmask=None):
    """One GRU layer backward on the GPU, from the forward pass's ``xs, gs, hs``.

    ``U_T`` is ``U.T`` as a C-contiguous (device) array. ``dh_carry`` (device,
    (B, H)) is overwritten: ``dh_T`` in, ``dh0`` out. Returns device arrays
    ``(dx, dW, dU, db)`` (``dx`` None unless ``need_dx``). With ``out`` (a
    device (input + hidden + 2, 3H) array whose rows are ``dW``, ``dU`` and
    the two rows of ``db``, in that order), the weight gradients are written
    there. ``keep`` and ``hmask`` must be those of the forward pass (see
    :func:`layer_forward`; None: no mask): a skipped step passes the gradient
    reaching it straight through and adds nothing to ``dx`` or the weight
    gradients; the gradient leaving through ``U`` is multiplied by ``hmask``,
    and ``dU`` is taken against the masked states.
    """
    B, T, n_in = x.shape
    H = U_T.shape[1]
    G = 3 * H
    keep, hmask, use_keep, use_hmask = mask_args(keep, hmask, x.dtype)
    das = cuda.device_array((B, T, G), dtype=x.dtype)
    dgs = cuda.device_array((B, T, G), dtype=x.dtype)
    rows = sizes.ROWS_PER_BLOCK
    _, backward = recurrent_kernels(x.dtype, use_keep, use_hmask)
    shared = shared_bytes(U_T)
    launch(backward, ceil_div(B, rows), sizes.THREADS, shared)(U_T, h0, xs, gs, hs, dhs, dh_carry, keep, hmask, das,
                                                        dgs, rows, shared > 0)
    dx = None
    if need_dx:
        dx = cuda.device_array((B, T, n_in), dtype=x.dtype)
        launch(input_grad_kernel, ceil_div(B * T * n_in, sizes.THREADS), sizes.THREADS)(das, W, dx)
    per = sizes.PAIRS_PER_BLOCK
    n_parts = ceil_div(B * T, per)
    n_rows = n_in + H + 2
    parts = cuda.device_array((n_parts, n_rows, G), dtype=x.dtype)
    launch(_partial_grads_kernel(x.dtype, use_keep, use_hmask), n_parts, sizes.THREADS)(
        x, h0, hs, das, dgs, keep, hmask, parts, per)
    grads = cuda.device_array((n_rows, G), dtype=x.dtype) if out is None else out
    launch(reduce_parts, ceil_div(n_rows * G, sizes.THREADS), sizes.THREADS)(parts, grads)
    return dx, grads[:n_in], grads[n_in:n_in + H], grads[n_in + H:]
