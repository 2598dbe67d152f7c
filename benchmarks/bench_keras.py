"""The Keras population tutorial in Keras 3 and in numlstm.keras, same machine, same run.

Run from a checkout::

    python benchmarks/bench_keras.py [--threads N] [--output benchmarks/results/keras.txt]

One program, the Keras tutorial that forecasts the quarterly US population
(``Sequential([LSTM(50, input_shape=(look_back, 1)), Dense(1)])``,
``compile(optimizer="adam", loss="mean_squared_error")``, ``fit(X, y,
epochs=100, batch_size=1, verbose=2)``, on the 179 windows of 4 quarters of
``numlstm.datasets.load("us_population")``), run with Keras' imports (Keras 3,
``KERAS_BACKEND=torch``) and with numlstm.keras' imports; nothing else
changes. Every run is a fresh Python process, so the figures are what a user
of the tutorial sees:

* import: the two import lines of the program, the median of three more fresh
  processes that run only those lines (after the program's runs, so Python's
  bytecode cache is written, as it is for an installed package);
* fit, first in a process: ``model.fit`` as the program calls it. For
  numlstm it is measured twice: with an empty compile cache (Numba compiles
  the kernels inside the first fit) and with the kernels compiled by an
  earlier run (``NUMLSTM_CACHE=1``, loaded from the disk cache);
* fit, again in the same process: a second model of the same shape fitted
  the same way, nothing left to compile or load.

The table gives numlstm.keras / Keras ratios and the issue's targets (fit <=
0.05x Keras', import <= 1 s). Keras and PyTorch are benchmark-only
dependencies (``pip install ".[keras-peer]"``). The machine's CPU and load
average are printed: on a shared machine expect noisy figures.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _report import cpu_model, emit, provenance  # noqa: E402

IMPORTS = {
    "keras": "from keras.models import Sequential\nfrom keras.layers import LSTM, Dense",
    "numlstm": "from numlstm.keras.models import Sequential\nfrom numlstm.keras.layers import LSTM, Dense",
}

# The tutorial, with {imports} for its two import lines; the timers and the result line are the harness.
PROGRAM = """
import contextlib, io, json, time, warnings
warnings.simplefilter("ignore")
start = time.perf_counter()
{imports}
import_seconds = time.perf_counter() - start

import numpy as np
import xarray as xr

series = xr.load_dataset({data!r})["population"].values.astype("float32")
look_back, n_test = 4, 20
lo, hi = series[:-n_test].min(), series[:-n_test].max()
scaled = (series - lo) / (hi - lo)
X = np.stack([scaled[i:i + look_back] for i in range(len(scaled) - look_back)])[:-n_test]
y = scaled[look_back:][:-n_test]
X = np.reshape(X, (X.shape[0], X.shape[1], 1))

fits, losses = [], []
for _ in range(2):
    model = Sequential()
    model.add(LSTM(50, input_shape=(look_back, 1)))
    model.add(Dense(1))
    model.compile(loss='mean_squared_error', optimizer='adam')
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        history = model.fit(X, y, epochs={epochs}, batch_size=1, verbose=2)
    fits.append(time.perf_counter() - start)
    losses.append(float(history.history["loss"][-1]))
print("RESULT " + json.dumps({{"import": import_seconds, "fit": fits, "loss": losses, "samples": len(X)}}))
"""


def run(library, env, data, epochs):
    code = PROGRAM.format(imports=IMPORTS[library], data=data, epochs=epochs)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {library} run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def import_time(library, env, repeats=3):
    """The median wall time of the program's two import lines, each in a fresh process."""
    code = (f"import time, warnings\nwarnings.simplefilter('ignore')\nstart = time.perf_counter()\n"
            f"{IMPORTS[library]}\nprint('IMPORT', time.perf_counter() - start)")
    times = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
        lines = [line for line in done.stdout.splitlines() if line.startswith("IMPORT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"the {library} import failed:\n{done.stderr[-4000:]}")
        times.append(float(lines[-1].split()[1]))
    return sorted(times)[len(times) // 2], times


def seconds(value):
    return f"{value:.3g} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (OMP_NUM_THREADS, NUMBA_NUM_THREADS); default: theirs")
    parser.add_argument("--output", default=None, help="also write the report to this file")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each fit (the tutorial's 100; fewer "
                        "only to try the script out)")
    args = parser.parse_args()

    from importlib.metadata import PackageNotFoundError, version

    import numlstm

    try:  # versions only: Keras and PyTorch are imported in the timed processes, not here
        versions = {name: version(name) for name in ("keras", "torch")}
    except PackageNotFoundError as err:
        sys.exit(f"{err.name} is not installed; this benchmark needs Keras 3 and PyTorch: pip install '.[keras-peer]'")

    data = os.path.join(REPO, "numlstm", "datasets", "us_population.nc")
    base = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if args.threads:
        base.update(OMP_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

    results = {}
    with tempfile.TemporaryDirectory() as cache:
        # numlstm keeps its compiled kernels in its own cache directory (NUMLSTM_CACHE_DIR), not Numba's.
        numlstm_env = dict(base, NUMLSTM_CACHE="1", NUMLSTM_CACHE_DIR=cache)
        print("numlstm.keras, empty compile cache ...", flush=True)
        results["numlstm cold"] = run("numlstm", numlstm_env, data, args.epochs)
        print("numlstm.keras, compiled kernels in the disk cache ...", flush=True)
        results["numlstm"] = run("numlstm", numlstm_env, data, args.epochs)
        results["numlstm"]["import"], numlstm_imports = import_time("numlstm", numlstm_env)
    print("Keras 3 (torch backend) ...", flush=True)
    results["keras"] = run("keras", base, data, args.epochs)
    results["keras"]["import"], keras_imports = import_time("keras", base)

    k, n, cold = results["keras"], results["numlstm"], results["numlstm cold"]
    rows = [
        ("import (the two import lines, median of 3 processes)", k["import"], n["import"], "numlstm <= 1 s",
         n["import"] <= 1.0),
        ("fit, first in a fresh process, empty compile cache", k["fit"][0], cold["fit"][0], "", None),
        ("fit, first in a fresh process, kernels in the disk cache", k["fit"][0], n["fit"][0], "<= 0.05",
         n["fit"][0] / k["fit"][0] <= 0.05),
        ("fit, again in the same process", k["fit"][1], n["fit"][1], "<= 0.05", n["fit"][1] / k["fit"][1] <= 0.05),
    ]
    threads = args.threads or f"each library's default ({os.cpu_count()} cores)"
    lines = [
        f"numlstm {numlstm.__version__} (numlstm.keras) vs Keras {versions['keras']} on torch {versions['torch']}; "
        f"{provenance(REPO)}",
        f"CPU: {cpu_model()}; threads: {threads}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"the Keras population tutorial: LSTM(50), Dense(1), adam, mean_squared_error, {k['samples']} samples "
        f"(lookback 4), epochs={args.epochs}, batch_size=1, verbose=2; each library in fresh Python processes",
        "",
        "| measure | Keras 3 (torch) | numlstm.keras | numlstm / Keras | target | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, theirs, ours, target, met in rows:
        verdict = "" if met is None else ("met" if met else "NOT met")
        lines.append(f"| {name} | {seconds(theirs)} | {seconds(ours)} | {ours / theirs:.3f} | {target} | {verdict} |")
    lines += [
        "",
        f"final training loss (MSE, scaled): Keras {k['loss'][0]:.2e}, {k['loss'][1]:.2e}; numlstm.keras "
        f"{n['loss'][0]:.2e}, {n['loss'][1]:.2e} (different random initial weights and shuffles)",
        f"import, each process (s): Keras {', '.join(f'{t:.2f}' for t in keras_imports)}; numlstm.keras "
        f"{', '.join(f'{t:.2f}' for t in numlstm_imports)}",
        textwrap.fill("import: wall time of the program's two import lines, the median of three fresh processes "
                      "(Keras: keras on torch; numlstm: numlstm.keras, numba included). fit: "
                      f"model.fit(X, y, epochs={args.epochs}, batch_size=1, verbose=2) with its output discarded.",
                      110),
    ]
    emit(lines, args.output)


if __name__ == "__main__":
    main()
