"""The fit loops as users call them: ``LSTMRegressor.fit`` and ``numlstm.keras``'s
``Sequential.fit`` per epoch (fit(epochs=20) / 20, warm, median of 9 fits), the
cost of everything around the compiled epoch included.

Run it from two checkouts one after the other (``PYTHONPATH=<checkout> python
benchmarks/bench_fit_loops.py``), alternating, to compare the epoch loop before
and after a change; the figures are only comparable within one machine and hour.
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import provenance  # noqa: E402

import numlstm  # noqa: E402
from numlstm import keras  # noqa: E402


def per_epoch(fit, warm, epochs=20, repeats=9):
    warm()  # compile or load the kernels, first-call work
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        times.append((time.perf_counter() - start) / epochs)
    return 1e3 * float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    out = {"provenance": provenance(os.path.dirname(os.path.dirname(numlstm.__file__)))}
    for B, T, I, H in [(32, 30, 1, 50), (256, 60, 8, 64)]:
        X = rng.standard_normal((B, T, I)).astype(np.float32)
        y = rng.standard_normal(B).astype(np.float32)
        estimator = numlstm.LSTMRegressor(units=H, epochs=20, batch_size=B, random_state=0)
        out[f"estimator fit/epoch {B},{T},{I},{H} ms"] = round(per_epoch(
            lambda: estimator.fit(X, y), lambda: estimator.fit(X, y)), 3)
        model = keras.Sequential([keras.layers.LSTM(H, input_shape=(T, I)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        out[f"keras fit/epoch {B},{T},{I},{H} ms"] = round(per_epoch(
            lambda: model.fit(X, y, epochs=20, batch_size=B, verbose=0),
            lambda: model.fit(X, y, epochs=2, batch_size=B, verbose=0)), 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
