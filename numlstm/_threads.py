"""How many threads a parallel CPU kernel may use when it is called now.

Numba's ``workqueue`` threading layer (the fallback where neither TBB nor
OpenMP is available) aborts the whole process when parallel kernels run from
two Python threads at once, which is what a threaded dask scheduler does. In a
thread other than the main one, with that layer (or before any layer is
chosen), the kernels therefore run serially. Inside a dask.distributed
worker, each task thread gets its share of the cores (cores / worker
threads), so that a worker's threads and Numba's together do not oversubscribe
the machine.
"""

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
