"""Threads, compilation and the environment numlstm runs in."""

import importlib.metadata
import os
import platform
import time

import numba
import numpy as np

from numlstm._validation import check_positive_int
from numlstm import _cache, _vectors
from numlstm._device import cuda_status  # noqa: F401 - part of numlstm.runtime's interface
from numlstm.kernels._jit import njit


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


def warmup(dtypes=("float32",), cells=("lstm", "gru"), forecaster=True):
    """Compile the common kernels for ``dtypes`` now, on tiny problems; returns the seconds spent.

    Compilation otherwise happens on first use. The compiled code goes to the
    on-disk cache (on by default, see :func:`cache_info`), so one warm-up serves
    every later process on the machine: ``numlstm cache warm`` runs this for
    float32 and float64 in a Docker build or a cluster image. Covers fit and
    predict of both estimators for each cell in ``cells``, the functional
    forward/backward, and (with ``forecaster``) a tiny :class:`~numlstm.Forecaster`.

    Examples
    --------
    >>> import numlstm
    >>> seconds = numlstm.warmup(("float64",), cells=("lstm",), forecaster=False)
    """
    from numlstm.estimators import LSTMClassifier, LSTMRegressor
    from numlstm.functional import lstm_backward, lstm_forward

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        dt = np.dtype(dtype)
        x = rng.standard_normal((4, 3, 1)).astype(dt)
        W, U, b = (rng.standard_normal(s).astype(dt) for s in ((1, 8), (2, 8), (8,)))
        lstm_forward(x, W, U, b)
        lstm_backward(x, W, U, b, np.ones((4, 3, 2), dt))
        for cell in cells:
            model = LSTMRegressor(units=2, epochs=1, batch_size=2, dtype=dt.name, cell=cell).fit(x, x[:, -1, 0])
            model.predict(x)
            labels = np.array([0, 1, 0, 1])
            LSTMClassifier(units=2, epochs=1, batch_size=2, dtype=dt.name, cell=cell).fit(x, labels).predict(x)
        if forecaster:
            _warm_forecaster(dt.name)
    return time.perf_counter() - start


def _warm_forecaster(dtype):
    import xarray as xr

    from numlstm.forecast.forecaster import Forecaster

    days = np.arange("2000-01-01", "2000-03-01", dtype="datetime64[D]")
    value = np.sin(np.arange(days.size) / 5.0)
    ds = xr.Dataset({"y": ("time", value), "x": ("time", np.cos(np.arange(days.size) / 3.0))}, coords={"time": days})
    fc = Forecaster(lookback=7, horizon=2, units=4, epochs=1, dtype=dtype, random_state=0)
    fc.fit(ds, "y", covariates=["x"])
    fc.predict(ds)


def cache_info():
    """The on-disk kernel cache as a dict: whether it is on, where it is, its fingerprint,
    entries and bytes for this fingerprint, and how many fingerprints (and bytes) in all.

    Examples
    --------
    >>> import numlstm
    >>> sorted(numlstm.cache_info())[:3]
    ['bytes', 'directory', 'enabled']
    """
    return _cache.info()


def cache_clear():
    """Delete every compiled kernel in the cache directory; returns the bytes freed.

    Processes already running keep the code they loaded.
    """
    return _cache.clear()


def compile_stats():
    """Kernel specialisations compiled and loaded from the cache by this process so far:
    ``{"compiled": n, "loaded": m, "functions": k}``."""
    return _cache.compile_stats()


@njit(parallel=True)
def _touch_threads(n):
    acc = np.zeros(n)
    for i in numba.prange(n):
        acc[i] = i
    return acc.sum()


def _cache_line():
    if not _cache.enabled():
        return f"off ({_cache.CACHE_ENV}={os.environ.get(_cache.CACHE_ENV, '')!r})"
    details = _cache.info()
    return (f"on, {details['directory']} ({details['entries']} entries, {details['bytes'] / 2**20:.1f} MiB; "
            f"`numlstm cache info` for more)")


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
        "cache": _cache_line(),
        "vector_width": f"{_vectors.state()['requested']} ({_vectors.state()['why']})",
        "cuda": "usable: " + reason if usable else "not usable: " + reason,
    }
