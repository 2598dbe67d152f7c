"""Device discovery, on the ground floor: whether a CUDA GPU can run numlstm's kernels
(and why not), and the one way every CUDA kernel is launched.

Nothing here imports the rest of numlstm, so the argument checks
(:func:`numlstm._validation.resolve_device`) and the kernels can both use it.
``numba.cuda`` is imported only when a question about the GPU is asked.
"""

import functools
import warnings

import numba
import numpy as np

_LOW_OCCUPANCY = r"(?s).*will likely result in GPU under-utilization"


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


def cuda_status():
    """``(usable, reason)``: whether a CUDA GPU could run kernels, and why not."""
    try:
        from numba import cuda
    except ImportError as err:  # pragma: no cover - numba always has numba.cuda
        return False, f"numba.cuda cannot be imported ({err})"
    try:
        if not cuda.is_available():
            return False, "no CUDA driver or device found (numba.cuda.is_available() is False)"
        name = "" if numba.config.ENABLE_CUDASIM else cuda.current_context().device.name
    except Exception as err:  # the driver reports many kinds of failure
        return False, f"CUDA is installed but not usable: {err}"
    failure = _compile_probe()
    if failure:
        return False, failure
    if numba.config.ENABLE_CUDASIM:
        return True, "Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): correct, not fast"
    return True, name.decode() if isinstance(name, bytes) else str(name)


@functools.cache
def _compile_probe():
    """'' when a one-line kernel compiles and runs on the GPU, else why not.

    A driver and a device are not enough: Numba's CUDA compiler needs NVVM and
    a NumPy it supports (numba-cuda 0.30 fails to compile anything under
    NumPy 2.5, for one), and a user asking for ``device="auto"`` should get
    the CPU rather than that error.
    """
    from numba import cuda

    try:
        @cuda.jit
        def probe(a):
            a[0] += 1.0

        a = cuda.to_device(np.zeros(1))
        launch(probe, 1, 1)(a)
        if a.copy_to_host()[0] != 1.0:
            return "a probe kernel ran but computed a wrong result"
    except Exception as err:
        return f"Numba cannot compile CUDA kernels here ({type(err).__name__}: {err})"
    return ""
