"""Peak memory of an out-of-core fit: a zarr store several times larger than the memory cap.

Run from a checkout (needs dask and zarr)::

    python benchmarks/bench_stream.py [--cap-mib 256] [--output benchmarks/results/stream.txt]

Writes a zarr store of ``4 x cap`` of float64 station data (a target and
seven covariates; 50 stations per chunk, every time step in a chunk) to a
temporary folder, chunk by chunk, then in a fresh process fits
``Forecaster(..., stream=True)`` on it for one epoch and reports, against the
size of one chunk (all variables) plus the model: the peak of the fit's own
allocations (tracemalloc) and the growth of the process's peak resident memory
(``ru_maxrss``, after a warm-up fit that compiles the kernels), once with
glibc's malloc defaults and once with a fixed mmap threshold (by default,
glibc raises the threshold after large blocks are freed, and later blocks of
that size then grow the heap instead of being returned). Also printed: what the same data would take in
memory as training windows, which is what a loaded fit would need.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from _report import emit, provenance  # noqa: E402

N_VARS, PER_CHUNK, N_TIME, LOOKBACK, HORIZON, UNITS = 8, 50, 8760, 24, 6, 16

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, xarray as xr
    sys.path.insert(0, {repo!r})
    import numlstm
    covs = [f"c{{k}}" for k in range({n_vars} - 1)]
    def fit(ds, epochs):
        fc = numlstm.Forecaster(lookback={lookback}, horizon={horizon}, units={units}, epochs=epochs,
                                batch_size=1024, calendar=None, relative=False, random_state=0)
        return fc.fit(ds, "y", covariates=covs, stream=True)
    ds = xr.open_zarr({path!r})
    fit(ds.isel(station=slice(0, 8), time=slice(0, 200)).chunk({{"station": 4}}), 1)  # compile first
    import tracemalloc
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    start = time.perf_counter()
    fc = fit(ds, 1)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({{"grown": peak - before, "peak": peak, "traced": traced, "seconds": seconds,
                      "windows": fc.n_windows_, "model": fc.network_.params.nbytes}}))
""")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap-mib", type=float, default=256.0)
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    import json

    import dask.array as da
    import numpy as np
    import xarray as xr

    cap = args.cap_mib * 2**20
    n_station = int(np.ceil(4 * cap / (N_VARS * N_TIME * 8) / PER_CHUNK)) * PER_CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stations.zarr")
        g = da.random.default_rng(0)
        t = np.arange(N_TIME)
        season = da.from_array(np.sin(2 * np.pi * t / 24.0)[None], chunks=(1, N_TIME))
        shape, chunks = (n_station, N_TIME), (PER_CHUNK, N_TIME)
        data = {"y": (("station", "time"), 10 + 3 * season + g.standard_normal(shape, chunks=chunks))}
        for k in range(N_VARS - 1):
            data[f"c{k}"] = (("station", "time"), g.standard_normal(shape, chunks=chunks))
        ds = xr.Dataset(data, coords={"time": np.arange(N_TIME), "station": np.arange(n_station)})
        ds.to_zarr(path, mode="w")
        data_bytes = ds.nbytes
        chunk_bytes = PER_CHUNK * N_TIME * N_VARS * 8
        script = CHILD.format(repo=REPO, n_vars=N_VARS, lookback=LOOKBACK, horizon=HORIZON, units=UNITS, path=path)
        results = []
        for env in ({}, {"MALLOC_MMAP_THRESHOLD_": "131072"}):
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                 env={**os.environ, **env})
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result, fixed = results
    mib = 2**20
    windows_bytes = n_station * N_TIME * LOOKBACK * N_VARS * 4
    lines = [f"Out-of-core fit, one epoch; {provenance(REPO)}", "",
             "| quantity | value |", "|---|---:|",
             f"| memory cap set | {cap / mib:.0f} MiB |",
             f"| data on disk (zarr, float64, {n_station} stations x {N_TIME} steps x {N_VARS} variables) | "
             f"{data_bytes / mib:.0f} MiB ({data_bytes / cap:.1f} x cap) |",
             f"| one chunk ({PER_CHUNK} stations, all variables) | {chunk_bytes / mib:.1f} MiB |",
             f"| model (float32 weights) | {result['model'] / 1024:.1f} KiB |",
             f"| training windows in memory, as a loaded fit would hold them | {windows_bytes / mib:.0f} MiB |",
             f"| peak of the fit's own allocations (tracemalloc: Python and NumPy) | "
             f"{result['traced'] / mib:.1f} MiB = {result['traced'] / (chunk_bytes + result['model']):.2f} x "
             "(chunk + model) |",
             f"| peak resident memory growth during the fit (glibc malloc defaults) | {result['grown'] / mib:.1f} "
             f"MiB = {result['grown'] / (chunk_bytes + result['model']):.2f} x (chunk + model) |",
             f"| the same with MALLOC_MMAP_THRESHOLD_=131072 (no heap growth from freed large blocks) | "
             f"{fixed['grown'] / mib:.1f} MiB = {fixed['grown'] / (chunk_bytes + result['model']):.2f} x "
             "(chunk + model) |",
             f"| process peak resident memory (Python, NumPy, Numba, dask included) | "
             f"{result['peak'] / mib:.0f} MiB |",
             f"| windows trained | {result['windows']:,} in {result['seconds']:.1f} s |"]
    emit(lines, args.output)


if __name__ == "__main__":
    main()
