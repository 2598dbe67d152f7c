"""Every CUDA kernel compiles to PTX for a Hopper GPU (sm_90), float32 and float64.

The simulator runs the kernels as Python, so it cannot catch code that Numba's
CUDA compiler rejects. Where the CUDA toolkit's NVVM library is installed (as
on the CI machines) this test compiles each kernel for real, without a GPU:
Numba asks the driver for the current device's compute capability when it
compiles a called device function, so the test answers that question (9.0)
itself. Skipped where there is no NVVM.
"""

import glob
import os
import types as pytypes

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("PTX compilation needs the real CUDA target, not the simulator", allow_module_level=True)

TOOLKITS = sorted(glob.glob("/usr/local/cuda*/lib*/libnvvm.so*") + glob.glob("/usr/local/cuda*/nvvm/lib64/libnvvm.so*"))


def _run_cpu_kernels_first():
    """Compile and run the CPU kernels and the optimizer before any CUDA compile, as a user's
    session (and the test suite) does: under numba-cuda 0.30, a function once IR-inlined into
    CPU code could no longer be typed for the GPU, which only this order exposed."""
    import numlstm

    rng = np.random.default_rng(0)
    for dt in (np.float64, np.float32):
        x = rng.standard_normal((2, 3, 1)).astype(dt)
        W, U, b = (rng.standard_normal(s).astype(dt) for s in ((1, 8), (2, 8), (8,)))
        numlstm.lstm_backward(x, W, U, b, np.ones((2, 3, 2), dt))
        W, U, b = (rng.standard_normal(s).astype(dt) for s in ((1, 6), (2, 6), (2, 6)))
        numlstm.gru_backward(x, W, U, b, np.ones((2, 3, 2), dt))
        numlstm.LSTMRegressor(units=2, epochs=1, batch_size=2, dtype=np.dtype(dt).name).fit(x, x[:, -1, 0])


@pytest.fixture(scope="module")
def compile_ptx():
    if not TOOLKITS and not os.environ.get("CUDA_HOME"):
        pytest.skip("no CUDA toolkit (libnvvm) on this machine")
    if not os.environ.get("CUDA_HOME"):
        os.environ["CUDA_HOME"] = os.path.dirname(os.path.dirname(TOOLKITS[0])).replace("/nvvm", "")
    _run_cpu_kernels_first()
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    real = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(9, 0))
    try:
        yield lambda kernel, sig: cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))[0]
    finally:
        dispatcher.get_current_device = real


def _signatures(dt):
    from numba import types

    from numlstm.core import gpu as g
    from numlstm.kernels import cuda as k
    from numlstm.kernels import gru_cuda as gk

    f64, i64 = types.float64, types.int64

    def A(dtype, ndim):
        return types.Array(dtype, ndim, "C")

    masks = (A(types.int8, 2), A(dt, 2))  # keep, hmask (zero-size, never read, where unused)
    kernels = {
        k._input_grad_kernel: (A(dt, 3), A(dt, 2), A(dt, 3)),
        k._reduce_parts: (A(dt, 3), A(dt, 2)),
    }
    for use in ((False, False), (True, False), (False, True), (True, True)):  # every choice of masks
        forward, backward = k.recurrent_kernels(np.dtype(str(dt)), *use)
        gru_forward, gru_backward = gk.recurrent_kernels(np.dtype(str(dt)), *use)
        kernels.update({
            forward: (A(dt, 3), A(dt, 2), A(dt, 2), A(dt, 1), A(dt, 2), A(dt, 2), *masks, A(dt, 3), A(dt, 3),
                      A(dt, 3), i64, types.boolean),
            backward: (A(dt, 2), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 2), A(dt, 2), *masks, A(dt, 3), i64,
                       types.boolean),
            k._partial_grads_kernel(*use): (A(dt, 3), A(dt, 2), A(dt, 3), A(dt, 3), *masks, A(dt, 3), i64),
            gru_forward: (A(dt, 3), A(dt, 2), A(dt, 2), A(dt, 2), A(dt, 2), *masks, A(dt, 3), A(dt, 3), A(dt, 3),
                          i64, types.boolean),
            gru_backward: (A(dt, 2), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 2), *masks, A(dt, 3),
                           A(dt, 3), i64, types.boolean),
            gk._partial_grads_kernel(*use): (A(dt, 3), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), *masks, A(dt, 3),
                                             i64),
        })
    return {
        **kernels,
        g._gather3: (A(dt, 3), A(i64, 1), i64, A(dt, 3)),
        g._gather2: (A(dt, 2), A(i64, 1), i64, A(dt, 2)),
        g._zero2: (A(dt, 2),),
        g._transpose: (A(dt, 2), A(dt, 2)),
        g._head_forward: (A(dt, 3), A(dt, 2), A(dt, 1), A(dt, 2)),
        g._loss: (i64, A(f64, 1), A(dt, 2), A(dt, 2), A(dt, 2), A(f64, 2), A(f64, 1), i64, A(i64, 1)),
        g._head_backward: (A(dt, 3), A(dt, 2), A(f64, 2), A(dt, 2), A(dt, 1), A(dt, 3)),
        g._sum_squares: (A(dt, 1), A(f64, 1)),
        g._check_and_scale: (A(f64, 1), A(f64, 1), i64, f64, A(i64, 1), A(f64, 1)),
        g._update: (i64, A(dt, 1), A(dt, 1), A(dt, 2), f64, A(f64, 1), A(i64, 1), A(f64, 1)),
        # dropout, bidirectional layers, token input
        g._dropout_mask: (i64, i64, i64, f64, i64, A(dt, 2)),
        g._layer_input: (A(dt, 3), A(dt, 2), types.boolean, A(dt, 3)),
        g._reverse_steps: (A(types.int8, 2), A(types.int8, 2)),
        g._concat_directions: (A(dt, 3), A(dt, 3), A(dt, 3)),
        g._top_features: (A(dt, 3), A(dt, 3)),
        g._spread_top: (A(dt, 3), A(dt, 3)),
        g._direction_grad: (A(dt, 3), i64, A(dt, 3)),
        g._add_input_grad: (A(dt, 3), A(dt, 3), A(dt, 2), types.boolean, types.boolean),
        g._embed: (A(dt, 1), i64, A(i64, 2), A(dt, 3)),
        g._keep_of: (A(i64, 2), A(types.int8, 2)),
        g._zero1: (A(dt, 1), i64, i64),
        g._embedding_grad: (A(dt, 3), A(i64, 1), A(i64, 1), A(i64, 1), i64, i64, A(dt, 1), i64),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_compiles_for_sm90(compile_ptx, dtype):
    from numba import types

    for kernel, sig in _signatures(getattr(types, dtype)).items():
        ptx = compile_ptx(kernel, sig)
        assert ".target sm_90" in ptx and ".entry" in ptx, kernel.py_func.__name__
