"""Kernels called from several Python threads at once (dask's threaded scheduler does this)."""

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import numlstm
from numlstm._threads import kernel_threads


def test_main_thread_uses_every_numba_thread():
    assert kernel_threads() == numlstm.get_num_threads()


def test_concurrent_forecasts_agree_with_serial():
    ds = xr.Dataset({"y": (("time", "site"), np.random.default_rng(0).standard_normal((40, 4)))},
                    coords={"time": pd.date_range("2000", periods=40, freq="D"), "site": list("abcd")})
    fc = numlstm.Forecaster(lookback=5, horizon=2, units=4, epochs=1, random_state=0).fit(ds, "y")
    want = fc.predict(ds)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fc.predict(ds), range(8)))
    for got in results:
        xr.testing.assert_identical(got, want)


@pytest.mark.slow
def test_workqueue_layer_survives_concurrent_calls():
    """Numba's workqueue layer aborts the process on concurrent parallel kernels;
    numlstm runs the kernels serially off the main thread there."""
    script = textwrap.dedent("""
        import os
        os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        import numlstm
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 20, 3))
        W, U, b = rng.standard_normal((3, 32)), rng.standard_normal((8, 32)), np.zeros(32)
        want = numlstm.lstm_forward(x, W, U, b)[0]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda _: numlstm.lstm_forward(x, W, U, b)[0], range(16)))
        import numba
        assert numba.threading_layer() == "workqueue", numba.threading_layer()
        assert all(np.array_equal(g, want) for g in got)
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "ok"


def test_dask_worker_threads_share_the_cores():
    distributed = pytest.importorskip("distributed")
    import os

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        inside = client.submit(kernel_threads, pure=False).result()
    assert inside == max(1, min(numlstm.get_num_threads(), (os.cpu_count() or 1) // 2))


def _blas_threads():
    from threadpoolctl import threadpool_info

    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_own_linear_algebra_runs_on_one_blas_thread_and_restores_the_users_setting():
    import threading

    from numlstm import _threads as state
    from numlstm._threads import one_blas_thread

    before = _blas_threads()  # the process's own setting (numpy's OpenBLAS: one per core)
    assert before  # (numlstm's linear algebra is NumPy's; a BLAS loaded later, e.g. SciPy's, is not limited)
    with one_blas_thread():
        now = _blas_threads()
        assert {path: now[path] for path in before} == dict.fromkeys(before, 1)
    assert _blas_threads() == before

    # Concurrent users (dask's threads): the first in limits, only the last out restores.
    inside = threading.Barrier(4)
    leave = [threading.Event() for _ in range(3)]

    def user(i):
        with one_blas_thread():
            inside.wait(10)
            leave[i].wait(10)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    inside.wait(10)
    for i, t in enumerate(threads):
        assert state._blas_users == 3 - i and state._blas_limiter is not None
        leave[i].set()
        t.join(10)
    assert state._blas_users == 0 and state._blas_limiter is None
    after = _blas_threads()
    assert {path: after[path] for path in before} == before, "the user's BLAS setting was not restored"

    X = np.random.default_rng(0).standard_normal((16, 5, 2))
    numlstm.LSTMRegressor(units=4, epochs=1, random_state=0).fit(X, X[:, -1, 0])
    after = _blas_threads()
    assert {path: after[path] for path in before} == before


def test_initial_weights_do_not_depend_on_the_blas_thread_count():
    from numlstm.core.network import Network

    def weights():
        net = Network(3, (64, 64), 1, np.float64)
        net._initialize(np.random.default_rng(7))
        return net.params

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        one = weights()
    with threadpool_limits(limits=2, user_api="blas"):
        two = weights()
    np.testing.assert_array_equal(one, two)
