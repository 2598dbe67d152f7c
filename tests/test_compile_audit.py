"""What the first fit and predict compile: a recorded set of specialisations, none accidental.

A fresh process with caching off fits and predicts an ``LSTMRegressor`` and a
``Forecaster`` (float32, the defaults) and lists every specialisation of
every numlstm CPU function it compiled. Deterministic, not timed: a change
that adds a specialisation (a literal int or a read-only global array passed
into jitted code, an ``'A'``-layout slice or a read-only user array reaching a
kernel) or a new compiled entry point changes the count, and the test says
which function gained one. If the change is meant, update ``EXPECTED``.
"""

import collections
import json
import os
import pathlib
import subprocess
import sys

import numlstm

ROOT = pathlib.Path(numlstm.__file__).resolve().parent.parent

WORKLOAD = r"""
import json, warnings
import numpy as np, xarray as xr, numlstm
from numba.core import types
from numlstm import _cache
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 12, 2)).astype(np.float32)
X.flags.writeable = False  # a read-only user array must not reach a kernel as one
y = X[:, -1, 0]
numlstm.LSTMRegressor(units=8, epochs=2, random_state=0).fit(X, y).predict(X[:, 2:, :])
days = np.arange("2000-01-01", "2000-07-01", dtype="datetime64[D]")
ds = xr.Dataset({"y": (("station", "time"), np.sin(np.arange(days.size) / 7.0 + np.arange(3)[:, None]))},
                coords={"time": days, "station": ["a", "b", "c"]})
numlstm.Forecaster(lookback=14, horizon=3, units=8, epochs=2, random_state=0).fit(ds, "y").predict(ds)
found = []
for dispatcher in _cache.dispatchers():
    for signature in dispatcher.signatures:
        bad = [str(t) for t in signature
               if isinstance(t, (types.Literal, types.Omitted))
               or (isinstance(t, types.Array) and not t.mutable)
               or (isinstance(t, types.Array) and t.layout != "C" and dispatcher.py_func.__qualname__ != "assign")]
        found.append([dispatcher.py_func.__qualname__, bad])
print(json.dumps({"found": found, "stats": numlstm.compile_stats()}))
"""

# Specialisations per function compiled by the workload above, cold (recorded on this commit).
EXPECTED = {
    '_add_scaled': 1,
    '_backward_chunks': 1,
    '_cell_backward_row': 1,
    '_cell_forward_row': 1,
    '_concat_directions': 1,
    '_directions': 1,
    '_forward_chunks': 1,
    '_head_views': 1,
    '_mask_or_none': 1,
    '_network_forward_lstm': 1,
    '_scaled': 1,
    '_top_features': 1,
    '_train_epoch_lstm': 1,
    '_views': 1,
    'add_gram': 1,
    'add_masked_carry': 1,
    'add_tile': 1,
    'apply_update': 1,
    'assign': 4,  # (one fewer since the weight gradients' transposes became steps_T)
    'backward_rows': 1,
    'chunk_count': 1,
    'error_shifts': 1,  # the member's move to the median of its errors (the default since 2026-12-08)
    'fill': 1,
    'forecasts': 1,  # the smoothing member's (on by default since 2026-12-07), and grid_sse below
    'forward_rows': 1,
    'global_norm': 1,
    'grid_sse': 1,
    'loss_and_grad_impl': 1,
    'masked_state': 1,
    'reverse_time': 2,
    'scratch_states': 1,
    'steps_T': 1,
    'sum_parts': 2,
    'tile_rows': 1,
}

# (kernels.cpu.assign, the strided-copy helper, takes views of any layout by design: its 'A'
# arguments are allowed in the workload's check.)


def test_first_fit_and_predict_compile_the_recorded_specialisations_and_nothing_accidental():
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMLSTM_")}
    # Which specialisations get compiled does not depend on LLVM's optimisation level; at 0 the
    # cold compile takes a fraction of the time.
    env.update(NUMLSTM_CACHE="0", PYTHONPATH=str(ROOT), NUMBA_OPT="0")
    proc = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    accidental = [(name, bad) for name, bad in result["found"] if bad]
    assert not accidental, f"accidental specialisations (literal, read-only or 'A' argument types): {accidental}"
    counts = collections.Counter(name for name, _ in result["found"])
    assert dict(counts) == EXPECTED, {name: (counts.get(name, 0), EXPECTED.get(name, 0))
                                      for name in set(counts) | set(EXPECTED)
                                      if counts.get(name, 0) != EXPECTED.get(name, 0)}
    assert result["stats"]["compiled"] == sum(EXPECTED.values()) and result["stats"]["loaded"] == 0
