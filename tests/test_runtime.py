"""Threads, warm-up, on-disk caching and the environment report."""

import os
import subprocess
import sys

import numpy as np
import pytest

import numlstm

SNIPPET = (
    "import numpy as np, numlstm;"
    "h, _ = numlstm.lstm_forward(np.ones((1, 2, 1)), np.full((1, 4), 0.5), np.zeros((1, 4)), np.zeros(4));"
    "print(repr(float(h[0, -1, 0])))"
)


def test_cache_is_opt_in_and_written_where_numba_is_told(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "off"))
    env.pop("NUMLSTM_CACHE", None)
    off = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
    assert not (tmp_path / "off").exists() or not list((tmp_path / "off").rglob("*.nbi"))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "on"), NUMLSTM_CACHE="1")
    first = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
    indexes = list((tmp_path / "on").rglob("*.nbi"))
    assert any("cpu" in p.name for p in indexes), indexes
    second = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True)
    assert off.stdout == first.stdout == second.stdout
    i = j = 1 / (1 + np.exp(-0.5))
    c = i * np.tanh(0.5)
    c = j * c + i * np.tanh(0.5)
    assert float(first.stdout) == pytest.approx(j * np.tanh(c), rel=1e-12)


def test_warmup_returns_seconds():
    assert numlstm.warmup(("float64",)) >= 0


def test_info_reports_threads_and_cuda():
    details = numlstm.info()
    assert details["num_threads"] == numlstm.get_num_threads()
    assert details["threading_layer"] in {"omp", "tbb", "workqueue"}
    assert details["cuda"].startswith(("usable", "not usable"))
    assert details["versions"]["numba"] != "not installed"
