"""Threads, warm-up, on-disk caching and the environment report."""

import numlstm

SNIPPET = (
    "import numpy as np, numlstm;"
    "h, _ = numlstm.lstm_forward(np.ones((1, 2, 1)), np.full((1, 4), 0.5), np.zeros((1, 4)), np.zeros(4));"
    "print(repr(float(h[0, -1, 0])))"
)


def test_warmup_returns_seconds_and_compiles_or_loads_the_kernels():
    from numlstm import _cache

    assert numlstm.warmup(("float64",), cells=("lstm",), forecaster=False) >= 0
    trained = {str(signature[0]) for d in _cache.dispatchers() if d.py_func.__qualname__ == "_train_epoch_lstm"
               for signature in d.signatures}
    assert "array(float64, 1d, C)" in trained
    stats = numlstm.compile_stats()
    assert stats["functions"] >= 20 and stats["compiled"] + stats["loaded"] >= 1


def test_info_reports_threads_and_cuda():
    details = numlstm.info()
    assert details["num_threads"] == numlstm.get_num_threads()
    assert details["threading_layer"] in {"omp", "tbb", "workqueue"}
    assert details["cuda"].startswith(("usable", "not usable"))
    assert details["versions"]["numba"] != "not installed"
