"""Dropout masks from a counter-based hash: the same masks on the CPU and the GPU.

A mask entry is a pure function of ``(seed, step, stream, row, col)``: the
fit's seed, the update step (the batch counter), a stream naming the layer,
direction and kind of mask, the row of the batch and the unit. So a fit with
the same seed draws the same masks on every run, on either device, with any
number of threads, and the GPU needs no random-number state at all.

The hash is a chain of 32-bit integer mixers (multiply, xor-shift), written
with int64 arithmetic whose products stay below 2**63, so it overflows
nowhere: not in compiled code and not under Numba's CUDA simulator, which runs
it as Python.
"""

import numpy as np
from numba.extending import register_jitable

from numlstm.kernels._jit import CPU_OPTIONS, njit

_LOW32 = 0xFFFFFFFF

# Streams: per recurrent row of the network (layer * directions + direction), two kinds.
INPUT_MASK = 0  # dropout on the layer's inputs, one mask per sequence (Keras' LSTM(dropout=))
STATE_MASK = 1  # recurrent dropout on the state entering the recurrent product
# Two more kinds, numbered apart from the per-row streams (whose numbers they must not reuse):
STEP_MASK = 2  # dropout on a layer's inputs drawn anew at every step (a Keras Dropout layer below it)
HEAD_MASK = 3  # dropout on the head's input (a Keras Dropout layer before the Dense layer)


@register_jitable
def _mix(x):
    """A bijective mixer of 32-bit values held in int64 (multipliers below 2**31)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _LOW32
    x ^= x >> 15
    x = (x * 0x446CA68B) & _LOW32
    x ^= x >> 16
    return x


@register_jitable
def uniform(seed, step, stream, row, col):
    """A uniform number in [0, 1) for one mask entry."""
    h = _mix(seed & _LOW32)
    h = _mix(h ^ ((seed >> 32) & _LOW32))
    h = _mix(h ^ (step & _LOW32))
    h = _mix(h ^ (stream & _LOW32))
    h = _mix(h ^ (row & _LOW32))
    h = _mix(h ^ (col & _LOW32))
    return h / 4294967296.0


@register_jitable
def keep_scale(seed, step, stream, row, col, rate):
    """The mask entry: ``1 / (1 - rate)`` for a kept unit, 0 for a dropped one
    (inverted dropout, as Keras: the expected value is unchanged)."""
    if uniform(seed, step, stream, row, col) < rate:
        return 0.0
    return 1.0 / (1.0 - rate)


def stream(row, kind):
    """The stream of mask ``kind`` of recurrent row ``row``: ``2 * row + kind`` for
    INPUT_MASK and STATE_MASK; ``kind * 2**24 + row`` for STEP_MASK and HEAD_MASK."""
    if kind < STEP_MASK:
        return 2 * row + kind
    return kind * 16777216 + row


stream_of = register_jitable(stream)


@njit(**CPU_OPTIONS)
def fill(out, seed, step, stream, rate, row0):
    """``out`` (rows, units) filled with the mask of ``stream`` at ``step``, its
    rows being rows ``row0, row0 + 1, ...`` of the stream."""
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] = keep_scale(seed, step, stream, row0 + r, j, rate)


def mask(rows, units, seed, step, stream, rate, dtype=np.float64, row0=0):
    """A (rows, units) mask as a new array (for tests and the Python side)."""
    out = np.empty((rows, units), dtype=dtype)
    fill(out, np.int64(seed), np.int64(step), np.int64(stream), float(rate), np.int64(row0))
    return out
