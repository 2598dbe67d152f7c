"""What the xarray layer costs: Forecaster.predict end to end against the bare kernel.

Run from a checkout::

    python benchmarks/bench_forecast.py [--series 10000] [--threads N] [--output FILE]

A Dataset of 10,000 daily series (dims ``time`` x ``station``, a non-index
``lat(station)`` coordinate, attributes) is forecast with a fitted Forecaster
(lookback 60, horizon 14, 64 hidden units). The end-to-end time of
``fc.predict(ds)`` (validation, stacking, scaling, calendar features, windows,
the network, unscaling, the labeled Dataset) is compared with the time of the
compiled forward pass alone (``numlstm.core.training.predict``) on exactly the
windows the Forecaster feeds it. Target: end to end at most 2x the kernel.

Two configurations: the default (``calendar="auto"``, so day-of-year
features and 14 known-future steps: 74 input steps) and ``calendar=None``
(60 input steps). Times are medians of several repeats after a warm-up,
the two measurements interleaved.
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in

import numpy as np  # noqa: E402
from _report import emit, median_times, provenance  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

import numlstm  # noqa: E402
from numlstm.core import training  # noqa: E402

TARGET = 2.0
LOOKBACK, HORIZON, UNITS = 60, 14, 64


def make_data(n_series, n_time, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_time)
    level = rng.uniform(1, 10, n_series)[None]
    flow = level + np.sin(2 * np.pi * t / 365.25)[:, None] + 0.3 * rng.standard_normal((n_time, n_series))
    return xr.Dataset(
        {"flow": (("time", "station"), flow.astype(np.float32), {"units": "m3 s-1"}),
         "rain": (("time", "station"), rng.gamma(1.0, 1.0, (n_time, n_series)).astype(np.float32))},
        coords={"time": pd.date_range("2000-01-01", periods=n_time, freq="D"),
                "station": np.arange(n_series), "lat": ("station", rng.uniform(30, 60, n_series))},
        attrs={"title": "synthetic stations"},
    )


def kernel_inputs(fc, ds):
    """The windows Forecaster.predict(ds) passes to the network (its own private steps)."""
    features, *_ = fc._prediction_features(ds, None)
    rows = np.arange(features.shape[0])
    X, _ = fc._windows(features, rows, np.full(rows.size, fc.lookback - 1))
    return X


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", help="also write the report to this file")
    args = parser.parse_args(argv)
    numlstm.set_num_threads(args.threads)
    ds = make_data(args.series, LOOKBACK + HORIZON)
    lines = [
        f"numlstm {numlstm.__version__}, {args.threads} thread(s); {provenance(REPO)}",
        f"{args.series} series, lookback {LOOKBACK}, horizon {HORIZON}, {UNITS} hidden units, float32; "
        f"median of {args.repeats} after a warm-up",
        "",
        "| configuration | input steps x features | Forecaster.predict | bare kernel | predict / kernel | target | "
        "verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for label, calendar in (("default (calendar='auto': day of year)", "auto"), ("calendar=None", None)):
        fc = numlstm.Forecaster(lookback=LOOKBACK, horizon=HORIZON, units=UNITS, epochs=1, batch_size=4096,
                                validation_fraction=0.0, calendar=calendar, random_state=0)
        fc.fit(ds, "flow", covariates=["rain"])
        X = kernel_inputs(fc, ds)
        forecast = fc.predict(ds)
        direct = training.predict(fc.network_, X)
        assert forecast["flow"].shape == (HORIZON, args.series) and direct.shape[0] == args.series
        medians = median_times({"predict": lambda: fc.predict(ds),
                                   "kernel": lambda: training.predict(fc.network_, X)}, args.repeats)
        ratio = medians["predict"] / medians["kernel"]
        lines.append(
            f"| {label} | {X.shape[1]} x {X.shape[2]} | {medians['predict'] * 1e3:.1f} ms | "
            f"{medians['kernel'] * 1e3:.1f} ms | {ratio:.2f} | <= {TARGET} | "
            f"{'met' if ratio <= TARGET else 'NOT met'} |")
        print(lines[-1], flush=True)
    emit(lines, args.output)


if __name__ == "__main__":
    main()
