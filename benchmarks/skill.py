"""Forecast skill of the Forecaster, with default settings, against naive forecasts.

Run from a checkout::

    python benchmarks/skill.py [--output benchmarks/results/skill.txt]

For each shipped series, the Forecaster (default settings but the seed) is fitted
on the record before a cut-off and backtested from the cut-off on, one forecast
origin per step, without refitting. Its MAE and MASE over every origin and lead
are printed beside those of persistence (the last observed value) and the
seasonal-naive forecast (the value one season before), and the ratio of its MAE
to the better naive one. The target is a ratio of at most 0.9 (at least 10%
lower MAE than the better naive forecast).
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in

import numpy as np  # noqa: E402
from _report import emit, provenance  # noqa: E402

import numlstm  # noqa: E402
from numlstm.forecast import baselines  # noqa: E402

TARGET = 0.9
# name, data set, target, covariates, cut-off (first forecast origin), season in steps
CASES = [
    ("Seattle daily max temperature", "seattle_weather", "temp_max", ["temp_min", "precipitation", "wind"],
     "2015-01-01", 365),
    ("Seattle daily min temperature", "seattle_weather", "temp_min", ["temp_max", "precipitation", "wind"],
     "2015-01-01", 365),
    ("Seattle daily mean wind speed", "seattle_weather", "wind", ["temp_max", "temp_min", "precipitation"],
     "2015-01-01", 365),
    ("US population, quarterly", "us_population", "population", [], "2000-01-01", 4),
]


def run_case(name, dataset, target, covariates, start, season, seed):
    ds = numlstm.datasets.load(dataset)
    train = ds.sel(time=slice(None, np.datetime64(start) - np.timedelta64(1, "D")))
    fc = numlstm.Forecaster(random_state=seed)
    began = time.perf_counter()
    fc.fit(train, target, covariates=covariates or None)
    fit_seconds = time.perf_counter() - began
    bt = fc.backtest(ds, start=start)
    obs = baselines.observed(ds, bt)
    forecasts = {
        "numlstm": bt,
        "persistence": baselines.persistence(ds, bt),
        "seasonal naive": baselines.seasonal_naive(ds, bt, season),
    }
    row = {"name": name, "fit_seconds": fit_seconds, "origins": bt.sizes["init_time"], "lead": bt.sizes["lead"],
           "lookback": fc.lookback}
    for key, fcst in forecasts.items():
        row[f"mae {key}"] = float(numlstm.metrics.mae(obs, fcst, dim=None)[target])
        row[f"mase {key}"] = float(numlstm.metrics.mase(obs, fcst, dim=None, train=train[target],
                                                         season=1)[target])
        row[f"mae by lead {key}"] = numlstm.metrics.mae(obs, fcst, dim="init_time")[target].values
    best = min(row["mae persistence"], row["mae seasonal naive"])
    row["ratio"] = row["mae numlstm"] / best
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the report to this file")
    args = parser.parse_args(argv)
    lines = [
        f"numlstm {numlstm.__version__}, Forecaster() defaults, random_state={args.seed}; {provenance(REPO)}",
        "",
        "| series | origins x leads | MAE numlstm | MAE persistence | MAE seasonal naive | MASE numlstm | "
        "MASE persistence | MASE seasonal naive | numlstm / best naive | target | verdict | fit (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    rows = []
    for case in CASES:
        row = run_case(*case, seed=args.seed)
        rows.append(row)
        verdict = "met" if row["ratio"] <= TARGET else "NOT met"
        lines.append(
            f"| {row['name']} | {row['origins']} x {row['lead']} | {row['mae numlstm']:.4g} | "
            f"{row['mae persistence']:.4g} | {row['mae seasonal naive']:.4g} | {row['mase numlstm']:.3f} | "
            f"{row['mase persistence']:.3f} | {row['mase seasonal naive']:.3f} | {row['ratio']:.3f} | "
            f"<= {TARGET} | {verdict} | {row['fit_seconds']:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "MAE by lead (steps 1, 2, ...), numlstm / persistence:"]
    for row in rows:
        ratio = row["mae by lead numlstm"] / row["mae by lead persistence"]
        lines.append(f"- {row['name']}: " + " ".join(f"{r:.2f}" for r in ratio))
    lines.append("")
    lines.append("The first fit of the process includes compiling the kernels.")
    emit(lines, args.output)


if __name__ == "__main__":
    main()
