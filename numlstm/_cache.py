"""The on-disk cache of compiled kernels: on by default, fingerprinted, never fatal.

Numba's own ``cache=True`` keys an entry on the caller's source file alone, so
an edit to a kernel in another file loads stale machine code; it writes next
to the installed sources (site-packages); and two processes compiling two
signatures of one function at once can leave an index that points one
signature at the other's code. numlstm therefore gives every compiled function
a cache of its own (:class:`KernelCache`, attached by
:func:`numlstm.kernels._jit.njit`):

- it lives in ``NUMLSTM_CACHE_DIR``, else the user's cache directory
  (``$XDG_CACHE_HOME/numlstm``, ``~/.cache/numlstm``, ``~/Library/Caches/numlstm``
  or ``%LOCALAPPDATA%\\numlstm\\Cache``), never inside the installed package;
- under a fingerprint directory: a hash of every numlstm source file compiled
  code can depend on, the Python, Numba, llvmlite and NumPy versions,
  the CPU's name and features and the compile-relevant settings
  (``NUMBA_OPT``, the CUDA simulator, ...). Any change misses the cache (only
  CPU code is cached, so the CUDA target's own package, numba-cuda, is not part
  of it);
  fingerprints unused for a month, or beyond the newest few, are pruned;
- a process whose numlstm files changed on disk after it imported them (its
  code is not what the fingerprint hashes) neither reads nor writes the cache;
- data files are named by a hash of their key and carry the key inside, the
  index is rewritten under a lock and every file is written to a temporary
  name and renamed, so processes starting cold at once neither corrupt the
  cache nor load each other's half-written entries;
- an entry that cannot be read (corrupt, truncated, unreadable) is compiled
  again and rewritten; a cache that cannot be written (read-only, not
  creatable, full) is turned off for that function and the code compiled in
  memory. Either way one :class:`CacheWarning` is issued per process.

``NUMLSTM_CACHE=0`` (or ``false``/``no``/``off``) turns caching off. This module
is the ground floor: it imports nothing else from numlstm.
"""

import ast
import contextlib
import hashlib
import importlib.metadata
import os
import pathlib
import pickle
import re
import shutil
import sys
import threading
import time
import warnings

CACHE_ENV = "NUMLSTM_CACHE"
CACHE_DIR_ENV = "NUMLSTM_CACHE_DIR"
PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent

# Fingerprint directories kept: any used within KEEP_DAYS, and always the KEEP_NEWEST
# most recently used (several environments may share one user cache directory).
KEEP_DAYS = 30
KEEP_NEWEST = 4
# Entries written before layout 2 may lack their callees' reload hooks (see KernelCache._load):
# a new layout, a new fingerprint, and such entries are never read.
LAYOUT = 2
_STAMP = "last-used"  # a file in each fingerprint directory, touched when that fingerprint is chosen

# Settings that change the machine code Numba generates for the same source.
_SETTINGS = ("NUMBA_OPT", "NUMBA_ENABLE_CUDASIM", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_BOUNDSCHECK",
             "NUMBA_DEBUGINFO", "NUMBA_FASTMATH", "NUMBA_LOOP_VECTORIZE", "NUMBA_SLP_VECTORIZE",
             "NUMBA_ENABLE_AVX", "NUMBA_DISABLE_INTEL_SVML", "NUMBA_THREADING_LAYER", "NUMBA_DISABLE_JIT",
             # read by kernels.tile for its vector width even where it could not change Numba's features
             "NUMLSTM_VECTOR_WIDTH")


class CacheWarning(UserWarning):
    """The on-disk kernel cache could not be used; kernels are compiled in memory instead."""


def enabled():
    """Whether compiled kernels are cached on disk: yes unless ``NUMLSTM_CACHE`` is 0/false/no/off."""
    return os.environ.get(CACHE_ENV, "").strip().lower() not in {"0", "false", "no", "off"}


def user_cache_root():
    """The platform's per-user cache directory for numlstm (``NUMLSTM_CACHE_DIR`` wins)."""
    chosen = os.environ.get(CACHE_DIR_ENV, "").strip()
    if chosen:
        return pathlib.Path(chosen).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or pathlib.Path.home() / "AppData" / "Local"
        return pathlib.Path(base) / "numlstm" / "Cache"
    if sys.platform == "darwin":
        return pathlib.Path.home() / "Library" / "Caches" / "numlstm"
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (pathlib.Path(base) if base else pathlib.Path.home() / ".cache") / "numlstm"


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


_JIT_MARKERS = re.compile(rb"njit|register_jitable|overload|cuda\.jit|@jit\b")


def _top_level_imports(path, text):
    """numlstm modules a file imports at module level (where jitted code reads its globals)."""
    found = []
    for node in ast.parse(text, filename=str(path)).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name == "numlstm" or name.startswith("numlstm.")]


def _module_file(name):
    parts = name.split(".")[1:]
    candidate = PACKAGE_ROOT.joinpath(*parts)
    path = candidate.with_suffix(".py")
    return path if path.is_file() else None  # a package's __init__ holds no constants kernels read


def compiled_sources():
    """``(relative path, bytes)`` of every numlstm source file compiled code can depend on: the
    files with jitted functions and, transitively, the numlstm modules they import at module level
    (whose constants compiled code reads)."""
    pending = [path for path in sorted(PACKAGE_ROOT.rglob("*.py")) if _JIT_MARKERS.search(path.read_bytes())]
    seen = {}
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        text = seen[path] = path.read_bytes()
        for name in _top_level_imports(path, text):
            target = _module_file(name)
            if target is not None and target not in seen:
                pending.append(target)
    return sorted((path.relative_to(PACKAGE_ROOT).as_posix(), text) for path, text in seen.items())


def _cpu():
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # some platforms cannot report features
        features = ""
    return llvm.get_host_cpu_name(), features


def fingerprint_parts():
    """What the fingerprint hashes, as ``(name, value)`` pairs (sources by their own hash)."""
    import numba

    cpu_name, cpu_features = _cpu()
    parts = [("layout", LAYOUT),
             ("python", f"{sys.implementation.name} {sys.version} {sys.abiflags if hasattr(sys, 'abiflags') else ''}"),
             ("numba", numba.__version__), ("llvmlite", _version("llvmlite")), ("numpy", _version("numpy")),
             ("numlstm", _version("numlstm")),
             ("cpu", cpu_name), ("cpu features", cpu_features)]
    parts += [(name, os.environ.get(name, "")) for name in _SETTINGS]
    # what Numba gives LLVM, as adjusted by NUMLSTM_VECTOR_WIDTH (numlstm._vectors)
    parts += [("numba cpu features", str(numba.config.CPU_FEATURES))]
    parts += [(f"source {name}", hashlib.sha256(text).hexdigest()) for name, text in compiled_sources()]
    return parts


def _compute_fingerprint():
    digest = hashlib.sha256()
    for name, value in fingerprint_parts():
        digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()[:20]


def _source_stats(paths):
    """``{path: (mtime_ns, size)}`` of ``paths`` (None for one that is gone)."""
    stats = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            stats[path] = None
        else:
            stats[path] = (st.st_mtime_ns, st.st_size)
    return stats


# The package's files as this process imported them. Compiled code is the code in memory, but
# the fingerprint is hashed from the files on disk at the first compile: if they changed in
# between (an edit, a ``git checkout``, ``pip install -U`` under a running notebook), entries of
# the old code would be filed under the new code's fingerprint, and a later process would run
# them (a segfault when the layouts differ). Such a process neither reads nor writes the cache.
_SOURCES_AT_IMPORT = _source_stats(PACKAGE_ROOT.rglob("*.py"))


def changed_sources():
    """numlstm's source files that changed or went on disk since this process imported numlstm,
    as paths relative to the package; empty when none did. (A file added since can only be
    imported through an import added to a file that is here, which then changed.)"""
    now = _source_stats(_SOURCES_AT_IMPORT)
    return sorted(path.relative_to(PACKAGE_ROOT).as_posix() for path in now if now[path] != _SOURCES_AT_IMPORT[path])


class _State:
    """What this process decided about the cache, computed once (at the first compile)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.directory = None  # the fingerprint directory, once chosen
        self.fingerprint = None
        self.warned = False


_state = _State()


def fingerprint():
    """The fingerprint of this process's sources, versions, CPU and settings (a hex string)."""
    with _state.lock:
        if _state.fingerprint is None:
            _state.fingerprint = _compute_fingerprint()
        return _state.fingerprint


def directory():
    """This process's fingerprint directory (not created here)."""
    return user_cache_root() / fingerprint()


def warn_once(message, fix=None):
    """One :class:`CacheWarning` per process, however many kernels fail to cache."""
    with _state.lock:
        if _state.warned:
            return
        _state.warned = True
    fix = fix or f"Set {CACHE_DIR_ENV} to a writable directory, or {CACHE_ENV}=0 to silence this"
    warnings.warn(f"numlstm's kernel cache is not used: {message}. Kernels are compiled in memory instead, "
                  f"which is slower to start but correct. {fix}.", CacheWarning, stacklevel=3)


def _prepare_directory():
    """Create this process's fingerprint directory, mark it used and prune old ones (once)."""
    with _state.lock:
        if _state.directory is not None:
            return _state.directory
    path = directory()
    path.mkdir(parents=True, exist_ok=True)
    (path / _STAMP).write_text(f"{time.time()}\n")
    prune(keep={path.name})
    with _state.lock:
        _state.directory = path
    return path


def writable():
    """Whether this process's fingerprint directory can be created and written (never raises)."""
    try:
        path = _prepare_directory()
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except Exception:
        return False


def warned():
    """Whether this process has issued its :class:`CacheWarning` (a part of the cache is not used)."""
    return _state.warned


def _last_used(path):
    try:
        return (path / _STAMP).stat().st_mtime
    except OSError:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0


def fingerprint_dirs(root=None):
    """Fingerprint directories under the cache root, most recently used first."""
    root = user_cache_root() if root is None else root
    try:
        dirs = [p for p in root.iterdir() if p.is_dir() and len(p.name) == 20 and (p / _STAMP).exists()]
    except OSError:
        return []
    return sorted(dirs, key=_last_used, reverse=True)


def prune(keep=(), now=None):
    """Delete fingerprint directories unused for ``KEEP_DAYS`` beyond the ``KEEP_NEWEST`` newest."""
    now = time.time() if now is None else now
    removed = []
    for rank, path in enumerate(fingerprint_dirs()):
        if path.name in keep or rank < KEEP_NEWEST or now - _last_used(path) < KEEP_DAYS * 86400:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def clear():
    """Delete every fingerprint directory under the cache root; returns how many bytes were freed."""
    freed = 0
    for path in fingerprint_dirs():
        freed += _size(path)[0]
        shutil.rmtree(path, ignore_errors=True)
    with _state.lock:
        _state.directory = None
    return freed


def _size(path):
    total = count = 0
    for entry in path.rglob("*"):
        if entry.is_file():
            with contextlib.suppress(OSError):
                total += entry.stat().st_size
            count += entry.suffix == ".nbc"
    return total, count


def info():
    """The cache as a dict: on/off, location, fingerprint, size and entries (this fingerprint's and all)."""
    root = user_cache_root()
    here = directory()
    sizes = {path: _size(path) for path in fingerprint_dirs(root)}  # each directory walked once
    size, entries = sizes[here] if here in sizes else _size(here) if here.exists() else (0, 0)
    return {"enabled": enabled(), "root": str(root), "fingerprint": fingerprint(), "directory": str(here),
            "entries": entries, "bytes": size, "fingerprints": len(sizes),
            "total_bytes": sum(total for total, _ in sizes.values())}


# --- Numba's cache machinery, made safe ---------------------------------------------------------------

def _numba_caching():
    from numba.core import caching

    return caching


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock on ``path`` (a lock file) where the platform has ``fcntl``."""
    try:
        import fcntl
    except ImportError:  # Windows: os.replace still keeps every file whole
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_classes():
    caching = _numba_caching()

    class Locator(caching._CacheLocator):
        """Every numlstm function's entries under ``<fingerprint dir>/<module path>``."""

        def __init__(self, py_func, py_file):
            self._lineno = py_func.__code__.co_firstlineno
            self._py_file = py_file  # Numba names it in its warning about a function it cannot cache
            try:
                relative = pathlib.Path(py_file).resolve().relative_to(PACKAGE_ROOT)
            except ValueError:
                relative = pathlib.Path(pathlib.Path(py_file).name)
            self._cache_path = str(directory() / relative.with_suffix(""))

        def ensure_cache_path(self):
            _prepare_directory()
            super().ensure_cache_path()

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            # The fingerprint directory already names the sources; mtimes would only
            # make a copied or reinstalled but identical package miss.
            return fingerprint()

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            return cls(py_func, py_file)

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = [Locator]

    class CacheFile(caching.IndexDataCacheFile):
        """Data files named by their key's hash and holding the key; the index updated under a lock."""

        def save(self, key, data):
            name = self._data_name_for(key)
            self._save_data(name, (key, data))
            with _locked(self._index_path + ".lock"):
                try:
                    overloads = self._load_index()
                except Exception:  # a damaged index is rebuilt, not trusted
                    overloads = {}
                if overloads.get(key) != name:
                    overloads[key] = name
                    self._save_index(overloads)

        def load(self, key):
            name = self._load_index().get(key)
            if name is None:
                return None
            try:
                stored_key, data = self._load_data(name)
            except FileNotFoundError:
                return None
            return data if stored_key == key else None

        def _data_name_for(self, key):
            digest = hashlib.sha256(pickle.dumps(key, protocol=4)).hexdigest()[:16]
            return self._data_name_pattern.replace("{number:d}", digest)

    class KernelCache(caching.FunctionCache):
        """A function's cache in numlstm's directory; any failure means a miss, one warning, and no cache."""

        _impl_class = Impl

        def __init__(self, py_func):
            super().__init__(py_func)
            self._cache_file = CacheFile(cache_path=self._cache_path, filename_base=self._impl.filename_base,
                                         source_stamp=self._impl.locator.get_source_stamp())

        def _sources_changed(self):
            changed = changed_sources()
            if changed:
                self.disable()
                shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
                warn_once(f"numlstm's source files changed on disk after this process imported them ({shown}), "
                          "so the code it runs is not the code their fingerprint names",
                          fix="Restart Python to use the cache again")
            return bool(changed)

        def load_overload(self, sig, target_context):
            if self._sources_changed():
                return None
            result = self._load(sig, target_context)
            if result is None and _miss_hook is not None:  # another process may be compiling it
                result = _miss_hook(self._py_func.__module__, self._py_func.__qualname__, sig,
                                    lambda: self._load(sig, target_context))
            return result

        def _load(self, sig, target_context):
            try:
                result = super().load_overload(sig, target_context)
            except Exception as err:  # corrupt, truncated, unreadable, foreign: compile, then overwrite it
                warn_once(f"reading {self._cache_path} failed ({type(err).__name__}: {err})")
                return None
            if result is not None:
                # Numba runs a loaded function's reload hooks (for prange code: starting the
                # parallel backend) but leaves them off its library, so a function compiled
                # later that calls this one inherited none, and its cache entry, loaded first
                # in a new process, ran prange code with no backend started: a segfault.
                result.library._reload_init.update(result.reload_init)
            return result

        def save_overload(self, sig, data):
            if self._sources_changed():
                return
            try:
                super().save_overload(sig, data)
            except Exception as err:  # read-only, full, vanished
                self.disable()
                warn_once(f"writing {self._cache_path} failed ({type(err).__name__}: {err})")

    class LazyCache(caching._Cache):
        """Stands in for a :class:`KernelCache` until the first compile, so that importing numlstm
        neither hashes the sources nor touches the disk."""

        def __init__(self, py_func):
            self._py_func = py_func
            self._real = None
            self._enabled = True

        def _get(self):
            if self._real is None:
                self._real = KernelCache(self._py_func)
                if not self._enabled:
                    self._real.disable()
            return self._real

        @property
        def cache_path(self):
            return self._get().cache_path

        def load_overload(self, sig, target_context):
            try:
                real = self._get()
            except Exception as err:
                self._enabled = False
                warn_once(f"it could not be set up ({type(err).__name__}: {err})")
                return None
            return real.load_overload(sig, target_context) if self._enabled else None

        def save_overload(self, sig, data):
            if self._enabled and self._real is not None:
                self._real.save_overload(sig, data)

        def enable(self):
            self._enabled = True
            if self._real is not None:
                self._real.enable()

        def disable(self):
            self._enabled = False
            if self._real is not None:
                self._real.disable()

        def flush(self):
            self._get().flush()

    return LazyCache


_kernel_cache_class = None
_dispatchers = []  # every CPU function numlstm compiles, for compile_stats()
_miss_hook = None


def on_miss(hook):
    """Set ``hook(module, qualname, sig, load)``, called when a function's cache has no entry for
    ``sig`` (before compiling it): it may wait for another process that is compiling it
    into the cache, calling ``load()`` to look again, and returns what ``load()`` returned
    (or None to compile here). ``None`` removes it. (Set by :mod:`numlstm.core.ahead`.)"""
    global _miss_hook
    _miss_hook = hook


def compile_stats():
    """``{"compiled": n, "loaded": m, "functions": k}``: specialisations this process compiled
    and loaded from the cache so far, over numlstm's ``k`` CPU functions."""
    compiled = loaded = 0
    for dispatcher in _dispatchers:
        compiled += sum(dispatcher._cache_misses.values())
        loaded += sum(dispatcher._cache_hits.values())
    return {"compiled": compiled, "loaded": loaded, "functions": len(_dispatchers)}


def dispatchers():
    """numlstm's CPU dispatchers (read-only use: signatures, statistics)."""
    return tuple(_dispatchers)


def attach(dispatcher):
    """Give a Numba dispatcher numlstm's on-disk cache, when caching is on; never raises."""
    global _kernel_cache_class
    _dispatchers.append(dispatcher)
    if not enabled():
        return dispatcher
    try:
        if _kernel_cache_class is None:
            _kernel_cache_class = _make_classes()
        dispatcher._cache = _kernel_cache_class(dispatcher.py_func)
    except Exception as err:  # an unexpected Numba: keep the in-memory compile
        warn_once(f"it could not be set up ({type(err).__name__}: {err})")
    return dispatcher
