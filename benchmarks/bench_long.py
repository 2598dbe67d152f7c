"""Long sequences on the CPU: numlstm's training step against PyTorch's, and a Forecaster fit with a long lookback.

Run from a checkout::

    python benchmarks/bench_long.py [--threads N] [--repeats 7] [--output benchmarks/results/long.txt]

Two measurements, float32 throughout:

* the training step of an LSTM regressor (``LSTM(64)`` then a dense output,
  the loss on the last step's output, as ``bench_cpu.py`` times it: one
  full batch through numlstm's compiled epoch against one PyTorch step with
  Adam) at 96, 384 and 768 steps, batch 64, 8 features. The gradient enters
  at the last step only and shrinks on its way back; after a few hundred
  steps it reaches the subnormal range (below 1.2e-38), where x86 CPUs
  compute in microcode. numlstm's kernels flush subnormals to zero
  (``numlstm/kernels/fpenv.py``); PyTorch, by default, does not.
* ``Forecaster(lookback=336, horizon=48, random_state=0).fit`` on one
  half-hourly series of 3,984 steps (a daily cycle plus noise, 3,600
  windows; the size issue 14 reported at 77 s a fit): seconds per epoch,
  compilation excluded (a first, short fit compiles).

Times are medians of interleaved repeats after a warm-up. PyTorch is a
benchmark-only dependency (``pip install ".[bench]"``).
"""

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in

import numpy as np  # noqa: E402
from _report import emit, median_times, peer_start  # noqa: E402
from bench_cpu import numlstm_case, torch_case  # noqa: E402

import numlstm  # noqa: E402

CASES = [(64, 96, 8, 64), (64, 384, 8, 64), (64, 768, 8, 64)]  # (batch, time, features, hidden)


def forecaster_fit():
    """Seconds per epoch and the number of epochs of the half-hourly Forecaster fit."""
    import pandas as pd
    import xarray as xr

    n = 3600 + 336 + 48
    rng = np.random.default_rng(0)
    values = 10 + 3 * np.sin(2 * np.pi * np.arange(n) / 48) + 0.5 * rng.standard_normal(n)
    ds = xr.Dataset({"load": ("time", values)}, coords={"time": pd.date_range("2020-01-01", periods=n,
                                                                              freq="30min")})
    numlstm.Forecaster(lookback=48, horizon=12, epochs=1, random_state=0).fit(ds, "load")  # compiles
    start = time.perf_counter()
    fc = numlstm.Forecaster(lookback=336, horizon=48, random_state=0).fit(ds, "load")
    seconds = time.perf_counter() - start
    epochs = len(fc.history_["loss"])
    return seconds, epochs


def main(argv=None):
    args, torch, title, load = peer_start("bench_long.py", __doc__.splitlines()[0], argv, 7, REPO)
    if torch is None:
        return 2
    lines = [
        title,
        f"median of {args.repeats} interleaved repeats after a warm-up; load average at start {load}",
        "",
        "| case (batch, time, features, hidden) | numlstm training step | torch training step | numlstm / torch |",
        "|---|---:|---:|---:|",
    ]
    rng = np.random.default_rng(0)
    for B, T, F, H in CASES:
        X = rng.standard_normal((B, T, F)).astype(np.float32)
        y = rng.standard_normal(B).astype(np.float32)
        nl_step = numlstm_case(X, y, H)[0]
        th_step = torch_case(torch, X, y, H)[0]
        times = median_times({"numlstm": nl_step, "torch": th_step}, args.repeats)
        lines.append(f"| {B}, {T}, {F}, {H} | {times['numlstm'] * 1e3:.1f} ms | {times['torch'] * 1e3:.1f} ms "
                     f"| {times['numlstm'] / times['torch']:.3f} |")
        print(lines[-1], flush=True)
    seconds, epochs = forecaster_fit()
    lines += [
        "",
        f"Forecaster(lookback=336, horizon=48, random_state=0).fit, one half-hourly series, 3,600 windows: "
        f"{seconds:.1f} s for {epochs} epochs (early stopping), {seconds / epochs:.2f} s per epoch, "
        "compilation excluded",
    ]
    print(lines[-1], flush=True)
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
