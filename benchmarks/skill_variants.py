"""Variants of the Forecaster scored offline on the skill benchmark's protocol (``skill.py``).

How the candidates of 2026-12-06's decisions log (``results/skill-decisions-2026-12-06.txt``, 22:31 on)
were measured: each data set is fitted once, as ``skill.py`` fits it, and every forecast is cached to
``OUT_DIR/<group>--<data set>.npz``, so that a variant that only recombines forecasts costs no refit.
Printed per data set: the ratio of numlstm's MAE to the better naive forecast's (as ``skill.py``), of
**V** (per series and target the full forecast or the baseline alone, whichever had the lower MAE over
every lead of the fit's validation windows, ties to the baseline) and of the baseline alone (no linear
stage, the network gated off); then each group's geometric mean, count above 1 and worst ratio.
``--loss mse`` scores the network trained on the squared error (the default until that day), the
former default against which candidate M (the absolute error, now the default) was judged::

    python benchmarks/skill_variants.py --group eight,held-out,second,third OUT_DIR [--loss mse]

The ``npz`` files hold the truth, persistence, seasonal-naive, full and baseline-alone forecasts at the
test origins (``truth``, ``per``, ``sea``, ``full``, ``base``: series x origin x lead) and the same on
the validation origins (``*_v``, every origin of the fit's validation windows, at most about 2,000).
"""

import argparse
import copy
import math
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import numlstm  # noqa: E402  (skill.py puts the checkout first on the path)
import skill  # noqa: E402
import skill_eighth  # noqa: E402  (its data are read only when a loader runs)

GROUPS = {"eight": skill.CASES, "held-out": skill.HELD_OUT, "second": skill.HELD_OUT_2, "third": skill.HELD_OUT_3,
          "fourth": skill.HELD_OUT_4, "fifth": skill.HELD_OUT_5, "sixth": skill.HELD_OUT_6,
          "seventh": skill.HELD_OUT_7, "eighth": skill_eighth.HELD_OUT_8}


def _backtest(model, ds, start, stride):
    """(series, origins, lead) forecasts from origin index ``start`` every ``stride`` steps."""
    b = model.backtest(ds, start=ds["time"].values[start], stride=stride)
    da = b["y"].transpose(..., "init_time", "lead")
    return da.values.reshape(-1, b.sizes["init_time"], b.sizes["lead"]).astype(float)


def _mae_by_series(forecast, truth):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a series without observations: NaN, never chosen
        return np.nanmean(np.where(np.isfinite(truth), np.abs(forecast - truth), np.nan), axis=(1, 2))


def score(name, load, season, lookback, horizon, loss, out):
    """Fit once, cache the forecasts to ``out`` (an ``.npz`` path) and return the three ratios."""
    ds = load()
    y = skill._panel(ds)
    origins = y.shape[1] - horizon - 1 - horizon * np.arange(skill.ORIGINS)[::-1]
    o0, lead = int(origins[0]), np.arange(1, horizon + 1)
    train = ds.isel(time=slice(0, o0 + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = numlstm.Forecaster(lookback=lookback, horizon=horizon, random_state=skill.SEED, loss=loss).fit(train, "y")
        base = copy.copy(fc)  # the baseline alone: no linear stage, the network gated off
        base.linear_ = None
        if base.shrink_ is not None:
            base.shrink_ = np.zeros_like(base.shrink_)
        # the fit's validation windows, as Fitting cuts them (validation_fraction=0.2)
        first, last = lookback - 1, o0 - horizon
        start = first + int(math.ceil(0.8 * (last - first + 1))) - 1
        stride = max(1, int(math.ceil((last - start + 1) / 2000)))
        v_origins = np.arange(start, last + 1, stride)
        cache = {"truth": y[:, origins[:, None] + lead], "truth_v": y[:, v_origins[:, None] + lead]}
        for key, model in (("full", fc), ("base", base)):
            cache[key] = _backtest(model, ds, o0, horizon)
            cache[key + "_v"] = _backtest(model, train, start, stride)[:, :len(v_origins)]
    cache["per"], cache["sea"] = skill.naive_forecasts(y, origins, horizon, season)
    cache["per_v"], cache["sea_v"] = skill.naive_forecasts(y, v_origins, horizon, season)
    np.savez_compressed(out, origins=origins, v_origins=v_origins, **cache)
    use_base = _mae_by_series(cache["base_v"], cache["truth_v"]) <= _mae_by_series(cache["full_v"], cache["truth_v"])
    forecasts = {"numlstm": cache["full"], "V": np.where(use_base[:, None, None], cache["base"], cache["full"]),
                 "baseline alone": cache["base"]}
    best = min(skill.mae(cache["per"], cache["truth"])[0], skill.mae(cache["sea"], cache["truth"])[0])
    return {k: skill.mae(v, cache["truth"])[0] / best for k, v in forecasts.items()}, int(use_base.sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="where to cache every forecast (.npz per data set)")
    parser.add_argument("--group", default="eight,held-out,second,third", help="comma-separated groups of skill.py")
    parser.add_argument("--loss", default="auto", choices=["auto", "mae", "mse"], help="the Forecaster's loss")
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"numlstm {numlstm.__version__}, loss={args.loss!r}, seed {skill.SEED}; CPU: {skill.cpu_model()}")
    for group in args.group.split(","):
        ratios = []
        for name, load, _, season, lookback, horizon in GROUPS[group]:
            began = time.perf_counter()
            out = os.path.join(args.out_dir, f"{group}--{name.split(',')[0].replace(' ', '_').replace('/', '_')}.npz")
            r, n_base = score(name, load, season, lookback, horizon, args.loss, out)
            ratios.append(r)
            print(f"{group} | {name} | " + " | ".join(f"{k} {v:.3f}" for k, v in r.items())
                  + f" | V took the baseline for {n_base} series | {time.perf_counter() - began:.0f} s", flush=True)
        for key in ratios[0]:
            v = np.array([r[key] for r in ratios])
            print(f"- {group}, {key}: geometric mean {np.exp(np.log(v).mean()):.4f}, above 1 on {int((v > 1).sum())} "
                  f"of {len(v)}, worst {v.max():.4f}")


if __name__ == "__main__":
    main()
