"""The ``numlstm`` command: ``numlstm info``, ``numlstm demo``, ``numlstm forecast`` and ``numlstm cache``."""

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


def _cache(args):
    from numlstm import runtime

    if args.action == "clear":
        freed = runtime.cache_clear()
        print(f"cleared {runtime.cache_info()['root']} ({freed / 2**20:.1f} MiB freed)")
        return 0
    if args.action == "warm":
        if not runtime.cache_info()["enabled"]:
            print("numlstm cache: error: caching is off (NUMLSTM_CACHE=0): nothing would be kept", file=sys.stderr)
            return 2
        seconds = runtime.warmup(tuple(args.dtypes))
        stats = runtime.compile_stats()
        print(f"warmed {', '.join(args.dtypes)} in {seconds:.1f} s: {stats['compiled']} specialisations compiled, "
              f"{stats['loaded']} already cached")
    details = runtime.cache_info()
    print(f"enabled      {'yes' if details['enabled'] else 'no (NUMLSTM_CACHE=0)'}")
    print(f"root         {details['root']}")
    print(f"fingerprint  {details['fingerprint']}")
    print(f"directory    {details['directory']}")
    print(f"entries      {details['entries']} ({details['bytes'] / 2**20:.1f} MiB)")
    print(f"all          {details['fingerprints']} fingerprint(s), {details['total_bytes'] / 2**20:.1f} MiB")
    return 0


def _compile_report():
    from numlstm.runtime import compile_stats

    stats = compile_stats()
    return f"kernels: {stats['compiled']} compiled, {stats['loaded']} loaded from the cache"


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


DEMO_TARGET = "temp_max"
DEMO_COVARIATES = ["temp_min", "precipitation", "wind"]
DEMO_START = "2015-01-01"  # the demo fits on 2012-2014 and backtests 2015
DEMO_QUANTILES = [0.1, 0.5, 0.9]


def demo_workflow(epochs=100, horizon=14, random_state=0, verbose=0):
    """The demo: Seattle's daily maximum temperature, forecast 14 days ahead.

    Fits a :class:`~numlstm.Forecaster` (10/50/90% quantiles, covariates
    ``temp_min``, ``precipitation`` and ``wind``) on 2012-2014 of the shipped
    Seattle weather, backtests every day of 2015 without refitting, scores the
    median against persistence and the seasonal-naive forecast (365 days
    before), and forecasts the 14 days after the record. Returns a dict.
    """
    from numlstm import datasets, metrics
    from numlstm.forecast import baselines
    from numlstm.forecast.forecaster import Forecaster

    ds = datasets.load("seattle_weather")
    train = ds.sel(time=slice(None, "2014-12-31"))
    fc = Forecaster(horizon=horizon, quantiles=DEMO_QUANTILES, epochs=epochs, random_state=random_state,
                    verbose=verbose)
    start = time.perf_counter()
    fc.fit(train, DEMO_TARGET, covariates=DEMO_COVARIATES)
    seconds = time.perf_counter() - start
    bt = fc.backtest(ds, start=DEMO_START)
    median = bt.sel(quantile=0.5, drop=True)
    obs = baselines.observed(ds, bt)
    candidates = {"numlstm (median)": median, "persistence": baselines.persistence(ds, bt),
                  "seasonal naive": baselines.seasonal_naive(ds, bt, 365)}
    skill = {}
    for name, forecast in candidates.items():
        skill[name] = {
            "mae": float(metrics.mae(obs, forecast, dim=None)[DEMO_TARGET]),
            "mase": float(metrics.mase(obs, forecast, dim=None, train=train[DEMO_TARGET])[DEMO_TARGET]),
            "mae_by_lead": metrics.mae(obs, forecast, dim="init_time")[DEMO_TARGET],
        }
    inside = ((obs[DEMO_TARGET] >= bt[DEMO_TARGET].sel(quantile=0.1)) &
              (obs[DEMO_TARGET] <= bt[DEMO_TARGET].sel(quantile=0.9))).mean()
    return {"dataset": ds, "model": fc, "fit_seconds": seconds, "backtest": bt, "skill": skill,
            "coverage_80": float(inside), "forecast": fc.predict(ds)}


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot written: matplotlib is not installed (pip install 'numlstm[plot]')", file=sys.stderr)
        return None
    return plt


def _save_figure(fig, path):
    plt = _matplotlib()
    tmp = f"{path}.tmp.png"
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)  # never leave a half-written plot
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


CFTIME_UNITS = "days since 0001-01-01"


def _plot_times(values):
    """``(x, calendar)``: time labels matplotlib can place. cftime dates (noleap, 360_day,
    ...), which matplotlib cannot convert, become days since 0001-01-01 in their own
    calendar (``calendar`` names it, for the tick labels); other labels pass as they are."""
    values = np.asarray(values)
    if values.dtype == object and values.size and hasattr(values.flat[0], "calendar"):
        import cftime

        calendar = values.flat[0].calendar
        return np.asarray(cftime.date2num(list(values), CFTIME_UNITS, calendar=calendar)), calendar
    return values, None


def _draw_forecast(ax, history, forecast, dim, label):
    """History and forecast of one series on ``ax``; a band between the outer quantiles."""
    x_past, calendar = _plot_times(history[dim].values)
    x_next, _ = _plot_times(forecast[dim].values)
    ax.plot(x_past, history.values, color="0.3", lw=1, label="observed")
    if "quantile" in forecast.dims:
        q = forecast["quantile"].values
        mid = forecast.sel(quantile=q[np.argmin(np.abs(q - 0.5))])
        ax.fill_between(x_next, forecast.sel(quantile=q[0]).values,
                        forecast.sel(quantile=q[-1]).values, color="C1", alpha=0.25,
                        label=f"{q[0]:g}-{q[-1]:g} quantiles")
        ax.plot(x_next, mid.values, color="C1", marker="o", ms=3, label=label)
    else:
        ax.plot(x_next, forecast.values, color="C1", marker="o", ms=3, label=label)
    if calendar is not None:
        import cftime
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda x, _: cftime.num2date(x, CFTIME_UNITS, calendar=calendar).strftime("%Y-%m-%d")))
        ax.set_xlabel(f"{dim} ({calendar} calendar)")


def plot_forecast(data, forecast, target, path, *, dim="time", history=None, max_series=4):
    """A PNG of the recent history and the forecast of ``target`` for up to ``max_series`` series."""
    plt = _matplotlib()
    if plt is None:
        return None
    da, fc_da = data[target], forecast[target]
    series_dims = [d for d in fc_da.dims if d not in (dim, "quantile")]
    history = history or 4 * fc_da.sizes[dim]
    da = da.isel({dim: slice(-history, None)})
    if series_dims:
        stacked = fc_da.stack(numlstm_series=series_dims)
        observed = da.stack(numlstm_series=series_dims)
        picks = range(min(max_series, stacked.sizes["numlstm_series"]))
    else:
        stacked, observed, picks = fc_da.expand_dims(numlstm_series=1), da.expand_dims(numlstm_series=1), [0]
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.6 * len(picks) + 0.6), layout="constrained",
                             squeeze=False)
    units = da.attrs.get("units", "")
    for ax, i in zip(axes[:, 0], picks):
        _draw_forecast(ax, observed.isel(numlstm_series=i), stacked.isel(numlstm_series=i), dim, "forecast")
        key = stacked["numlstm_series"].values[i] if series_dims else None
        ax.set(ylabel=f"{target} ({units})" if units else target,
               title=", ".join(f"{d}={v}" for d, v in zip(series_dims, key if isinstance(key, tuple) else [key]))
               if series_dims else da.attrs.get("long_name", target))
    axes[0, 0].legend(loc="best", fontsize="small")
    _save_figure(fig, path)
    return path


def _demo(args):
    from numlstm import io

    os.makedirs(args.output_dir, exist_ok=True)
    print(f"numlstm demo: Seattle daily maximum temperature, {args.horizon} days ahead "
          f"(Forecaster with quantiles {DEMO_QUANTILES}, covariates {', '.join(DEMO_COVARIATES)}; "
          "fitted on 2012-2014, backtested on 2015)")
    result = demo_workflow(epochs=args.epochs, horizon=args.horizon, verbose=0 if args.quiet else 1)
    ds, bt, skill = result["dataset"], result["backtest"], result["skill"]
    units = ds[DEMO_TARGET].attrs.get("units", "")
    print(f"fit: {result['fit_seconds']:.2f} s (compilation included on a first run), "
          f"{result['model'].n_windows_} training windows, {len(result['model'].history_['loss'])} epochs")
    print(f"backtest: {bt.sizes['init_time']} forecast origins x {bt.sizes['lead']} lead days, 2015")
    print(f"{'forecast':<18}  {'MAE (' + units + ')':>10}  {'MASE':>6}")
    for name, row in skill.items():
        print(f"{name:<18}  {row['mae']:>10.3f}  {row['mase']:>6.3f}")
    best = min(skill["persistence"]["mae"], skill["seasonal naive"]["mae"])
    print(f"numlstm MAE / best naive MAE: {skill['numlstm (median)']['mae'] / best:.3f}")
    print(f"observations inside the 10-90% band: {100 * result['coverage_80']:.1f}% (80% expected)")
    print(_compile_report())

    forecast = result["forecast"]
    path = os.path.join(args.output_dir, "forecast.nc")
    io.write_dataset(forecast, path)
    print(f"forecast: {path} ({forecast.sizes['time']} days from {str(forecast['time'].values[0])[:10]})")
    plt = _matplotlib()
    if plt is None:
        return 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), layout="constrained")
    recent = ds[DEMO_TARGET].isel(time=slice(-60, None))
    _draw_forecast(top, recent, forecast[DEMO_TARGET], "time", "forecast (median)")
    top.set(title="Seattle daily maximum temperature: the next 14 days", ylabel=f"temp_max ({units})")
    top.legend(loc="best", fontsize="small")
    for name, row in skill.items():
        bottom.plot(row["mae_by_lead"]["lead"].values, row["mae_by_lead"].values, marker="o", ms=3, label=name)
    bottom.set(title="Backtest on 2015: error by lead time", xlabel="lead (days)", ylabel=f"MAE ({units})")
    bottom.legend(loc="best", fontsize="small")
    path = os.path.join(args.output_dir, "forecast.png")
    _save_figure(fig, path)
    print(f"plot: {path}")
    return 0


def _forecast(args):
    import xarray as xr

    from numlstm import io
    from numlstm.forecast.forecaster import Forecaster

    for flag, value in (("-o/--output", args.output), ("--plot", args.plot), ("--save-model", args.save_model)):
        if value is not None and os.path.abspath(value) == os.path.abspath(args.input):
            raise ValueError(f"{flag} {value!r} is the input file; choose another name (the input is never "
                             "overwritten).")
    for flag, value in (("-o/--output", args.output), ("--save-model", args.save_model)):
        if value is not None and not value.lower().endswith((".nc", ".zarr")):
            raise ValueError(f"{flag} {value!r} must end in .nc or .zarr.")
    if not os.path.exists(args.input):
        raise ValueError(f"input file {args.input!r} does not exist.")
    # Before the fit, not after it: an output that cannot be written is found in a second, not an hour.
    for flag, value in (("-o/--output", args.output), ("--plot", args.plot), ("--save-model", args.save_model)):
        if value is not None:
            _check_writable(flag, value)
    try:
        with xr.open_dataset(args.input) as ds:
            data = ds.load()
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"input file {args.input!r} could not be read as netCDF or zarr "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__}).") from None
    fc = Forecaster(lookback=args.lookback, horizon=args.horizon, quantiles=args.quantiles, epochs=args.epochs,
                    random_state=args.seed, verbose=0 if args.quiet else 1)
    fc.fit(data, args.target, covariates=args.covariates, dim=args.dim, freq=args.freq)
    forecast = fc.predict(data)
    io.write_dataset(forecast, args.output)
    print(f"forecast: {args.output} ({args.horizon} steps of {fc.freq_} after "
          f"{data[args.dim].values[-1]}, {fc.n_windows_} training windows)")
    written = [f"the forecast to {args.output}"]
    try:
        if args.save_model:
            fc.save(args.save_model)
            written.append(f"the model to {args.save_model}")
            print(f"model: {args.save_model}")
        if args.plot:
            for target in fc.targets_:
                path = args.plot if len(fc.targets_) == 1 else f"{os.path.splitext(args.plot)[0]}_{target}.png"
                if plot_forecast(data, forecast, target, path, dim=args.dim):
                    written.append(f"the plot to {path}")
                    print(f"plot: {path}")
    except Exception as err:  # noqa: BLE001 - whatever failed, say what is already on disk
        print(f"numlstm forecast: error after writing {', '.join(written)}: {type(err).__name__}: "
              f"{str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 1
    return 0


def _check_writable(flag, path):
    """ValueError unless ``path`` can be created or replaced (its folder exists and is writable)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{flag} {path!r}: the folder {folder!r} does not exist; create it first.")
    if os.path.isdir(path) and not path.lower().endswith(".zarr"):
        raise ValueError(f"{flag} {path!r} is a folder; give a file name.")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{flag} {path!r} cannot be written (permission denied); choose another place.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="numlstm", description="LSTM networks for time series, on Numba.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, threading layer, caching and CUDA availability")
    cache = sub.add_parser("cache", help="the on-disk cache of compiled kernels: info, clear, or warm")
    cache.add_argument("action", nargs="?", choices=("info", "clear", "warm"), default="info",
                       help="info (default): where and how big; clear: delete it; warm: compile the common "
                            "kernels into it")
    cache.add_argument("--dtypes", nargs="+", choices=("float32", "float64"), default=["float32", "float64"],
                       help="dtypes to warm (default: both)")
    demo = sub.add_parser("demo", help="forecast Seattle's daily maximum temperature from the shipped data, "
                                       "with a backtest against naive forecasts")
    demo.add_argument("--output-dir", default="numlstm-demo",
                      help="where to write forecast.nc and forecast.png (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=100, help="most training epochs (default: %(default)s)")
    demo.add_argument("--horizon", type=int, default=14, help="days to forecast (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    fcst = sub.add_parser("forecast", help="fit a Forecaster to a netCDF file and forecast its next steps")
    fcst.add_argument("input", help="netCDF (or zarr) file with the series")
    fcst.add_argument("--target", required=True, nargs="+", help="variable(s) to forecast")
    fcst.add_argument("--horizon", required=True, type=int, help="steps to forecast")
    fcst.add_argument("--lookback", type=int, default=48, help="past steps the model reads (default: %(default)s)")
    fcst.add_argument("--covariates", nargs="+", default=None, help="past covariates (variables of the file)")
    fcst.add_argument("--quantiles", nargs="+", type=float, default=None, help="quantile levels, e.g. 0.1 0.5 0.9")
    fcst.add_argument("--dim", default="time", help="the time dimension (default: %(default)s)")
    fcst.add_argument("--freq", default=None, help="the time step, e.g. D or MS (default: inferred)")
    fcst.add_argument("--epochs", type=int, default=100, help="most training epochs (default: %(default)s)")
    fcst.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    fcst.add_argument("-o", "--output", required=True, help="forecast file to write (.nc or .zarr)")
    fcst.add_argument("--plot", default=None, help="also write a PNG of history and forecast")
    fcst.add_argument("--save-model", default=None, help="also save the fitted model (.nc or .zarr)")
    fcst.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for name in ("epochs", "horizon", "lookback"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if args.command == "forecast":
        try:
            return _forecast(args)
        except (ValueError, TypeError, OSError) as err:
            message = " ".join(str(err).split()) or type(err).__name__  # one line
            parser.exit(2, f"numlstm forecast: error: {message}\n")
        except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback (130, as shells report SIGINT)
            parser.exit(130, "numlstm forecast: interrupted\n")
    return {"info": _info, "demo": _demo, "cache": _cache}[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
