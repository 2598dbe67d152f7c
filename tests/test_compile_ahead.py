"""Compiling ahead: a cold epoch loop's backward half, compiled by a helper process into the cache.

The helper is only useful if what it compiles is exactly what the epoch loop
then looks up: the same functions with the same argument types. The tests run
real processes with the cache in a temporary directory and read, per
function, what a fit compiled and what it loaded. (Not at ``NUMBA_OPT=0``,
which would be faster: there Numba leaves pointers in some functions' code
and cannot cache them.)
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import numlstm
from numlstm.core import ahead, cpu_engine

ROOT = pathlib.Path(numlstm.__file__).resolve().parent.parent

HELPER = """
import json, numba
from numlstm.core import ahead, cpu_engine
loop = numba.njit(lambda x: x + 1)  # stands for an epoch loop not compiled yet
with ahead.helper_if_compiling(loop, ("numlstm.core.cpu_engine", "compile_ahead"),
                               cpu_engine._COMPILED_AHEAD[{cell!r}], {cell!r}, "float32"):
    loop(1)  # Numba compiles it: the helper starts
print(json.dumps({{"pids": [h.pid for h, _ in ahead._helpers.values()]}}))
"""

FIT = """
import json
import numpy as np, numlstm
from numlstm import _cache
from numlstm.core import ahead
X = np.random.default_rng(0).standard_normal((16, 5, 2)).astype(np.float32)
numlstm.LSTMRegressor(units=4, epochs=1, cell={cell!r}, random_state=0).fit(X, X[:, -1, 0]).predict(X)
loaded = sorted(d.py_func.__qualname__ for d in _cache.dispatchers() for _ in range(sum(d._cache_hits.values())))
print(json.dumps({{"loaded": loaded, "stats": numlstm.compile_stats(),
                  "pids": [h.pid for h, _ in ahead._helpers.values()]}}))
"""


def _run(code, cache_dir, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(cache_dir), PYTHONPATH=str(ROOT), **env_extra)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(ahead._cores() < 2, reason="the helper runs only where there are two cores")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_what_the_helper_compiles_is_what_the_epoch_loop_then_loads(tmp_path, cell):
    # One process, as in use: a helper starts, and the fit that follows at once loads the
    # helper's functions from the cache, waiting for each one the helper has not written yet
    # rather than compiling it beside the helper.
    result = _run(HELPER.format(cell=cell) + FIT.format(cell=cell), tmp_path)
    assert len(result["pids"]) == 1
    # the parallel backward pass, its rows' loop, the threads' gradients added up (one per
    # array rank), the gradient norm, the optimizer update and prediction's forward pass
    want = ["_backward_chunks", "apply_update", "backward_rows", "global_norm", f"_network_forward_{cell}",
            "sum_parts", "sum_parts"]
    assert [name for name in result["loaded"] if name in set(want)] == sorted(want), result["loaded"]
    assert result["stats"]["compiled"] > 0  # the forward half and the loop itself: compiled here
    # a later process loads the epoch loop from the cache: Numba compiles nothing, no helper starts
    later = _run(FIT.format(cell=cell), tmp_path)
    assert later["pids"] == [] and later["stats"]["compiled"] == 0, later


def test_a_helper_still_compiling_at_exit_is_ended(tmp_path):
    if ahead._cores() < 2:
        pytest.skip("the helper runs only where there are two cores")
    helper = _run(HELPER.format(cell="lstm"), tmp_path)
    (pid,) = helper["pids"]
    with pytest.raises(ProcessLookupError):  # ended and reaped when its parent exited
        os.kill(pid, 0)


@pytest.mark.parametrize("case", ["the call compiles nothing", "compiled already", "turned off", "cache off"])
def test_no_helper_where_none_would_help(monkeypatch, case):
    import numba

    monkeypatch.setattr(ahead, "_started", set())
    monkeypatch.setattr(ahead, "_helpers", {})
    loop = numba.njit(lambda x: x + 1)
    if case == "compiled already":
        loop(1)
    if case == "turned off":
        monkeypatch.setenv("NUMLSTM_COMPILE_AHEAD", "0")
    if case == "cache off":
        monkeypatch.setattr(ahead._cache, "enabled", lambda: False)
    with ahead.helper_if_compiling(loop, ("numlstm.core.cpu_engine", "compile_ahead"),
                                   cpu_engine._COMPILED_AHEAD["lstm"], "lstm", "float32"):
        if case != "the call compiles nothing":
            loop(2.5)  # a compile of this dispatcher (a new signature)
    assert ahead._helpers == {}
    assert ("lstm", "float32") in ahead._started  # asked once per process, cell and dtype


def test_no_helper_where_the_cache_cannot_be_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # the cache directory would have to be inside a file
    result = _run(HELPER.format(cell="lstm"), blocker / "cache")
    assert result["pids"] == []


def test_the_helper_imports_its_parents_numlstm_not_one_in_the_working_directory(tmp_path):
    # A user's script run from a folder that holds another "numlstm" (a clone, a decoy): the
    # script imports the installed one; so must its helper.
    work = tmp_path / "work"
    (work / "numlstm").mkdir(parents=True)
    (work / "numlstm" / "__init__.py").write_text("raise ImportError('the decoy in the working directory')\n")
    script = tmp_path / "script.py"
    wait = "[h.wait(timeout=900) for h, _ in ahead._helpers.values()]\n"
    script.write_text(HELPER.format(cell="lstm").replace('print(json.dumps({"pids"', wait + 'print(json.dumps({"pids"')
                      + 'print(json.dumps({"codes": [h.returncode for h, _ in ahead._helpers.values()]}))\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=work, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"codes": [0]}
