"""How many threads a parallel CPU kernel may use when it is called now.

Numba's ``workqueue`` threading layer (the fallback where neither TBB nor
OpenMP is available) aborts the whole process when parallel kernels run from
two Python threads at once, which is what a threaded dask scheduler does. In a
thread other than the main one, with that layer (or before any layer is
chosen), the kernels therefore run serially. Inside a dask.distributed
worker, each task thread gets its share of the cores (cores / worker
threads), so that a worker's threads and Numba's together do not oversubscribe
the machine.

numlstm's own BLAS calls run on one BLAS thread (:func:`one_blas_thread`), so
that BLAS's idle worker threads do not spin beside the kernels.
"""

import contextlib
import os
import threading

import numba


def _layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return None


def _worker_threads():
    """Threads of the dask.distributed worker running this code, or None."""
    try:
        from distributed import get_worker
    except ImportError:
        return None
    try:
        worker = get_worker()
    except ValueError:  # not inside a worker
        return None
    return getattr(getattr(worker, "state", worker), "nthreads", None)


def kernel_threads():
    """Threads for the CPU kernels called from the current Python thread."""
    n = numba.get_num_threads()
    if threading.current_thread() is threading.main_thread():
        return n
    if _layer() in (None, "workqueue"):
        return 1
    worker = _worker_threads()
    if worker:
        return max(1, min(n, (os.cpu_count() or 1) // worker))
    return n


# --- numlstm's own BLAS calls --------------------------------------------------------------------
# A threaded BLAS (OpenBLAS, MKL) keeps its worker threads spinning for about a tenth of a second
# after each call, waiting for more work. numlstm's own linear algebra is small (the orthogonal
# initialisation's QR, the Forecaster's linear stage) and is followed at once by the parallel
# kernels, which then share the cores with those spinning threads: on 2 cores the first 20 epochs
# of an LSTMRegressor(50) fit at batch 32 took 7 ms each instead of 2.7 ms. Those calls therefore
# run on one BLAS thread (checked with OpenBLAS: the same initial weights, bit for bit, at the
# sizes tried), and the user's own BLAS setting is restored after the last concurrent caller leaves.
# (Observed with OpenBLAS 0.3.31: after the main thread itself set a limit, a limit set from another
# thread does not take; the kernels are then only slower, as before.)

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None
_blas_controller = None


def _controller():
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller


@contextlib.contextmanager
def one_blas_thread():
    """Run the block's NumPy/SciPy linear algebra on one BLAS thread (see above)."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            try:
                _blas_limiter = _controller().limit(limits=1, user_api="blas")
            except Exception:  # no BLAS threadpoolctl can drive: nothing to limit
                _blas_limiter = None
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
