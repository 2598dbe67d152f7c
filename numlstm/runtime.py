"""Threads, compilation and the environment numlstm runs in."""

import functools
import importlib.metadata
import os
import platform
import time

import numba
import numpy as np

from numlstm._validation import check_positive_int
from numlstm.kernels._jit import CACHE_ENV, cache_enabled


def set_num_threads(n):
    """Use ``n`` threads in the CPU kernels (at most Numba's ``NUMBA_NUM_THREADS``).

    Examples
    --------
    >>> import numlstm
    >>> before = numlstm.get_num_threads()
    >>> numlstm.set_num_threads(1); numlstm.get_num_threads()
    1
    >>> numlstm.set_num_threads(before)
    """
    n = check_positive_int(n, "n")
    if n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n={n} is more than the {numba.config.NUMBA_NUM_THREADS} threads Numba started with; "
                         "set NUMBA_NUM_THREADS before importing numlstm to allow more.")
    numba.set_num_threads(n)


def get_num_threads():
    """Threads the CPU kernels use now."""
    return numba.get_num_threads()


def warmup(dtypes=("float32",)):
    """Compile every CPU kernel for ``dtypes`` now, on a tiny problem.

    Compilation otherwise happens on first use (tens of seconds per dtype).
    With ``NUMLSTM_CACHE=1`` set before import, compiled code is cached on disk
    and later processes start fast. Returns the seconds spent.

    Examples
    --------
    >>> import numlstm
    >>> seconds = numlstm.warmup(("float64",))
    """
    from numlstm.estimators import LSTMRegressor
    from numlstm.functional import lstm_backward, lstm_forward

    start = time.perf_counter()
    for dtype in dtypes:
        dt = np.dtype(dtype)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 1)).astype(dt)
        W, U, b = (rng.standard_normal(s).astype(dt) for s in ((1, 8), (2, 8), (8,)))
        lstm_forward(x, W, U, b)
        lstm_backward(x, W, U, b, np.ones((2, 3, 2), dt))
        model = LSTMRegressor(units=2, epochs=1, batch_size=2, dtype=dt.name).fit(x, x[:, -1, 0])
        model.predict(x)
    return time.perf_counter() - start


@numba.njit(parallel=True, cache=cache_enabled())
def _touch_threads(n):
    acc = np.zeros(n)
    for i in numba.prange(n):
        acc[i] = i
    return acc.sum()


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
        from numlstm.kernels.cuda import launch

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


def info():
    """Versions, threads, threading layer, caching and CUDA availability, as a dict."""
    _touch_threads(2)
    versions = {}
    for name in ("numlstm", "numba", "llvmlite", "numpy", "scipy", "xarray"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    usable, reason = cuda_status()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "num_threads": numba.get_num_threads(),
        "threading_layer": numba.threading_layer(),
        "cache": f"{'on' if cache_enabled() else 'off'} ({CACHE_ENV}={os.environ.get(CACHE_ENV, '')!r})",
        "cuda": "usable: " + reason if usable else "not usable: " + reason,
    }
