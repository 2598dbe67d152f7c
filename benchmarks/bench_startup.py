"""Start-up as a new user meets it: fresh processes, the package in a new folder, a new home.

Each measure runs in a fresh Python process whose environment has no numlstm
or Numba caching variable and whose home directory (hence the default cache
directory, ``~/.cache/numlstm``) starts empty, with numlstm copied into a new
folder (so nothing compiled for the checkout is reused):

- the first run ever on the machine (empty cache): import numlstm, fit and
  predict a small ``LSTMRegressor``, then a small ``Forecaster``;
- a later run of the same script (the cache filled by the first);
- ``numlstm demo``, first and later run, wall time;
- the Keras population tutorial end to end (import, LSTM(50), Dense(1), 100
  epochs at batch size 1, predict) in a later numlstm process, and in Keras 3
  (torch backend) when Keras is installed, in the same run.

Every run also reports how many kernel specialisations it compiled and
loaded (``numlstm.compile_stats()``). The first run is repeated with a new
home each time (median and range), also with ``NUMLSTM_COMPILE_AHEAD=0``: the
whole compile in the one process, without the helper that compiles the
backward pass on a second core.

Run: ``python benchmarks/bench_startup.py [--repeats 3] [--first-runs 3] [--skip-keras]``.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _report import cpu_model  # noqa: E402

WORKLOAD = r"""
import json, time
t0 = time.perf_counter()
import numpy as np, xarray as xr, numlstm
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 12, 2)).astype(np.float32)
y = X[:, -1, 0] + 0.1 * X[:, -2, 1]
t = time.perf_counter()
model = numlstm.LSTMRegressor(units=8, epochs=2, random_state=0).fit(X, y)
t_fit = time.perf_counter() - t
t = time.perf_counter()
model.predict(X)
t_predict = time.perf_counter() - t
days = np.arange("2000-01-01", "2000-07-01", dtype="datetime64[D]")
ds = xr.Dataset({"y": (("station", "time"), np.sin(np.arange(days.size) / 7.0 + np.arange(3)[:, None]))},
                coords={"time": days, "station": ["a", "b", "c"]})
t = time.perf_counter()
fc = numlstm.Forecaster(lookback=14, horizon=3, units=8, epochs=2, random_state=0).fit(ds, "y")
t_ffit = time.perf_counter() - t
t = time.perf_counter()
fc.predict(ds)
t_fpredict = time.perf_counter() - t
print(json.dumps({"import": t_import, "fit": t_fit, "predict": t_predict, "forecaster fit": t_ffit,
                  "forecaster predict": t_fpredict, "total": time.perf_counter() - t0,
                  "stats": numlstm.compile_stats()}))
"""

POPULATION = r"""
import json, time
t0 = time.perf_counter()
from numlstm.cli import population_workflow
import numlstm
t_import = time.perf_counter() - t0
result = population_workflow(epochs=100)
print(json.dumps({"import": t_import, "fit": result["fit_seconds"], "total": time.perf_counter() - t0,
                  "rmse": result["rmse"], "stats": numlstm.compile_stats()}))
"""

KERAS_POPULATION = r"""
import json, os, time
os.environ.setdefault("KERAS_BACKEND", "torch")
t0 = time.perf_counter()
import keras
import numpy as np
t_import = time.perf_counter() - t0
from numlstm.cli import population_windows
data = population_windows(4, 20)
X, y, n = data["X"][..., None], data["y"], data["n_train"]
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4, 1)), keras.layers.LSTM(50), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mean_squared_error")
t = time.perf_counter()
model.fit(X[:n], y[:n], epochs=100, batch_size=1, verbose=0)
t_fit = time.perf_counter() - t
model.predict(X[n:], verbose=0)
print(json.dumps({"import": t_import, "fit": t_fit, "total": time.perf_counter() - t0,
                  "keras": keras.__version__}))
"""


def fresh_environment(home, package_root):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NUMLSTM_", "NUMBA_CACHE", "XDG_CACHE_HOME", "PYTHONPATH"))}
    env.update(HOME=str(home), PYTHONPATH=str(package_root), PYTHONDONTWRITEBYTECODE="1")
    return env


def run_json(code, env, cwd):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def run_demo(env, cwd, out):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "numlstm.cli", "demo", "--quiet", "--output-dir", str(out)], env=env,
                          cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"demo failed ({done.returncode}):\n{done.stderr[-3000:]}")
    kernels = [line for line in done.stdout.splitlines() if line.startswith("kernels:")]
    return wall, kernels[0] if kernels else "?"


def stats_text(result):
    stats = result.get("stats")
    return f"{stats['compiled']} compiled, {stats['loaded']} loaded" if stats else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="later runs to take the median of")
    parser.add_argument("--first-runs", type=int, default=3,
                        help="first runs (each with a new home, so an empty cache) to take the median of, "
                             "with the compile helper and without it")
    parser.add_argument("--skip-keras", action="store_true")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="numlstm-startup-") as scratch:
        scratch = pathlib.Path(scratch)
        package_root = scratch / "site"
        shutil.copytree(REPO / "numlstm", package_root / "numlstm", ignore=shutil.ignore_patterns("__pycache__"))
        home = scratch / "home"
        home.mkdir()
        env = fresh_environment(home, package_root)
        work = scratch / "work"
        work.mkdir()

        firsts = {}
        for k in range(args.first_runs):  # alternating, each in a new home (an empty cache)
            for ahead in ("1", "0"):
                other_home = scratch / f"home-{ahead}-{k}"
                other_home.mkdir()
                firsts.setdefault(ahead, []).append(
                    run_json(WORKLOAD, dict(fresh_environment(other_home, package_root), NUMLSTM_COMPILE_AHEAD=ahead),
                             work))
        for ahead, label, target in (("1", "", "<= 15"), ("0", ", NUMLSTM_COMPILE_AHEAD=0 (no helper process)", "")):
            walls = sorted(r["wall"] for r in firsts[ahead])
            mid = sorted(firsts[ahead], key=lambda r: r["wall"])[len(walls) // 2]
            rows.append((f"first run ever (empty cache){label}: import + fit + predict, LSTMRegressor and "
                         f"Forecaster (median of {len(walls)}: {', '.join(f'{w:.2f}' for w in walls)})",
                         mid["wall"], stats_text(mid), target))
        run_json(WORKLOAD, env, work)  # fills this home's cache for the later runs
        later = [run_json(WORKLOAD, env, work) for _ in range(args.repeats)]
        mid = sorted(later, key=lambda r: r["wall"])[len(later) // 2]
        rows.append(("later run (cache filled): the same work", mid["wall"], stats_text(mid), "<= 2"))
        breakdown = ", ".join(f"{k} {mid[k]:.2f}" for k in ("import", "fit", "predict", "forecaster fit",
                                                              "forecaster predict"))

        demo_first, demo_first_kernels = run_demo(env, work, scratch / "demo1")
        rows.append(("`numlstm demo`, first run after the above", demo_first, demo_first_kernels, ""))
        demo_later = [run_demo(env, work, scratch / f"demo{i + 2}") for i in range(args.repeats)]
        demo_wall = statistics.median(w for w, _ in demo_later)
        rows.append(("`numlstm demo`, later run", demo_wall, demo_later[0][1], "<= 6"))

        population = run_json(POPULATION, env, work)
        rows.append(("population tutorial end to end (LSTM(50), 100 epochs, batch 1), numlstm",
                     population["wall"], f"import {population['import']:.2f}, fit {population['fit']:.2f}; "
                     + stats_text(population), ""))
        keras_row = None
        if not args.skip_keras:
            try:
                keras_row = run_json(KERAS_POPULATION, env, work)
            except RuntimeError as err:
                print(f"Keras 3 not measured: {str(err).splitlines()[-1]}", file=sys.stderr)
        if keras_row:
            rows.append((f"population tutorial end to end, Keras {keras_row['keras']} (torch backend)",
                         keras_row["wall"], f"import {keras_row['import']:.2f}, fit {keras_row['fit']:.2f}", ""))

    print(f"# numlstm start-up, fresh processes; {cpu_model()}, {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"# later run breakdown (s): {breakdown}")
    print("| measure | wall s | kernels | target s |")
    print("|---|---:|---|---:|")
    for name, seconds, kernels, target in rows:
        print(f"| {name} | {seconds:.2f} | {kernels} | {target} |")
    if keras_row:
        print(f"\nnumlstm / Keras, population tutorial end to end: {population['wall'] / keras_row['wall']:.3f}; "
              f"fit alone: {population['fit'] / keras_row['fit']:.3f}")


if __name__ == "__main__":
    main()
