"""Compiling ahead: while a cold process compiles its epoch loop, a helper process compiles more.

A process whose cache holds no epoch loop yet compiles one, about 20 s on a
2-core machine, and Numba compiles on one core. The loop's backward pass and
prediction's forward pass are separate compiled functions, together about a
third of the work, which the loop needs only after it has compiled its own
forward pass. So while this process compiles that, a helper process compiles
them into the on-disk cache on the second core, and when this process needs
them it loads them from there (the work: ``cpu_engine.compile_ahead``),
waiting, through the cache's miss hook (:func:`numlstm._cache.on_miss`), for
any the helper has not written yet rather than compiling it beside the
helper. Nothing else changes: the code is the same, and if the helper is
late (:data:`WAIT`), fails or is not started, this process compiles them
itself, as before.

The helper is started only when the on-disk cache is on and writable, at
least two cores are available, ``NUMLSTM_COMPILE_AHEAD`` is not ``0``, and
Numba starts compiling the epoch loop, which it does only after a miss in
the cache (so a process that loads the loop from the cache never starts
one). It is ended when this process exits normally.
"""

import atexit
import contextlib
import os
import subprocess
import sys
import threading
import time

import numpy as np

from numlstm import _cache

OFF = ("0", "false", "no", "off")

WAIT = 20.0  # seconds: the longest a process waits for its helper rather than compiling itself
POLL = 0.02  # seconds between looks at the cache while waiting

_lock = threading.Lock()
_started = set()  # (cell, dtype) whose first epoch call this process has made
_helpers = {}  # (cell, dtype) -> (the helper process, the (module, qualname) of each function it compiles)


def enabled():
    """Whether a cold epoch loop may start a helper (``NUMLSTM_COMPILE_AHEAD``, on by default)."""
    return os.environ.get("NUMLSTM_COMPILE_AHEAD", "1").strip().lower() not in OFF and _cache.enabled()


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def helper_if_compiling(dispatcher, work, names, cell, dtype):
    """Around the first call of an epoch loop ``dispatcher`` for ``cell`` and ``dtype``: if the
    call compiles the loop (Numba's compile event for it, which comes only after a miss in the
    cache), start a helper process running ``work(cell, dtype)``; ``work`` is ``(module,
    function)``, names of a function that compiles (or loads) into the cache what the loop
    will need later, and ``names`` the ``(module, qualified name)`` of each function it
    compiles (what this process then waits for rather than compiles)."""
    key = (cell, np.dtype(dtype).name)
    with _lock:
        first = key not in _started
        _started.add(key)
    if not first or dispatcher.signatures or not enabled() or _cores() < 2:
        yield
        return
    from numba.core import event

    class OnCompile(event.Listener):
        def on_start(self, ev):
            if ev.data.get("dispatcher") is dispatcher:
                _start(work, names, *key)

        def on_end(self, ev):
            pass

    listener = OnCompile()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)


def _start(work, names, cell, dtype):
    if getattr(sys, "frozen", False) or not sys.executable or not _cache.writable():
        return  # a frozen app's executable is the app itself; an unwritable cache would take nothing
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMLSTM_COMPILE_AHEAD="0", NUMLSTM_EXPECT_FINGERPRINT=_cache.fingerprint())
    # The helper imports this numlstm: its folder replaces the working directory at the head of
    # sys.path (a "numlstm" folder there would otherwise be imported instead).
    code = "import sys; sys.path[0] = sys.argv[1]; from numlstm.core.ahead import _main; _main(sys.argv[2:])"
    try:
        helper = subprocess.Popen([sys.executable, "-c", code, package_parent, *work, cell, dtype], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, ValueError, TypeError):  # no process can be started: this one compiles all, as before
        return
    if not _helpers:
        atexit.register(_end_helpers)
        _cache.on_miss(_on_miss)
    _helpers[(cell, dtype)] = (helper, names)


def _dtype_of(sig):
    return next((str(t.dtype) for t in sig if hasattr(t, "dtype") and hasattr(t, "ndim")), None)


def _on_miss(module, qualname, sig, load):
    """The cache's miss hook: a function a running helper compiles, for the helper's dtype, is
    waited for (polling the cache, at most :data:`WAIT` seconds) rather than compiled beside it.
    Not once this process has found a part of the cache unusable (its warning issued): the
    helper's writes may be failing too."""
    for (_, dtype), (helper, names) in list(_helpers.items()):
        if (module, qualname) not in names or _dtype_of(sig) != dtype or _cache.warned():
            continue
        deadline = time.monotonic() + WAIT
        while helper.poll() is None and time.monotonic() < deadline and not _cache.warned():
            time.sleep(POLL)
            result = load()
            if result is not None:
                return result
        if helper.poll() is not None:  # done: one last look
            result = load()
            if result is not None:
                return result
    return None  # compile it here


def _end_helpers():
    """At exit: a helper still compiling is ended (the cache writes each file whole, under a
    temporary name, so an ended helper leaves nothing half-written)."""
    for helper, _ in _helpers.values():
        if helper.poll() is None:
            helper.terminate()
            try:
                helper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                helper.kill()


def _main(argv):
    """The helper: ``module function cell dtype``; runs only if it computes its parent's
    fingerprint (the same sources and settings), so that what it writes is what its parent
    will look for. The work is named, not imported here: it lives on a floor above."""
    if _cache.fingerprint() == os.environ.get("NUMLSTM_EXPECT_FINGERPRINT"):
        import importlib

        module, function, cell, dtype = argv[:4]
        getattr(importlib.import_module(module), function)(cell, dtype)
