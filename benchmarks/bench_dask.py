"""A gridded forecast through dask.distributed: lazy predict on a 200 x 200 grid.

Run from a checkout::

    python benchmarks/bench_dask.py [--size 200] [--output benchmarks/results/dask.txt]

A year of daily data on a ``size`` x ``size`` grid (a dask-backed Dataset,
chunked along the grid) is forecast 14 days ahead with a global Forecaster
(lookback 60, 32 hidden units) fitted beforehand on the grid's last weeks.
``fc.predict(ds)`` builds a lazy result; ``.compute()`` runs it on a
LocalCluster. Timed with one worker process using every core, and with one
worker process per core (one thread each), after a warm-up run that compiles
the kernels in the workers. Also printed: the same forecast computed eagerly
in this process, for reference.
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in

import numpy as np  # noqa: E402
from _report import emit, median_times, provenance  # noqa: E402

LOOKBACK, HORIZON, UNITS = 60, 14, 32


def make_grid(size, n_time=365, seed=0):
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    t = np.arange(n_time)
    season = np.sin(2 * np.pi * t / 365.25)[:, None, None]
    amplitude = rng.uniform(2, 8, (1, size, size))
    temp = (10 + amplitude * season + rng.standard_normal((n_time, size, size))).astype(np.float32)
    return xr.Dataset({"t2m": (("time", "lat", "lon"), temp, {"units": "degC"})},
                      coords={"time": pd.date_range("2001-01-01", periods=n_time, freq="D"),
                              "lat": np.linspace(-50, 50, size), "lon": np.linspace(0, 100, size)})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    import dask
    from distributed import Client, LocalCluster

    import numlstm

    cores = os.cpu_count() or 1
    data = make_grid(args.size)
    chunk = max(1, args.size // 4)
    lazy = data.chunk({"lat": chunk, "lon": args.size, "time": -1})
    start = time.perf_counter()
    fc = numlstm.Forecaster(lookback=LOOKBACK, horizon=HORIZON, units=UNITS, epochs=1, batch_size=4096,
                            validation_fraction=0.0, random_state=0)
    fc.fit(data.isel(time=slice(-(LOOKBACK + HORIZON + 6), None)), "t2m")
    fit_seconds = time.perf_counter() - start
    eager = fc.predict(data)  # warm in this process
    start = time.perf_counter()
    eager = fc.predict(data)
    eager_seconds = time.perf_counter() - start

    lines = [
        f"numlstm {numlstm.__version__}; {provenance(REPO)}",
        f"{args.size} x {args.size} grid ({args.size ** 2} series), 365 daily steps, float32, chunks of "
        f"{chunk} x {args.size} cells ({args.size // chunk} tasks); lookback {LOOKBACK}, horizon {HORIZON}, "
        f"{UNITS} hidden units; fit on the last {LOOKBACK + HORIZON + 6} days, 1 epoch: {fit_seconds:.1f} s",
        "",
        "| how | compute time (median) | against eager in-process |",
        "|---|---:|---:|",
        f"| eager, this process ({numlstm.get_num_threads()} Numba threads) | {eager_seconds:.2f} s | 1.00 |",
    ]
    print(lines[-1], flush=True)
    for n_workers, threads in ((1, cores), (cores, 1)):
        with LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                          dashboard_address=":0", silence_logs=40) as cluster, Client(cluster):
            with dask.config.set(scheduler=None):
                result = fc.predict(lazy).compute()  # warm-up: compiles the kernels in each worker
                median = median_times({"cluster": lambda: fc.predict(lazy).compute()}, args.repeats,
                                      warmup=0)["cluster"]
        np.testing.assert_allclose(result["t2m"].values, eager["t2m"].values, rtol=1e-5, atol=1e-5)
        lines.append(f"| LocalCluster: {n_workers} worker process(es) x {threads} thread(s) | {median:.2f} s | "
                     f"{median / eager_seconds:.2f} |")
        print(lines[-1], flush=True)
    emit(lines, args.output)


if __name__ == "__main__":
    main()
