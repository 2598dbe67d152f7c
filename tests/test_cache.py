"""The on-disk kernel cache: on by default, fingerprinted, safe under faults and concurrency.

Each test runs fresh Python processes on a small kernel (the dropout mask),
with the cache in a temporary directory, and reads what they compiled and
loaded from :func:`numlstm.compile_stats`.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

import numlstm
from numlstm import _cache
from numlstm.kernels import dropout

ROOT = pathlib.Path(numlstm.__file__).resolve().parent.parent

SNIPPET = """
import json, warnings
warnings.simplefilter("always")
import numpy as np, numlstm
from numlstm.kernels import dropout
out = [dropout.mask(3, 5, 7, 1, 0, 0.5, dtype=np.dtype(d)).tolist() for d in {dtypes!r}]
print(json.dumps({{"out": out, "stats": numlstm.compile_stats(), "dir": numlstm.cache_info()["directory"]}}))
"""


def run(cache_dir, dtypes=("float64",), package_root=ROOT, extra_env=None, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(cache_dir), PYTHONPATH=str(package_root), **(extra_env or {}))
    proc = subprocess.run([sys.executable, "-c", SNIPPET.format(dtypes=list(dtypes))], env=env, cwd=package_root,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    result["stderr"] = proc.stderr
    return result


def expected_mask(dtype=np.float64):
    return dropout.mask(3, 5, 7, 1, 0, 0.5, dtype=dtype).tolist()


def test_second_process_loads_everything_and_compiles_nothing(tmp_path):
    first = run(tmp_path)
    assert first["stats"]["compiled"] >= 1 and first["stats"]["loaded"] == 0
    assert pathlib.Path(first["dir"]).parent == tmp_path
    assert list(pathlib.Path(first["dir"]).rglob("*.nbc")), "nothing was written"
    second = run(tmp_path)
    assert second["stats"]["compiled"] == 0 and second["stats"]["loaded"] == first["stats"]["compiled"]
    assert first["out"] == second["out"] == [expected_mask()]
    assert "CacheWarning" not in first["stderr"] + second["stderr"]


def test_caching_off_writes_nothing(tmp_path):
    off = run(tmp_path, extra_env={"NUMLSTM_CACHE": "0"})
    assert off["out"] == [expected_mask()]
    assert not list(tmp_path.rglob("*.nbc")) and not list(tmp_path.rglob("*.nbi"))
    again = run(tmp_path, extra_env={"NUMLSTM_CACHE": "0"})
    assert again["stats"]["loaded"] == 0 and again["stats"]["compiled"] >= 1


def test_edited_kernel_source_in_a_copied_package_misses_the_cache(tmp_path):
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "numlstm", package / "numlstm", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    original = run(cache, package_root=package)
    assert original["out"] == [expected_mask()]
    assert run(cache, package_root=package)["stats"]["compiled"] == 0

    # A file the kernel does not live in (the gate math, used by the layers): the fingerprint changes.
    gates = package / "numlstm" / "kernels" / "gates.py"
    gates.write_text(gates.read_text() + "\n# an edit\n")
    after_other = run(cache, package_root=package)
    assert after_other["stats"]["loaded"] == 0 and after_other["stats"]["compiled"] >= 1
    assert after_other["dir"] != original["dir"]

    # The kernel's own callee changes what it computes: the new code runs, not the cached one.
    source = package / "numlstm" / "kernels" / "dropout.py"
    text = source.read_text()
    assert "0x7FEB352D" in text
    source.write_text(text.replace("0x7FEB352D", "0x7FEB352F"))
    edited = run(cache, package_root=package)
    assert edited["stats"]["loaded"] == 0
    assert edited["out"] != original["out"]


EDIT_AFTER_IMPORT = """
import json, pathlib, warnings
warnings.simplefilter("always")
import numpy as np, numlstm
from numlstm.kernels import dropout
source = pathlib.Path(dropout.__file__)
source.write_text(source.read_text().replace("0x7FEB352D", "0x7FEB352F"))  # as an upgrade under a running kernel
out = [dropout.mask(3, 5, 7, 1, 0, 0.5, dtype=np.dtype("float64")).tolist()]
print(json.dumps({"out": out, "stats": numlstm.compile_stats()}))
"""


def test_sources_changed_after_import_neither_read_nor_write_the_cache(tmp_path):
    # The process runs the code it imported; the disk now holds other code. Were its entries
    # filed under the fingerprint of the disk's sources, the next process would run them.
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "numlstm", package / "numlstm", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(cache), PYTHONPATH=str(package))
    proc = subprocess.run([sys.executable, "-c", EDIT_AFTER_IMPORT], env=env, cwd=package, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    old_code = json.loads(proc.stdout.strip().splitlines()[-1])
    assert old_code["out"] == [expected_mask()]  # the code in memory ran
    assert proc.stderr.count("CacheWarning") == 1 and "kernels/dropout.py" in proc.stderr, proc.stderr
    assert "Restart Python" in proc.stderr
    assert not list(cache.rglob("*.nbc")), "entries of the old code were written"

    new_code = run(cache, package_root=package)
    assert new_code["stats"]["loaded"] == 0 and new_code["stats"]["compiled"] >= 1
    assert new_code["out"] != old_code["out"]
    assert "CacheWarning" not in new_code["stderr"]


def test_unwritable_cache_location_compiles_in_memory_and_warns_once(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run(blocker / "cache", dtypes=("float64", "float32"))
    assert result["out"] == [expected_mask(), expected_mask(np.float32)]
    assert result["stderr"].count("CacheWarning") == 1, result["stderr"]
    assert "compiled in memory" in result["stderr"]


def test_a_function_numba_cannot_cache_gets_numbas_warning_not_a_broken_cache(tmp_path):
    # At NUMBA_OPT=0 Numba leaves pointers in sum_parts' code, so it cannot cache it; that is
    # Numba's warning to give, and the cache is not turned off (it used to fail with an
    # AttributeError in numlstm's locator and report the whole cache unwritable).
    code = ("import json, warnings; warnings.simplefilter('always')\n"
            "import numpy as np, numlstm\nfrom numlstm.kernels import cpu, dropout\n"
            "cpu.sum_parts(np.zeros((2, 3)), np.zeros(3))\n"
            "dropout.mask(3, 5, 7, 1, 0, 0.5, dtype=np.dtype('float64'))\n"
            "print(json.dumps(numlstm.compile_stats()))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT), NUMBA_OPT="0")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr + runs[1].stderr
    assert 'Cannot cache compiled function "sum_parts"' in runs[0].stderr
    assert "CacheWarning" not in runs[0].stderr + runs[1].stderr
    second = json.loads(runs[1].stdout.strip().splitlines()[-1])
    assert second["loaded"] >= 1  # the dropout mask, cached as usual


def test_corrupted_cache_files_are_recompiled_warned_about_and_repaired(tmp_path):
    run(tmp_path)
    files = list(tmp_path.rglob("*.nbc")) + list(tmp_path.rglob("*.nbi"))
    assert files
    for i, path in enumerate(files):
        path.write_bytes(b"\x80\x04garbage" if i % 2 else path.read_bytes()[: len(path.read_bytes()) // 3])
    damaged = run(tmp_path)
    assert damaged["out"] == [expected_mask()]
    assert damaged["stats"]["compiled"] >= 1
    assert damaged["stderr"].count("CacheWarning") == 1, damaged["stderr"]
    repaired = run(tmp_path)
    assert repaired["stats"]["compiled"] == 0 and repaired["out"] == [expected_mask()]
    assert "CacheWarning" not in repaired["stderr"]


CALLER = """
import numpy as np
import numlstm
from numlstm.core.cpu_engine import batch_loss_grad
from numlstm.core.network import Network
rng = np.random.default_rng(0)
net = Network(3, (4,), 2, np.float64).initialize(rng)
X, Y, M = rng.standard_normal((5, 6, 3)), rng.standard_normal((5, 2)), np.ones((5, 2))
if {callees_first}:  # the parallel layer kernels alone, as a first fit would leave them in the cache
    W, U, b = net.layer(net.params, 0)
    h, _ = numlstm.lstm_forward(X, W, U, b)
    numlstm.lstm_backward(X, W, U, b, np.ones_like(h))
else:
    print(repr(batch_loss_grad(net.params, np.zeros_like(net.params), net.table, net.head, X, Y, M, 0,
                               np.zeros(1), 2)))
"""


def test_a_caller_compiled_over_cached_prange_kernels_loads_in_a_new_process(tmp_path):
    # First a process caches the parallel (prange) layer kernels; a second loads them and compiles,
    # and caches, a function calling them; a third loads that function first. Numba leaves a loaded
    # function's reload hooks (starting the parallel backend) off its library, so the caller's entry
    # had none and the third process segfaulted (numba/numba#8578 is the same mechanism).
    env = dict(os.environ)
    env.update(NUMLSTM_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    runs = [subprocess.run([sys.executable, "-c", CALLER.format(callees_first=first)], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=600) for first in (True, False, False)]
    for run in runs:
        assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert runs[1].stdout == runs[2].stdout and float(runs[2].stdout) > 0


def test_four_processes_starting_cold_at_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    orders = [("float64", "float32"), ("float32", "float64")] * 2
    procs = [subprocess.Popen([sys.executable, "-c", SNIPPET.format(dtypes=list(order))], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for order in orders]
    for order, proc in zip(orders, procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "CacheWarning" not in err, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["out"] == [expected_mask(np.dtype(d)) for d in order]
    assert not list(tmp_path.rglob("*.tmp.*")), "a temporary file was left behind"
    after = run(tmp_path, dtypes=("float32", "float64"))
    assert after["out"] == [expected_mask(np.float32), expected_mask()]
    assert after["stats"]["compiled"] == 0


def test_cuda_simulator_and_cpu_never_share_a_directory(tmp_path):
    cpu = run(tmp_path)
    sim = run(tmp_path, extra_env={"NUMBA_ENABLE_CUDASIM": "1"})
    assert cpu["dir"] != sim["dir"]
    assert sim["stats"]["loaded"] == 0
    assert cpu["out"] == sim["out"]


def test_other_settings_change_the_fingerprint(monkeypatch):
    before = _cache._compute_fingerprint()
    monkeypatch.setenv("NUMBA_OPT", "0")
    assert _cache._compute_fingerprint() != before
    names = dict(_cache.fingerprint_parts())
    assert {"numba", "llvmlite", "numpy", "python", "cpu", "cpu features"} <= set(names)
    assert "source kernels/cpu.py" in names and "source core/cpu_engine.py" in names
    assert "source forecast/timeaxis.py" not in names  # no compiled code there
    assert "source forecast/cycles.py" not in names and "source forecast/frequency.py" not in names


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMLSTM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert _cache.user_cache_root() == tmp_path / "xdg" / "numlstm"
    monkeypatch.setenv("NUMLSTM_CACHE_DIR", str(tmp_path / "mine"))
    assert _cache.user_cache_root() == tmp_path / "mine"
    assert not str(_cache.user_cache_root()).startswith(str(pathlib.Path(numlstm.__file__).parent))
    for value, on in (("0", False), ("off", False), ("no", False), ("1", True), ("", True)):
        monkeypatch.setenv("NUMLSTM_CACHE", value)
        assert _cache.enabled() is on


def test_old_fingerprints_are_pruned_and_recent_ones_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMLSTM_CACHE_DIR", str(tmp_path))
    now = time.time()
    ages_days = [0, 1, 2, 40, 50, 60, 70]
    for i, age in enumerate(ages_days):
        path = tmp_path / f"{i:020d}"
        path.mkdir()
        stamp = path / "last-used"
        stamp.write_text("")
        os.utime(stamp, (now - age * 86400, now - age * 86400))
    (tmp_path / "not-a-fingerprint").mkdir()
    removed = {p.name for p in _cache.prune(now=now)}
    # the four newest stay whatever their age; of the rest, only those unused for a month go
    assert removed == {f"{i:020d}" for i in (4, 5, 6)}
    assert (tmp_path / "not-a-fingerprint").exists()


def test_cache_command_reports_clears_and_warms(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMLSTM_", "NUMBA_CACHE"))}
    env.update(NUMLSTM_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    run(tmp_path)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "numlstm.cli", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=600)

    info = cli("cache", "info")
    assert info.returncode == 0, info.stderr
    assert f"root         {tmp_path}" in info.stdout
    assert "fingerprint  " + _cache._compute_fingerprint() in info.stdout
    assert "entries      0" not in info.stdout
    assert "cache            on, " in cli("info").stdout
    cleared = cli("cache", "clear")
    assert cleared.returncode == 0 and "freed" in cleared.stdout
    assert not list(tmp_path.rglob("*.nbc"))
    off = subprocess.run([sys.executable, "-m", "numlstm.cli", "cache", "warm"], env=dict(env, NUMLSTM_CACHE="0"),
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert off.returncode == 2 and "caching is off" in off.stderr
