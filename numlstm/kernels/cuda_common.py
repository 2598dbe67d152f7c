"""CUDA helpers every recurrent layer and the GPU engine share: device functions
that stage a matrix in shared memory and walk a tile's (row, unit) pairs, the
input-gradient and block-order reduction kernels, and the host side's
workspace of reused device arrays, empty stand-in arrays and launch arithmetic.

The cells' own kernels are in :mod:`numlstm.kernels.cuda` (LSTM),
:mod:`numlstm.kernels.cuda_fast` (the LSTM's float32 kernels) and
:mod:`numlstm.kernels.gru_cuda` (GRU); the launch sizes in
:mod:`numlstm.kernels.cuda_sizes`.
"""

import numpy as np
from numba import cuda

from numlstm.kernels import cuda_sizes as sizes

__all__ = ["Workspace", "ceil_div", "empty_device", "first_pair", "input_grad_kernel", "mask_args", "next_pair",
           "reduce_parts", "shared_bytes", "stage_in_shared", "staged_weight", "transpose_kernel", "workspace_array"]


@cuda.jit(device=True)
def stage_in_shared(M, staged):
    """Copy the 2-D array ``M`` into this block's shared memory, row-major."""
    cols = M.shape[1]
    i = cuda.threadIdx.x
    while i < M.shape[0] * cols:
        staged[i] = M[i // cols, i % cols]
        i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def staged_weight(M, staged, stage, row, col):
    """``M[row, col]``, from the block's shared copy when it was staged."""
    if stage:
        return staged[row * M.shape[1] + col]
    return M[row, col]


@cuda.jit(device=True)
def first_pair(H):
    """``(row, unit)`` of this thread's first (row, hidden unit) pair of its tile."""
    return cuda.threadIdx.x // H, cuda.threadIdx.x % H


@cuda.jit(device=True)
def next_pair(r, j, H):
    """The pair ``blockDim.x`` pairs after ``(r, j)``, by counting: no division in the
    step loops (a division by a run-time value is a 64-bit division routine)."""
    j += cuda.blockDim.x
    while j >= H:
        j -= H
        r += 1
    return r, j


def shared_bytes(M):
    """Bytes of shared memory to stage ``M``, or 0 when it does not fit."""
    size = M.shape[0] * M.shape[1] * np.dtype(M.dtype).itemsize
    return size if size <= sizes.SHARED_LIMIT else 0


@cuda.jit
def input_grad_kernel(dzs, W, dx):
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


@cuda.jit
def reduce_parts(parts, out):
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


def ceil_div(n, per_block):
    return (n + per_block - 1) // per_block


_EMPTY = {}


def empty_device(dtype, ndim=2):
    """A zero-size (0, 0) (or ``ndim``-dimensional) device array, made once per dtype: it
    owns no memory (its pointer is null), and stands in for an array that a kernel never
    reads or writes."""
    key = np.dtype(dtype), ndim
    if key not in _EMPTY:
        _EMPTY[key] = cuda.device_array((0,) * ndim, dtype=key[0])
    return _EMPTY[key]


def mask_args(keep, hmask, dtype):
    """``(keep, hmask, use_keep, use_hmask)`` for the kernels, a None mask replaced by an
    empty array."""
    return (empty_device(np.int8) if keep is None else keep, empty_device(dtype) if hmask is None else hmask,
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


def workspace_array(ws, name, shape, dtype):
    """A device array from the workspace ``ws``, or a new one without a workspace."""
    return cuda.device_array(shape, dtype=dtype) if ws is None else ws.get(name, shape, dtype)


@cuda.jit
def transpose_kernel(src, dst):
    rows, cols = src.shape
    e = cuda.grid(1)
    if e < rows * cols:
        i = e // cols
        dst[e - i * cols, i] = src[i, e - i * cols]
