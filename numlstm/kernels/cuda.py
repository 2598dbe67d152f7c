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

from numlstm.kernels import gates

cell_forward = gates.gpu_twin(gates.cell_forward)
cell_backward = gates.gpu_twin(gates.cell_backward)

THREADS = 256  # threads per block
ROWS_PER_BLOCK = 4  # batch rows a block carries through time
PAIRS_PER_BLOCK = 256  # (row, step) pairs per block of partial weight gradients


_LOW_OCCUPANCY = r"(?s).*will likely result in GPU under-utilization"
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


def _make_recurrent_kernels(dtype, use_keep, use_hmask):
    """The forward and backward kernels for one dtype (a shared array's type is fixed
    when the kernel is compiled). ``use_keep``/``use_hmask`` are frozen into the
    kernels as constants: without them the mask branches compile to nothing."""

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
        for t in range(T):
            p = cuda.threadIdx.x
            while p < n_pairs:
                r = r0 + p // H
                j = p % H
                c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                if use_keep and keep[r, t] == 0:  # a skipped step: the state passes through
                    zs[r, t, j] = zs[r, t, H + j] = zs[r, t, 2 * H + j] = zs[r, t, 3 * H + j] = 0
                    cs[r, t, j] = c_prev
                    hs[r, t, j] = h0[r, j] if t == 0 else hs[r, t - 1, j]
                    p += cuda.blockDim.x
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
        for t in range(T - 1, -1, -1):
            p = cuda.threadIdx.x
            while p < n_pairs:
                r = r0 + p // H
                j = p % H
                if use_keep and keep[r, t] == 0:  # skipped: dh_t goes to h_{t-1}, dc_carry is unchanged
                    dzs[r, t, j] = dzs[r, t, H + j] = dzs[r, t, 2 * H + j] = dzs[r, t, 3 * H + j] = 0
                    dh_carry[r, j] += dhs[r, t, j]
                    p += cuda.blockDim.x
                    continue
                c_prev = c0[r, j] if t == 0 else cs[r, t - 1, j]
                dzi, dzf, dzg, dzo, dc_prev = cell_backward(
                    zs[r, t, j], zs[r, t, H + j], zs[r, t, 2 * H + j], zs[r, t, 3 * H + j], cs[r, t, j], c_prev,
                    dhs[r, t, j] + dh_carry[r, j], dc_carry[r, j])
                dzs[r, t, j] = dzi
                dzs[r, t, H + j] = dzf
                dzs[r, t, 2 * H + j] = dzg
                dzs[r, t, 3 * H + j] = dzo
                dc_carry[r, j] = dc_prev
                p += cuda.blockDim.x
            cuda.syncthreads()  # every gate gradient of step t is written
            p = cuda.threadIdx.x
            while p < n_pairs:
                r = r0 + p // H
                j = p % H
                if not (use_keep and keep[r, t] == 0):  # a skipped step's dh_carry is already dh_{t-1}
                    acc = dzs[r, t, 0] * _weight(U_T, staged, stage, 0, j)
                    for k in range(1, G):
                        acc += dzs[r, t, k] * _weight(U_T, staged, stage, k, j)
                    if use_hmask:
                        acc *= hmask[r, j]
                    dh_carry[r, j] = acc  # the gradient reaching h_{t-1} through the recurrence
                p += cuda.blockDim.x
            cuda.syncthreads()

    return forward, backward


_RECURRENT = {}


def recurrent_kernels(dtype, use_keep=False, use_hmask=False):
    """``(forward, backward)`` for a NumPy float dtype and a choice of masks, made on first use."""
    key = np.dtype(dtype), bool(use_keep), bool(use_hmask)
    if key not in _RECURRENT:
        _RECURRENT[key] = _make_recurrent_kernels(numba.from_dtype(key[0]), key[1], key[2])
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


def _make_partial_grads(use_keep, use_hmask):
    @cuda.jit
    def partial_grads(x, h0, hs, dzs, keep, hmask, parts, pairs_per_block):
        """Block ``blk`` sums ``[x_t, h_{t-1} * hmask, 1]^T dz_t`` over its pairs into
        ``parts[blk]`` (rows: inputs, then hidden units, then the bias), leaving out the
        pairs with ``keep == 0`` (the masks read only when ``use_keep``/``use_hmask``)."""
        B, T, n_in = x.shape
        G = dzs.shape[2]
        H = G // 4
        first = cuda.blockIdx.x * pairs_per_block
        last = first + pairs_per_block if first + pairs_per_block < B * T else B * T
        n_out = (n_in + H + 1) * G
        e = cuda.threadIdx.x
        while e < n_out:
            row = e // G
            k = e % G
            acc = dzs[0, 0, k] * 0
            for pair in range(first, last):
                r = pair // T
                t = pair % T
                if use_keep and keep[r, t] == 0:
                    continue
                if row < n_in:
                    a = x[r, t, row]
                elif row < n_in + H:
                    a = h0[r, row - n_in] if t == 0 else hs[r, t - 1, row - n_in]
                    if use_hmask:
                        a *= hmask[r, row - n_in]
                else:
                    a = dzs[r, t, k] * 0 + 1
                acc += a * dzs[r, t, k]
            parts[cuda.blockIdx.x, row, k] = acc
            e += cuda.blockDim.x

    return partial_grads


_PARTIAL = {}


def _partial_grads_kernel(use_keep=False, use_hmask=False):
    """The kernel of partial weight gradients for a choice of masks, made on first use."""
    key = bool(use_keep), bool(use_hmask)
    if key not in _PARTIAL:
        _PARTIAL[key] = _make_partial_grads(*key)
    return _PARTIAL[key]


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


def launch(kernel, griddim, blockdim, sharedmem=0):
    """``kernel[griddim, blockdim, 0, sharedmem]``, without Numba's low-occupancy warning.

    Numba warns at every launch of fewer than 128 blocks. A small batch is a
    legitimate workload here and the user could do nothing about the warning,
    so it is silenced for our own launches (and only for them). Matched by
    message: the ``numba-cuda`` package raises a warning class of its own.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LOW_OCCUPANCY)
        return kernel[griddim, blockdim, 0, sharedmem]


def _blocks(n, per_block):
    return (n + per_block - 1) // per_block


_EMPTY = {}


def _empty(dtype):
    """A zero-size (0, 0) device array, made once per dtype: it owns no memory (its
    pointer is null), and stands in for a mask that a kernel never reads."""
    dtype = np.dtype(dtype)
    if dtype not in _EMPTY:
        _EMPTY[dtype] = cuda.device_array((0, 0), dtype=dtype)
    return _EMPTY[dtype]


def _mask_args(keep, hmask, dtype):
    """``(keep, hmask, use_keep, use_hmask)`` for the kernels, a None mask replaced by an
    empty array."""
    return (_empty(np.int8) if keep is None else keep, _empty(dtype) if hmask is None else hmask,
            keep is not None, hmask is not None)


def layer_forward(x, W, U, b, h0, c0, keep=None, hmask=None):
    """One layer forward on the GPU; device arrays in, ``(zs, cs, hs)`` device arrays out.

    ``keep`` (device int8 (B, T), 0 or 1) skips the steps where it is 0, the
    state passing through unchanged; ``hmask`` (device (B, H), the layer's
    dtype) multiplies the state entering the recurrent product at every step
    (recurrent dropout). Either may be None: no mask.
    """
    B, T, _ = x.shape
    H = U.shape[0]
    keep, hmask, use_keep, use_hmask = _mask_args(keep, hmask, x.dtype)
    zs = cuda.device_array((B, T, 4 * H), dtype=x.dtype)
    cs = cuda.device_array((B, T, H), dtype=x.dtype)
    hs = cuda.device_array((B, T, H), dtype=x.dtype)
    rows = ROWS_PER_BLOCK
    forward, _ = recurrent_kernels(x.dtype, use_keep, use_hmask)
    shared = _shared_bytes(U)
    launch(forward, _blocks(B, rows), THREADS, shared)(x, W, U, b, h0, c0, keep, hmask, zs, cs, hs, rows,
                                                       shared > 0)
    return zs, cs, hs


def layer_backward(x, W, U_T, h0, c0, zs, cs, hs, dhs, dh_carry, dc_carry, need_dx=True, out=None, keep=None,
                   hmask=None):
    """One layer backward on the GPU, from the forward pass's ``zs, cs, hs``.

    ``U_T`` is ``U.T`` as a C-contiguous (device) array.
    ``dh_carry``/``dc_carry`` (device, (B, H)) are overwritten: ``dh_T``/``dc_T``
    in, ``dh0``/``dc0`` out. Returns device arrays ``(dx, dW, dU, db)`` (``dx``
    None unless ``need_dx``). With ``out`` (a device (input + hidden + 1, 4H) array, e.g.
    the layer's slice of a flat gradient buffer, whose rows are ``dW``, ``dU``, ``db``
    in that order), the weight gradients are written there. ``keep`` and ``hmask``
    must be those of the forward pass (see :func:`layer_forward`; None: no mask):
    a skipped step passes the gradients reaching it straight through and adds
    nothing to ``dx`` or the weight gradients; the gradient leaving through ``U``
    is multiplied by ``hmask``, and ``dU`` is taken against the masked states.
    """
    B, T, n_in = x.shape
    H = U_T.shape[1]
    G = 4 * H
    keep, hmask, use_keep, use_hmask = _mask_args(keep, hmask, x.dtype)
    dzs = cuda.device_array((B, T, G), dtype=x.dtype)
    rows = ROWS_PER_BLOCK
    _, backward = recurrent_kernels(x.dtype, use_keep, use_hmask)
    shared = _shared_bytes(U_T)
    launch(backward, _blocks(B, rows), THREADS, shared)(U_T, c0, zs, cs, dhs, dh_carry, dc_carry, keep, hmask, dzs,
                                                        rows, shared > 0)
    dx = None
    if need_dx:
        dx = cuda.device_array((B, T, n_in), dtype=x.dtype)
        launch(_input_grad_kernel, _blocks(B * T * n_in, THREADS), THREADS)(dzs, W, dx)
    per = PAIRS_PER_BLOCK
    n_parts = _blocks(B * T, per)
    parts = cuda.device_array((n_parts, n_in + H + 1, G), dtype=x.dtype)
    launch(_partial_grads_kernel(use_keep, use_hmask), n_parts, THREADS)(x, h0, hs, dzs, keep, hmask, parts, per)
    grads = cuda.device_array((n_in + H + 1, G), dtype=x.dtype) if out is None else out
    launch(_reduce_parts, _blocks((n_in + H + 1) * G, THREADS), THREADS)(parts, grads)
    return dx, grads[:n_in], grads[n_in:n_in + H], grads[n_in + H]
