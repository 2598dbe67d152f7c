"""One recurrent layer, forward and backward, with the same calling convention on every
device and for every cell.

:func:`forward` and :func:`backward` take the device's own arrays (NumPy arrays on
``"cpu"``, device arrays on ``"cuda"``), ``U`` itself (never ``U.T``), the initial
states as a tuple (LSTM ``(h0, c0)``, GRU ``(h0,)``), optional masks as ``None`` or
arrays, and return new arrays. Each (cell, device) pair has one entry in
:data:`LAYERS`, made from that pair's kernel file; adding a cell or a device adds
an entry. The compiled training loops call the kernels themselves (preallocated
outputs inside compiled code on the CPU, a workspace and fused paths on the GPU):
this is the convention of everything that runs one layer on its own (the
functional API, the tests' checks against the NumPy reference).

Arrays: ``x`` (B, T, I), ``W`` (I, gates*H), ``U`` (H, gates*H), ``b`` as the cell's
``CellSpec.bias_shape``; the forward pass returns ``(first, second, hs)``: the
pre-activations (B, T, gates*H), the cell's second stored array (LSTM: the cell
states (B, T, H); GRU: the gate values (B, T, 3H)) and the hidden states
(B, T, H). ``backward`` overwrites ``carries`` (the gradients with respect to the
final states in, with respect to the initial states out) and returns
``(dx, dW, dU, db)`` (``dx`` None unless ``need_dx``). ``forward(..., for_backward=False)``
is for a caller that reads only the states: on the CPU the pre-activations (and a
GRU's gate values) are then kept for the current step only, ``first`` (and for a GRU
``second``) of time length 1, instead of written out for every step.

:func:`forward_backward` runs both for a caller that wants only the gradients (the
functional API's backward): on the CPU the forward pass's arrays, which it never
returns, are carved from memory kept between calls (:data:`SCRATCH`), through the
CPU forward's ``out=`` argument.
"""

import math

import numpy as np

from numlstm._aligned import ScratchPool, aligned, aligned_empty, carve, carve_bytes
from numlstm._threads import kernel_threads
from numlstm.kernels import cpu, gru_cpu


# From this many multiply-adds of the recurrent product (batch * time * U.size) on, a layer's
# weights and outputs are passed on 64-byte boundaries (see numlstm._aligned): one GRU layer
# forward at (256, 60, 8, 64) 2.01-2.03 ms instead of 2.14-2.20, at (64, 100, 16, 256) 10 ms
# instead of 12-13. Below it the aligned copies and allocations, a few microseconds in Python,
# cost more than they save (at (32, 30, 1, 50): 0.144-0.156 ms against 0.137-0.139).
ALIGN_WORK = 1 << 24


# The memory :func:`forward_backward` keeps between calls for a layer's stored forward pass (see
# numlstm._aligned.ScratchPool), for problems that need at most 256 MiB of it (a GRU layer at
# (64, 100, 16, 256) needs 46 MB): a process that called numlstm.gru_backward or lstm_backward
# holds up to that much until it ends. Larger problems allocate and free theirs at every call.
SCRATCH = ScratchPool(limit=256 << 20)


def _big(x, U):
    """Whether a layer's problem is large enough for aligned weights and outputs (ALIGN_WORK)."""
    return x.shape[0] * x.shape[1] * U.size >= ALIGN_WORK


def _ready(a, big):
    """``a``, or (for a big problem) an aligned copy of it where it starts off a 64-byte boundary."""
    return aligned(a) if big else a


def _output(shape, dtype, big):
    """A new array for a kernel's output, on a 64-byte boundary for a big problem."""
    return aligned_empty(math.prod(shape), dtype).reshape(shape) if big else np.empty(shape, dtype=dtype)


class _Cpu:
    """A cell's CPU kernels behind the common convention: outputs allocated here (or,
    for the forward pass, given as ``out``), ``None`` masks passed as the kernels'
    empty arrays."""

    def __init__(self, module, gates, second_blocks, second_is_cache):
        self.module, self.gates, self.second_blocks = module, gates, second_blocks
        self.second_is_cache = second_is_cache  # (an LSTM's cell states are a result, a GRU's gate values not)

    @staticmethod
    def _masks(keep, hmask, dtype):
        return cpu.NO_KEEP if keep is None else keep, cpu.no_hmask(dtype) if hmask is None else hmask

    def shapes(self, x, U, for_backward=True):
        """The shapes of the forward pass's ``(first, second, hs)``."""
        B, T, _ = x.shape
        H = U.shape[0]
        # Without a backward pass to come, the kernels keep the step's projections in a ring of
        # length 1 (step t at t % 1), as prediction does: the same compiled code, and at
        # (64, 100, 16, 256) 40 MB a call (a GRU's two projections) neither allocated nor written.
        ring = 1 if not for_backward else T
        return ((B, ring, self.gates * H), (B, ring if self.second_is_cache else T, self.second_blocks * H),
                (B, T, H))

    def forward(self, x, W, U, b, states, keep=None, hmask=None, for_backward=True, out=None):
        # The weights and outputs of a big problem on 64-byte boundaries, as the training loops'
        # are (see ALIGN_WORK): the forward kernels load rows of W and U and store rows of the
        # outputs as whole vectors. At (64, 100, 16, 256) an LSTM layer forward took 14 ms, not 19.
        big = _big(x, U)
        if out is None:
            out = [_output(shape, x.dtype, big) for shape in self.shapes(x, U, for_backward)]
        first, second, hs = out
        self.module.layer_forward(x, _ready(W, big), _ready(U, big), b, *states, first, second, hs,
                                  cpu.chunk_count(x.shape[0], kernel_threads()), *self._masks(keep, hmask, x.dtype))
        return first, second, hs

    def backward(self, x, W, U, b, states, first, second, hs, dhs, carries, need_dx=True, keep=None, hmask=None):
        dW, dU, db = np.empty_like(W), np.empty_like(U), np.empty_like(b)
        big = _big(x, U)
        dx = _output(x.shape, x.dtype, big)  # (a product's output, stored as whole vectors)
        # (W and U as they are: the backward pass multiplies by their transposes, which the kernel
        # makes itself.)
        self.module.layer_backward(x, W, U, *states, first, second, hs, dhs, *carries, dW, dU, db, dx,
                                   cpu.chunk_count(x.shape[0], kernel_threads()), need_dx,
                                   *self._masks(keep, hmask, x.dtype))
        return dx if need_dx else None, dW, dU, db


class _Cuda:
    """A cell's CUDA launchers behind the common convention (``U`` in, ``U.T`` made here)."""

    def __init__(self, module_name):
        self.module_name = module_name

    @property
    def module(self):
        import importlib

        return importlib.import_module(f"numlstm.kernels.{self.module_name}")

    def forward(self, x, W, U, b, states, keep=None, hmask=None, for_backward=True):
        return self.module.layer_forward(x, W, U, b, *states, keep=keep, hmask=hmask)

    def backward(self, x, W, U, b, states, first, second, hs, dhs, carries, need_dx=True, keep=None, hmask=None):
        from numba import cuda

        from numlstm._device import launch
        from numlstm.kernels import cuda_sizes as sizes
        from numlstm.kernels.cuda_common import ceil_div, transpose_kernel

        U_T = cuda.device_array((U.shape[1], U.shape[0]), dtype=U.dtype)  # on the device, as the GPU engine does
        launch(transpose_kernel, ceil_div(U.size, sizes.ENGINE_THREADS), sizes.ENGINE_THREADS)(U, U_T)
        return self.module.layer_backward(x, W, U_T, *states, first, second, hs, dhs, *carries, need_dx=need_dx,
                                          keep=keep, hmask=hmask)


# (cell, device) -> the layer with the common convention.
LAYERS = {
    ("lstm", "cpu"): _Cpu(cpu, 4, 1, second_is_cache=False),
    ("gru", "cpu"): _Cpu(gru_cpu, 3, 3, second_is_cache=True),
    ("lstm", "cuda"): _Cuda("cuda"),
    ("gru", "cuda"): _Cuda("gru_cuda"),
}


def forward(cell, device, x, W, U, b, states, keep=None, hmask=None, for_backward=True):
    """One layer of ``cell`` forward on ``device``: ``(first, second, hs)`` (see the module;
    ``for_backward=False`` when only the states will be read)."""
    return LAYERS[cell, device].forward(x, W, U, b, states, keep=keep, hmask=hmask, for_backward=for_backward)


def forward_backward(cell, device, x, W, U, b, states, dhs, carries, need_dx=True):
    """One layer of ``cell`` forward on ``device`` and straight back: ``(dx, dW, dU, db)``,
    ``carries`` overwritten, as :func:`backward` after :func:`forward`. On the CPU the forward
    pass's stored arrays, which no caller sees, live in memory kept between calls
    (:data:`SCRATCH`) rather than in arrays allocated and freed at every call."""
    if device != "cpu":
        first, second, hs = forward(cell, device, x, W, U, b, states)
        return backward(cell, device, x, W, U, b, states, first, second, hs, dhs, carries, need_dx=need_dx)
    layer = LAYERS[cell, device]
    shapes = layer.shapes(x, U)
    with SCRATCH.borrow(carve_bytes(shapes, x.dtype)) as buffer:
        stored = carve(buffer, shapes, x.dtype)
        layer.forward(x, W, U, b, states, out=stored)
        return layer.backward(x, W, U, b, states, *stored, dhs, carries, need_dx=need_dx)


def backward(cell, device, x, W, U, b, states, first, second, hs, dhs, carries, need_dx=True, keep=None,
             hmask=None):
    """One layer of ``cell`` backward on ``device``, from its forward pass's ``first, second,
    hs``: ``(dx, dW, dU, db)``, ``carries`` overwritten (see the module)."""
    return LAYERS[cell, device].backward(x, W, U, b, states, first, second, hs, dhs, carries, need_dx=need_dx,
                                         keep=keep, hmask=hmask)
