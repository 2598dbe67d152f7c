import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the NumPy reference lives beside the tests


def _thread_safe_simulator():
    """Numba's own CUDA simulator (numba <= 0.68, without numba-cuda) swaps ``numba.cuda`` for
    its fake module in a device function's module globals on every call and puts it back on
    return, with no lock: when two simulated threads run device functions of one module (our
    GRU kernels call helpers of ``kernels/cuda_common.py``), the first to return restores the real
    module under the second, which then fails now and then with "module 'numba.cuda' has no
    attribute 'threadIdx'". numba-cuda fixed it by counting the threads inside
    (NVIDIA/numba-cuda#690); the same here, for the simulator that lacks the fix."""
    import collections
    import contextlib
    import os
    import threading

    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return
    from numba.cuda.simulator import kernel, kernelapi

    if hasattr(kernelapi, "_swap_refcount"):  # this simulator counts already
        return
    lock = threading.Lock()
    inside = collections.Counter()
    saved = {}

    @contextlib.contextmanager
    def swapped_cuda_module(fn, fake_cuda_module):
        from numba import cuda

        module_globals = fn.__globals__
        key = id(module_globals)
        with lock:
            if inside[key] == 0:
                saved[key] = {k: v for k, v in module_globals.items() if v is cuda}
                module_globals.update(dict.fromkeys(saved[key], fake_cuda_module))
            inside[key] += 1
        try:
            yield
        finally:
            with lock:
                inside[key] -= 1
                if inside[key] == 0:
                    module_globals.update(saved.pop(key))

    kernel.swapped_cuda_module = swapped_cuda_module


_thread_safe_simulator()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


# Tolerances against the float64 NumPy reference.
TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=2e-5)}


def cuda_marks():
    """``pytestmark`` for CUDA tests: marked ``cuda``, skipped (saying why) without a usable
    device. Under NUMBA_ENABLE_CUDASIM=1 the simulator is the device."""
    from numlstm.runtime import cuda_status

    usable, reason = cuda_status()
    return [pytest.mark.cuda, pytest.mark.skipif(
        not usable, reason=f"no usable CUDA device ({reason}); run these with NUMBA_ENABLE_CUDASIM=1")]


@pytest.fixture
def small_cuda_launches(monkeypatch):
    """Launch sizes far below the defaults, so that even tiny tests run several blocks,
    partial tiles, strided thread loops and the two-pass reductions (and the
    simulator's one Python thread per CUDA thread stays quick)."""
    from numlstm.kernels import cuda_sizes as sizes

    small = {
        "THREADS": 8, "ROWS_PER_BLOCK": 2, "PAIRS_PER_BLOCK": 4,  # every recurrent layer
        # the weight-gradient product: 2 x 2 threads, tiles of 8 x 8, 4 pairs a stage, several chunks
        "GEMM_TY": 2, "GEMM_TX": 2, "GEMM_K": 4, "GEMM_BLOCKS": 12,
        "FAST_ROWS": 4,  # register-resident kernels: 4 rows a block
        "STEP_ROWS": 4, "STEP_UNITS": 4, "STEP_K": 4,  # one launch per step: tiles of 4 rows x 4 (8) units
        "ENGINE_THREADS": 16, "NORM_BLOCKS": 3,  # the GPU engine's small kernels
    }
    for name, value in small.items():
        monkeypatch.setattr(sizes, name, value)


def on_backends(*cases, cuda=None):
    """Parameters for a test taking ``backend`` (with ``indirect=["backend"]``) among others:
    each of ``cases`` (a tuple of the other parameters) on ``"cpu"``, and the ``cuda`` ones
    (default: every case) on ``"cuda"``, marked as the ``backend`` fixture marks it. For
    tests whose every case costs minutes on the simulator, where a few cases cover the GPU."""
    def name(backend, case):  # the id: the backend and the case's strings
        return "-".join([backend, *(c for c in case if isinstance(c, str))])

    params = [pytest.param(*case, "cpu", id=name("cpu", case)) for case in cases]
    params += [pytest.param(*case, "cuda", id=name("cuda", case), marks=cuda_marks())
               for case in (cases if cuda is None else cuda)]
    return params


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=cuda_marks())])
def backend(request):
    """The engine a shared test runs on: ``"cpu"``, and ``"cuda"`` (marked ``cuda``: on a GPU,
    or on the simulator with NUMBA_ENABLE_CUDASIM=1, its launch sizes small); skipped,
    saying why, where there is neither. Pass it as ``device=backend``. Parametrise it
    with :func:`on_backends` to run fewer cases on the GPU."""
    if request.param == "cuda":
        request.getfixturevalue("small_cuda_launches")
    return request.param


def trainer_class(backend):
    """The class of the trainer the epoch loop drives on ``backend`` (to patch its ``epoch``)."""
    if backend == "cuda":
        from numlstm.core import gpu

        return gpu.Trainer
    from numlstm.core import engines

    return engines.CpuTrainer
