"""Arrays whose data start on a 64-byte boundary (a cache line and an AVX-512 vector).

The CPU kernels' products load rows of their weights and store rows of their
outputs as whole vectors; a vector load that straddles two cache lines costs
two. NumPy's allocator starts a large array 16 bytes past a page boundary, so
the compiled training loops run on aligned parameter and gradient buffers
(:mod:`numlstm.core.network`), and the functional API passes the forward
kernels aligned copies of ``W`` and ``U`` and aligned outputs
(:mod:`numlstm.kernels.layers`).
"""

import numpy as np

# Where the flat buffers start: on a 64-byte boundary, a cache line and an AVX-512 vector. The
# kernels load rows of W and U (and store rows of their gradients) as whole vectors; NumPy's
# allocator starts a large array 16 bytes past a page boundary, so every 256-bit load of such a
# buffer straddled two halves of a cache line, and the forward kernel ran 17-20% slower (an
# Intel Xeon with AVX-512, 2 threads, hidden 64 and 256). A row of an LSTM layer's W or U is
# 16 * hidden bytes, so with the buffer aligned every row is when hidden is even.
ALIGNMENT = 64


def aligned_empty(n, dtype):
    """An uninitialised 1-D array of ``n`` items of ``dtype`` starting on an :data:`ALIGNMENT` boundary."""
    dtype = np.dtype(dtype)
    itemsize = dtype.itemsize
    if ALIGNMENT % itemsize:  # (no whole number of items to skip: count in bytes)
        raw = np.empty(n * itemsize + ALIGNMENT, dtype=np.uint8)
        start = -raw.ctypes.data % ALIGNMENT
        return raw[start:start + n * itemsize].view(dtype)
    # NumPy starts an array on a multiple of its item size, so the boundary is whole items away.
    raw = np.empty(n + ALIGNMENT // itemsize, dtype=dtype)
    start = (-raw.ctypes.data % ALIGNMENT) // itemsize
    return raw[start:start + n]


def aligned_zeros(n, dtype):
    """:func:`aligned_empty`, zeroed."""
    out = aligned_empty(n, dtype)
    out[...] = 0
    return out


def aligned(a):
    """``a`` itself where its data starts on an :data:`ALIGNMENT` boundary, else an aligned
    C-contiguous copy of the same shape."""
    if a.ctypes.data % ALIGNMENT == 0:
        return a
    out = aligned_empty(a.size, a.dtype).reshape(a.shape)
    out[...] = a
    return out
