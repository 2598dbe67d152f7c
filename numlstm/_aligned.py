"""Arrays whose data start on a 64-byte boundary (a cache line and an AVX-512 vector).

The CPU kernels' products load rows of their weights and store rows of their
outputs as whole vectors; a vector load that straddles two cache lines costs
two. NumPy's allocator starts a large array 16 bytes past a page boundary, so
the compiled training loops run on aligned parameter and gradient buffers
(:mod:`numlstm.core.network`), and the functional API passes the forward
kernels aligned copies of ``W`` and ``U`` and aligned outputs
(:mod:`numlstm.kernels.layers`).
"""

import threading
from contextlib import contextmanager

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


class ScratchPool:
    """Aligned scratch memory kept between calls: one idle buffer at most, the largest
    handed back that is no larger than ``limit`` bytes.

    A big array freed and allocated again at every call comes back from the kernel as
    fresh pages, each faulted in (and zeroed) on first touch, and under transparent huge
    pages sometimes after the kernel compacted memory to make one: a GRU layer's
    forward and backward at (64, 100, 16, 256) spent 10 ms of 56 faulting its 46 MB of
    stored projections and states in, or, with huge pages, took 45 ms on most calls and
    100-300 ms on one in five (an Intel Xeon). :meth:`borrow` hands out the kept buffer
    where it is large enough; a second caller while it is out (another thread) gets
    memory of its own, so no buffer is ever shared.
    """

    def __init__(self, limit):
        self.limit = limit
        self._lock = threading.Lock()
        self._idle = None

    @contextmanager
    def borrow(self, nbytes):
        """A context manager giving an aligned uint8 array of ``nbytes`` (contents undefined)."""
        if nbytes > self.limit:  # (memory of its own, the kept buffer left where it is)
            yield aligned_empty(nbytes, np.uint8)
            return
        with self._lock:
            buffer, self._idle = self._idle, None
        if buffer is None or buffer.size < nbytes:
            buffer = None  # (the smaller one freed before the new one is made)
            buffer = aligned_empty(nbytes, np.uint8)
        try:
            yield buffer[:nbytes]
        finally:
            with self._lock:
                if self._idle is None or self._idle.size < buffer.size:
                    self._idle = buffer

    def clear(self):
        """Let the kept buffer go (its memory returns to the allocator); a buffer lent
        out at the time is kept again when it comes back."""
        with self._lock:
            self._idle = None

    @property
    def kept_bytes(self):
        """Bytes held between calls (0 when none)."""
        idle = self._idle
        return 0 if idle is None else idle.size


def _padded_bytes(shape, dtype):
    """The bytes an array of ``shape`` and ``dtype`` takes in a carved buffer: its own,
    rounded up to a whole number of :data:`ALIGNMENT` so that the next one starts on one."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return -(-n // ALIGNMENT) * ALIGNMENT


def carve(buffer, shapes, dtype):
    """Arrays of ``shapes`` and ``dtype`` laid out one after another in the uint8 ``buffer``,
    each starting on an :data:`ALIGNMENT` boundary (the buffer's own start is one):
    ``carve_bytes(shapes, dtype)`` bytes of it are used."""
    itemsize = np.dtype(dtype).itemsize
    out, offset = [], 0
    for shape in shapes:
        n = int(np.prod(shape)) * itemsize
        out.append(buffer[offset:offset + n].view(dtype).reshape(shape))
        offset += _padded_bytes(shape, dtype)
    return out


def carve_bytes(shapes, dtype):
    """The bytes :func:`carve` uses for ``shapes`` of ``dtype``."""
    return sum(_padded_bytes(shape, dtype) for shape in shapes)
