"""The ``numlstm`` command: ``numlstm info`` and ``numlstm demo``."""

import argparse
import os
import sys
import time

import numpy as np


def _info(args):
    from numlstm.runtime import info

    details = info()
    width = max(len(k) for k in details)
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"{key:<{width}}  {value}")
    return 0


def population_windows(lookback=4, test_size=20):
    """The data of the Keras population tutorial, as windows.

    Scales the quarterly US population to [0, 1] on the training part (all but
    the last ``test_size`` quarters) and cuts windows of ``lookback`` quarters,
    each labelled with the next quarter. Returns a dict: ``dataset``,
    ``series``, ``X`` (windows, lookback), ``y``, ``n_train`` (windows ending
    before the held-out part), and the scaling ``lo``/``hi``.
    """
    from numlstm import datasets

    ds = datasets.load("us_population")
    series = ds["population"].values.astype(np.float64)
    train = series[:-test_size]
    lo, hi = train.min(), train.max()
    scaled = ((series - lo) / (hi - lo)).astype(np.float32)
    X = np.stack([scaled[i:i + lookback] for i in range(len(series) - lookback)])
    return {"dataset": ds, "series": series, "X": X, "y": scaled[lookback:], "n_train": len(train) - lookback,
            "lo": lo, "hi": hi}


def population_workflow(epochs=100, lookback=4, test_size=20, random_state=0, verbose=0):
    """The Keras population-forecasting tutorial, on numlstm.

    Fits ``LSTMRegressor(units=50, epochs=100, batch_size=1)`` (Adam, MSE) on
    :func:`population_windows` and forecasts the last ``test_size`` quarters
    one step ahead. Returns a dict with the data, the predictions, the test
    RMSE and the persistence (last value) RMSE, in the data's units.
    """
    from numlstm.estimators import LSTMRegressor

    data = population_windows(lookback, test_size)
    X, y, n_train, lo, hi, series = (data[k] for k in ("X", "y", "n_train", "lo", "hi", "series"))
    model = LSTMRegressor(units=50, epochs=epochs, batch_size=1, optimizer="adam", loss="mse",
                          random_state=random_state, verbose=verbose)
    start = time.perf_counter()
    model.fit(X[:n_train], y[:n_train])
    seconds = time.perf_counter() - start
    predicted = model.predict(X[n_train:]) * (hi - lo) + lo
    actual = series[-test_size:]
    persistence = series[-test_size - 1:-1]
    return {
        "dataset": data["dataset"],
        "model": model,
        "fit_seconds": seconds,
        "predicted": predicted,
        "actual": actual,
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "persistence_rmse": float(np.sqrt(np.mean((persistence - actual) ** 2))),
    }


def _demo(args):
    os.makedirs(args.output_dir, exist_ok=True)
    print("numlstm demo: the Keras population tutorial (LSTM(50), Adam, MSE, batch_size=1, "
          f"{args.epochs} epochs, last 20 quarters held out)")
    result = population_workflow(epochs=args.epochs, verbose=0 if args.quiet else 1)
    ds = result["dataset"]
    units = ds["population"].attrs.get("units", "")
    print(f"fit: {result['fit_seconds']:.2f} s (compilation included on a first run)")
    print(f"test RMSE, LSTM:        {result['rmse']:.4f} {units}")
    print(f"test RMSE, persistence: {result['persistence_rmse']:.4f} {units}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot written: matplotlib is not installed (pip install 'numlstm[plot]')", file=sys.stderr)
        return 0
    time_axis = ds["time"].values
    test_time = time_axis[-len(result["actual"]):]
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    ax.plot(time_axis, ds["population"].values, color="0.3", label="observed")
    ax.plot(test_time, result["predicted"], color="C1", marker="o", ms=3, label="LSTM, one step ahead")
    ax.axvspan(test_time[0], test_time[-1], color="C0", alpha=0.08, label="held out")
    ax.set(title="US population, quarterly", ylabel=f"{ds['population'].attrs.get('long_name', '')} ({units})")
    ax.legend()
    path = os.path.join(args.output_dir, "population_forecast.png")
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)  # never leave a half-written plot
    print(f"plot: {path}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="numlstm", description="LSTM networks for time series, on Numba.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, threading layer, caching and CUDA availability")
    demo = sub.add_parser("demo", help="fit and forecast the shipped US population series")
    demo.add_argument("--output-dir", default="numlstm-demo", help="where to write the plot (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=100, help="training epochs (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.command == "demo" and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    return {"info": _info, "demo": _demo}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
