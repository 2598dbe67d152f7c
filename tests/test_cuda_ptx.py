"""Every CUDA kernel compiles to PTX for a Hopper GPU (sm_90), float32 and float64.

The simulator runs the kernels as Python, so it cannot catch code that Numba's
CUDA compiler rejects. Where the CUDA toolkit's NVVM library is installed (as
on the CI machines) this test compiles each kernel for real, without a GPU:
Numba asks the driver for the current device's compute capability when it
compiles a called device function, so the test answers that question (9.0)
itself. Skipped where there is no NVVM, and without the numba-cuda package
(CI installs it and runs this file under it).
"""

import glob
import os
import re
import shutil
import subprocess
import types as pytypes

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("PTX compilation needs the real CUDA target, not the simulator", allow_module_level=True)
# The CUDA target numlstm supports is the numba-cuda package (pip install "numlstm[cuda]"), which
# replaces Numba's own (deprecated) one; CI installs it and runs this file under it.
# CI sets NUMLSTM_REQUIRE_PTX=1: there a missing numba-cuda or NVVM fails these checks instead of skipping them.
REQUIRED = os.environ.get("NUMLSTM_REQUIRE_PTX") == "1"
try:
    import numba_cuda  # noqa: F401
except ImportError:
    if REQUIRED:
        raise
    pytest.skip("the PTX checks run under the numba-cuda package (pip install 'numlstm[cuda]'), the CUDA target "
                "numlstm supports", allow_module_level=True)

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
        (pytest.fail if REQUIRED else pytest.skip)("no CUDA toolkit (libnvvm) on this machine")
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

    from numlstm.core import gpu_kernels as g
    from numlstm.kernels import cuda as k
    from numlstm.kernels import cuda_common as common
    from numlstm.kernels import gru_cuda as gk

    f64, i64 = types.float64, types.int64

    def A(dtype, ndim):
        return types.Array(dtype, ndim, "C")

    masks = (A(types.int8, 2), A(dt, 2))  # keep, hmask (zero-size, never read, where unused)
    kernels = {
        common.input_grad_kernel: (A(dt, 3), A(dt, 2), A(dt, 3)),
        common.reduce_parts: (A(dt, 3), A(dt, 2)),
    }
    for use in ((False, False), (True, False), (False, True), (True, True)):  # every choice of masks
        forward, backward = k.recurrent_kernels(np.dtype(str(dt)), *use)
        gru_forward, gru_backward = gk.recurrent_kernels(np.dtype(str(dt)), *use)
        kernels.update({
            forward: (A(dt, 3), A(dt, 2), A(dt, 2), A(dt, 1), A(dt, 2), A(dt, 2), *masks, A(dt, 3), A(dt, 3),
                      A(dt, 3), i64, types.boolean),
            backward: (A(dt, 2), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 2), A(dt, 2), *masks, A(dt, 3), i64,
                       types.boolean),
            k.recurrent_kernels(np.dtype(str(dt)), *use, use_dhs=False)[1]: (
                A(dt, 2), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 2), A(dt, 2), *masks, A(dt, 3), i64,
                types.boolean),
            k.weight_grads_kernel(np.dtype(str(dt)), *use)[0]: (A(dt, 3), A(dt, 2), A(dt, 3), A(dt, 3), *masks,
                                                                 A(dt, 3), i64),
            gru_forward: (A(dt, 3), A(dt, 2), A(dt, 2), A(dt, 2), A(dt, 2), *masks, A(dt, 3), A(dt, 3), A(dt, 3),
                          i64, types.boolean),
            gru_backward: (A(dt, 2), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 3), A(dt, 2), *masks, A(dt, 3),
                           A(dt, 3), i64, types.boolean),
            gk._partial_grads_kernel(np.dtype(str(dt)), *use): (A(dt, 3), A(dt, 2), A(dt, 3), A(dt, 3), A(dt, 3), *masks, A(dt, 3),
                                             i64),
        })
    return {
        **kernels,
        g.gather3: (A(dt, 3), A(i64, 1), i64, A(dt, 3)),
        g.gather2: (A(dt, 2), A(i64, 1), i64, A(dt, 2)),
        g.zero2: (A(dt, 2),),
        g.head_forward: (A(dt, 3), A(dt, 2), A(dt, 1), A(dt, 2)),
        g.loss: (i64, A(f64, 1), A(dt, 2), A(dt, 2), A(dt, 2), A(f64, 2), A(f64, 1), i64, A(i64, 1)),
        g.head_backward: (A(dt, 3), A(dt, 2), A(f64, 2), A(dt, 2), A(dt, 1), A(dt, 3)),
        g.head_backward_last: (A(dt, 3), A(dt, 2), A(f64, 2), A(dt, 2), A(dt, 1), A(dt, 2)),
        common.transpose_kernel: (A(dt, 2), A(dt, 2)),
        g.sum_squares: (A(dt, 1), A(f64, 1)),
        g.check_and_scale: (A(f64, 1), A(f64, 1), i64, f64, A(i64, 1), A(f64, 1)),
        g.update: (i64, A(dt, 1), A(dt, 1), A(dt, 2), f64, A(f64, 1), A(i64, 1), A(f64, 1)),
        # dropout, bidirectional layers, token input
        g.dropout_mask: (i64, i64, i64, f64, i64, A(dt, 2)),
        g.layer_input: (A(dt, 3), A(dt, 2), types.boolean, A(dt, 3)),
        g.reverse_steps: (A(types.int8, 2), A(types.int8, 2)),
        g.concat_directions: (A(dt, 3), A(dt, 3), A(dt, 3)),
        g.top_features: (A(dt, 3), A(dt, 3)),
        g.spread_top: (A(dt, 3), A(dt, 3)),
        g.direction_grad: (A(dt, 3), i64, A(dt, 3)),
        g.add_input_grad: (A(dt, 3), A(dt, 3), A(dt, 2), types.boolean, types.boolean),
        g.embed: (A(dt, 1), i64, A(i64, 2), A(dt, 3)),
        g.keep_of: (A(i64, 2), A(types.int8, 2)),
        g.zero1: (A(dt, 1), i64, i64),
        g.embedding_grad: (A(dt, 3), A(i64, 1), A(i64, 1), A(i64, 1), i64, i64, A(dt, 1), i64),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_kernel_compiles_for_sm90(compile_ptx, dtype):
    from numba import types

    for kernel, sig in _signatures(getattr(types, dtype)).items():
        ptx = compile_ptx(kernel, sig)
        assert ".target sm_90" in ptx and ".entry" in ptx, kernel.py_func.__name__


# The register-resident float32 kernels at the benchmark's shapes, and the weight-gradient
# product: compiled to PTX, then assembled for sm_90 by ptxas (where the toolkit has it),
# which must keep every per-thread array in registers (no local memory: no stack frame,
# no spills) within a register budget: 2 blocks of 256 threads an SM for the product
# (<= 128); about that for the plain backward kernel (123 to 130 depending on the target);
# one block an SM for the forward kernel, the backward kernel that sums the weight
# gradients too, and the cooperative step kernels (launched one block an SM).
REGISTER_CEILING = {"forward": 232, "backward": 136, "fused_backward": 240, "weight_grads": 128, "step_forward": 160,
                    "step_backward": 160}


def _fast_signatures():
    from numba import types

    from numlstm.kernels import cuda as k


    from numlstm.kernels import cuda_fast as fast

    from numlstm.kernels import cuda_sizes as sizes

    f32 = types.float32

    def A(ndim):
        return types.Array(f32, ndim, "C")

    fwd = (A(3), A(2), A(2), A(1), A(2), A(2), A(3), A(3), A(3))
    bwd = (A(2), A(2), A(3), A(3), A(3), A(2), A(2), A(3), A(3), A(2), A(3), A(3))
    sigs = {}
    for F in (4, 8, 16):
        rows = fast.fast_rows(64, F)
        for store, all_h in ((True, True), (False, False), (False, True)):
            sigs[f"forward F={F} rows={rows} store={store} all_h={all_h}"] = (
                fast.fast_forward_kernel(64, F, rows, store, all_h), fwd)
    for use_dhs in (True, False):
        sigs[f"backward dhs={use_dhs}"] = (fast.fast_backward_kernel(64, sizes.FAST_BACKWARD_ROWS, use_dhs), bwd)
    for F in (4, 8, 16):
        for store_dz in (False, True):
            sigs[f"fused_backward F={F} dz={store_dz}"] = (
                fast.fast_backward_kernel(64, sizes.FAST_BACKWARD_ROWS, False, F, True, store_dz), bwd)
    i64 = types.int64
    for flag in (True, False):
        (step_forward, grid_forward), (step_backward, grid_backward) = fast.step_kernels(store=flag, use_dhs=flag)
        forward_args = (A(3), A(2), A(2), A(1), A(2), A(2), A(3), A(3), A(3))
        backward_args = (A(2), A(2), A(3), A(3), A(3), A(2), A(2), A(3))
        sigs[f"step_forward store={flag}"] = (step_forward, (i64, *forward_args))
        sigs[f"step_forward grid store={flag}"] = (grid_forward, forward_args)
        sigs[f"step_backward dhs={flag}"] = (step_backward, (i64, *backward_args))
        sigs[f"step_backward grid dhs={flag}"] = (grid_backward, backward_args)
    gemm = k.weight_grads_kernel(np.float32)[0]
    sigs["weight_grads"] = (gemm, (A(3), A(2), A(3), A(3), types.Array(types.int8, 2, "C"), A(2), A(3), types.int64))
    return sigs


def _ptxas():
    home = os.environ.get("CUDA_HOME", "")
    for path in (os.path.join(home, "bin", "ptxas"), "/usr/local/cuda/bin/ptxas"):
        if os.path.exists(path):
            return path
    return shutil.which("ptxas")


def test_fast_kernels_keep_their_arrays_in_registers(compile_ptx, tmp_path):
    from numlstm.kernels import cuda_sizes as sizes

    ptxas = _ptxas()
    for name, (kernel, sig) in _fast_signatures().items():
        ptx = compile_ptx(kernel, sig)
        assert ".local" not in ptx, f"{name}: a per-thread array went to local memory"
        if ptxas is None:
            continue
        path = tmp_path / "kernel.ptx"
        path.write_text(ptx)
        # -c: relocatable (the cooperative kernels call into the device runtime, linked at load)
        command = [ptxas, "-arch=sm_90", "-c", "-v", str(path), "-o", str(tmp_path / "kernel.o")]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stderr
        registers = int(re.search(r"Used (\d+) registers", report).group(1))
        frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", report)
        print(f"{name}: {registers} registers; {frame.group(0)}")
        assert frame.groups() == ("0", "0", "0"), f"{name}: {frame.group(0)}"
        assert registers <= REGISTER_CEILING[name.split()[0]], f"{name}: {registers} registers"
        if name.startswith("forward") and sizes.FAST_MAX_REGISTERS:
            # as launched: capped, which may spill a little (measured faster than 1 block an SM)
            report = subprocess.run(command + [f"-maxrregcount={sizes.FAST_MAX_REGISTERS}"], capture_output=True,
                                    text=True, check=True).stderr
            spilled = int(re.search(r"(\d+) bytes spill stores", report).group(1))
            print(f"{name} capped at {sizes.FAST_MAX_REGISTERS} registers: {spilled} bytes spilled")
            assert spilled <= 128, f"{name}: {spilled} bytes spilled under the register cap"
