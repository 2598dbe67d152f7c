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
``(dx, dW, dU, db)`` (``dx`` None unless ``need_dx``).
"""

import numpy as np

from numlstm._threads import kernel_threads
from numlstm.kernels import cpu, gru_cpu


class _Cpu:
    """A cell's CPU kernels behind the common convention: outputs allocated here,
    ``None`` masks passed as the kernels' empty arrays."""

    def __init__(self, module, gates, second_blocks):
        self.module, self.gates, self.second_blocks = module, gates, second_blocks

    @staticmethod
    def _masks(keep, hmask, dtype):
        return cpu.NO_KEEP if keep is None else keep, cpu.no_hmask(dtype) if hmask is None else hmask

    def forward(self, x, W, U, b, states, keep=None, hmask=None):
        B, T, _ = x.shape
        H = U.shape[0]
        first = np.empty((B, T, self.gates * H), dtype=x.dtype)
        second = np.empty((B, T, self.second_blocks * H), dtype=x.dtype)
        hs = np.empty((B, T, H), dtype=x.dtype)
        self.module.layer_forward(x, W, U, b, *states, first, second, hs, cpu.chunk_count(B, kernel_threads()),
                                  *self._masks(keep, hmask, x.dtype))
        return first, second, hs

    def backward(self, x, W, U, b, states, first, second, hs, dhs, carries, need_dx=True, keep=None, hmask=None):
        dW, dU, db, dx = np.empty_like(W), np.empty_like(U), np.empty_like(b), np.empty_like(x)
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

    def forward(self, x, W, U, b, states, keep=None, hmask=None):
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
    ("lstm", "cpu"): _Cpu(cpu, 4, 1),
    ("gru", "cpu"): _Cpu(gru_cpu, 3, 3),
    ("lstm", "cuda"): _Cuda("cuda"),
    ("gru", "cuda"): _Cuda("gru_cuda"),
}


def forward(cell, device, x, W, U, b, states, keep=None, hmask=None):
    """One layer of ``cell`` forward on ``device``: ``(first, second, hs)`` (see the module)."""
    return LAYERS[cell, device].forward(x, W, U, b, states, keep=keep, hmask=hmask)


def backward(cell, device, x, W, U, b, states, first, second, hs, dhs, carries, need_dx=True, keep=None,
             hmask=None):
    """One layer of ``cell`` backward on ``device``, from its forward pass's ``first, second,
    hs``: ``(dx, dW, dU, db)``, ``carries`` overwritten (see the module)."""
    return LAYERS[cell, device].backward(x, W, U, b, states, first, second, hs, dhs, carries, need_dx=need_dx,
                                         keep=keep, hmask=hmask)
