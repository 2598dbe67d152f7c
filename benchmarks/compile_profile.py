"""Where a first fit's compile time goes: Numba's compile events, per function.

Runs in this process with caching off (set ``NUMLSTM_CACHE=0`` before
running; the script refuses otherwise): fits and predicts a small float32
``LSTMRegressor``, then a small ``Forecaster``, recording Numba's
``numba:compile`` events. Prints the CPU seconds of each stage, the number of
specialisations compiled, and per compiled function its exclusive time (its
own typing, lowering, LLVM optimisation and code generation, callees' compiles
excluded) and inclusive time.

Run: ``NUMLSTM_CACHE=0 NUMBA_NUM_THREADS=1 python benchmarks/compile_profile.py [--top 25]``.
"""

import argparse
import collections
import contextlib
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import cpu_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if os.environ.get("NUMLSTM_CACHE") != "0":
        sys.exit("run with NUMLSTM_CACHE=0: a warm cache would load the kernels instead of compiling them")

    start_cpu = time.process_time()
    import numpy as np
    import xarray as xr
    from numba.core import event

    import numlstm

    stages = {"import": time.process_time() - start_cpu}
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 12, 2)).astype(np.float32)
    y = X[:, -1, 0]
    days = np.arange("2000-01-01", "2000-07-01", dtype="datetime64[D]")
    ds = xr.Dataset({"y": (("station", "time"), np.sin(np.arange(days.size) / 7.0 + np.arange(3)[:, None]))},
                    coords={"time": days, "station": ["a", "b", "c"]})
    with contextlib.ExitStack() as stack:
        recorder = stack.enter_context(event.install_recorder("numba:compile"))
        t = time.process_time()
        model = numlstm.LSTMRegressor(units=8, epochs=2, random_state=0).fit(X, y)
        stages["LSTMRegressor fit"] = time.process_time() - t
        t = time.process_time()
        model.predict(X)
        stages["LSTMRegressor predict"] = time.process_time() - t
        t = time.process_time()
        fc = numlstm.Forecaster(lookback=14, horizon=3, units=8, epochs=2, random_state=0).fit(ds, "y")
        stages["Forecaster fit"] = time.process_time() - t
        t = time.process_time()
        fc.predict(ds)
        stages["Forecaster predict"] = time.process_time() - t

    stack_, exclusive, inclusive, count = [], collections.Counter(), collections.Counter(), collections.Counter()
    ours = set()
    for timestamp, ev in recorder.buffer:
        dispatcher = ev.data["dispatcher"]
        func = getattr(dispatcher, "py_func", None)
        name = getattr(func, "__qualname__", str(dispatcher))
        if str(getattr(func, "__module__", "")).startswith("numlstm"):
            ours.add(name)
        if ev.is_start:
            stack_.append([name, timestamp, 0.0])
        else:
            name, began, children = stack_.pop()
            spent = timestamp - began
            exclusive[name] += spent - children
            inclusive[name] += spent
            count[name] += 1
            if stack_:
                stack_[-1][2] += spent

    numlstm_compiles = sum(count[name] for name in ours)
    print(f"# compile profile: numlstm {numlstm.__version__}, numba {__import__('numba').__version__}, "
          f"{cpu_model()}, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '-')}")
    print("| stage | CPU s |")
    print("|---|---:|")
    for name, seconds in stages.items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"| total | {sum(stages.values()):.1f} |")
    print(f"\nnumlstm specialisations compiled: {numlstm_compiles}; all compile events (Numba's own "
          f"helpers included): {sum(count.values())}\n")
    print("| function | compiles | exclusive s | inclusive s |")
    print("|---|---:|---:|---:|")
    for name, seconds in exclusive.most_common(args.top):
        print(f"| {name} | {count[name]} | {seconds:.2f} | {inclusive[name]:.2f} |")
    print(f"| (all {len(exclusive)} functions) | {sum(count.values())} | {sum(exclusive.values()):.2f} | |")


if __name__ == "__main__":
    main()
