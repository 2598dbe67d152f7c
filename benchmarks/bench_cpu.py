"""numlstm against PyTorch on the CPU, same machine, same run, same thread count.

Run from a checkout::

    python benchmarks/bench_cpu.py [--quick] [--threads N] [--output benchmarks/results/cpu.json]

Measures, in one process but for the start-up rows (float32 throughout):

* a training step: one full-batch gradient step of LSTM + dense head on the
  last hidden state + MSE + Adam. numlstm is timed on its compiled epoch kernel
  (``numlstm.core.cpu_engine.train_epoch`` with one batch = the whole data set,
  its workspace kept across steps as ``fit``'s trainer keeps it), and, for
  transparency, end to end as ``LSTMRegressor.fit(epochs=20)`` / 20;
  PyTorch as ``nn.LSTM`` + ``nn.Linear`` + ``torch.optim.Adam``;
* predict: the forward pass of the whole batch, ``model.predict(X)`` on a
  fitted numlstm model against PyTorch under ``torch.inference_mode()``;
* the origin workflow: the Keras population tutorial
  (``numlstm.cli.population_workflow``: LSTM(50), batch_size=1, 100 epochs),
  timed warm, against the same workflow written in PyTorch;
* GFLOP/s of numlstm next to the machine's float32 GEMM rate, import time,
  and the first fit of a fresh process, cold and from the on-disk cache.

Run times are medians of several repeats after a warm-up, numlstm and PyTorch
timed alternately (the GEMM rate and import time are bests). The printed
table gives numlstm / PyTorch time ratios and the targets they are held to.
PyTorch is a benchmark-only dependency (``pip install ".[bench]"``).
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Benchmark the checkout this file lives in, in this process and in the fresh ones below.
sys.path.insert(0, REPO)

# (batch, time, features, hidden), training-step target, predict target: numlstm time / torch time
# (issue 16: training <= 0.5 and predict <= 0.7 of torch's time at every size, on Intel and AMD alike).
CASES = [
    ((32, 30, 1, 50), 0.5, 0.7),
    ((256, 60, 8, 64), 0.5, 0.7),
    ((64, 100, 16, 256), 0.5, 0.7),
]
WORKFLOW_TARGET = 0.05
FIT_EPOCHS = 20  # the end-to-end column: fit(epochs=20) / 20


# --- timing --------------------------------------------------------------------------------------
def measure(fns, repeats, warmup=2, min_seconds=0.05):
    """Seconds per call of each function in ``fns`` (a dict), timed interleaved.

    Each function is warmed up ``warmup`` times; then every repeat times each
    function in turn, so that a disturbance from outside the process (another
    job, a noisy neighbour on a shared host) falls on all of them rather than
    on one library's block of repeats. A repeat runs a function enough times
    back to back to last ``min_seconds`` (fixed from the warm-up, the same in
    every repeat), so calls of microseconds are not lost in timer resolution.
    Returns ``{name: {"median": s, "min": s, "max": s, "calls": n}}``.
    """
    number = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        fn()
        number[name] = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-9)))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number[name]):
                fn()
            times[name].append((time.perf_counter() - start) / number[name])
    return {name: {"median": statistics.median(t), "min": min(t), "max": max(t), "calls": number[name]}
            for name, t in times.items()}


def gemm_gflops(size=2048, tries=5):
    """Best float32 ``size x size`` matmul rate through NumPy's BLAS, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    a @ b
    best = np.inf
    for _ in range(tries):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def vector_width():
    """The widest vector register in numlstm's compiled matrix-product loop, and what
    NUMLSTM_VECTOR_WIDTH did (see numlstm._vectors)."""
    import numba

    from numlstm import _vectors
    from numlstm.kernels import cpu
    from numlstm.kernels._jit import CPU_OPTIONS

    fresh = numba.njit(**CPU_OPTIONS)(cpu.add_tile.py_func)  # compiled here: code loaded from the cache has no asm
    f32 = numba.float32
    sig = (f32[:, :, ::1], numba.int64, f32[:, :, ::1], numba.int64, f32[:, ::1], numba.int64, numba.int64,
           f32[::1])
    fresh.compile(sig)
    register = _vectors.widest_register(fresh.inspect_asm(sig))
    bits = {"zmm": 512, "ymm": 256, "xmm": 128}.get(register)
    state = _vectors.state()
    return (f"vectors: numlstm's matrix-product loop compiles to {register} ({bits}-bit) registers; "
            f"NUMLSTM_VECTOR_WIDTH={state['requested']} ({state['why']})")


def lstm_forward_flops(batch, steps, features, hidden):
    """Multiply-adds of the gate pre-activations, counted as 2 flops each."""
    return 2.0 * batch * steps * (features + hidden) * 4 * hidden


# --- numlstm -------------------------------------------------------------------------------------
def numlstm_case(X, y, hidden):
    """``(train_step, fit_20, predict)`` callables on numlstm; compiles on the way."""
    import numlstm
    from numlstm.core import losses
    from numlstm.core import cpu_engine
    from numlstm.core.optimizers import Adam

    B = X.shape[0]
    # One epoch of fit compiles (or loads) every kernel for float32.
    model = numlstm.LSTMRegressor(units=hidden, epochs=1, batch_size=B, random_state=0).fit(X, y)
    net = model.network_
    params = net.params.copy()  # the timed steps train this copy; predict uses the fitted model
    grads = np.zeros_like(params)
    state = np.zeros((2, net.n_params), dtype=net.dtype)
    optimizer = Adam()
    hp = optimizer.hyperparams()
    Y = y.reshape(B, 1)
    M = np.ones_like(Y)
    order = np.arange(B, dtype=np.int64)
    lparams = np.zeros(1)
    batch_losses = np.zeros(1)
    n_threads = numlstm.get_num_threads()
    step = [0]
    work = cpu_engine.workspace(net.table, B, X.shape[1], net.dtype)  # kept across steps, as fit's trainer does

    def train_step():
        failed, step[0] = cpu_engine.train_epoch(params, grads, net.table, net.head, X, Y, M, order, B,
                                               losses.NAMES["mse"], lparams, optimizer.kind, hp, state,
                                               step[0], 0.0, n_threads, batch_losses, work=work)
        if failed >= 0:
            raise FloatingPointError("numlstm training step produced a non-finite loss")

    def fit_20():
        numlstm.LSTMRegressor(units=hidden, epochs=FIT_EPOCHS, batch_size=B, random_state=0).fit(X, y)

    def predict():
        model.predict(X)

    return train_step, fit_20, predict


# --- torch ---------------------------------------------------------------------------------------
def torch_case(torch, X, y, hidden):
    """``(train_step, predict)`` callables on PyTorch."""
    nn = torch.nn
    torch.manual_seed(0)
    B, T, I = X.shape
    lstm = nn.LSTM(I, hidden, batch_first=True)
    lin = nn.Linear(hidden, 1)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(lin.parameters()), lr=1e-3)
    x = torch.from_numpy(X)
    target = torch.from_numpy(y.reshape(B, 1))

    def train_step():
        opt.zero_grad()
        out, _ = lstm(x)
        loss = ((lin(out[:, -1]) - target) ** 2).mean()
        loss.backward()
        opt.step()

    def predict():
        with torch.inference_mode():
            out, _ = lstm(x)
            lin(out[:, -1])

    return train_step, predict


def run_case(torch, shape, repeats, rng):
    B, T, I, H = shape
    X = rng.standard_normal((B, T, I)).astype(np.float32)
    y = rng.standard_normal(B).astype(np.float32)
    nl_step, nl_fit, nl_predict = numlstm_case(X, y, H)
    th_step, th_predict = torch_case(torch, X, y, H)
    steps = measure({"numlstm": nl_step, "torch": th_step}, repeats)
    predicts = measure({"numlstm": nl_predict, "torch": th_predict}, repeats)
    fits = measure({"numlstm": nl_fit}, max(3, repeats // 2), warmup=1, min_seconds=0.0)["numlstm"]
    nl = {"train_step_s": steps["numlstm"]["median"], "predict_s": predicts["numlstm"]["median"],
          "fit_epoch_s": fits["median"] / FIT_EPOCHS,
          "train_step_spread_s": steps["numlstm"], "predict_spread_s": predicts["numlstm"],
          "fit_20_epochs_spread_s": fits}
    th = {"train_step_s": steps["torch"]["median"], "predict_s": predicts["torch"]["median"],
          "train_step_spread_s": steps["torch"], "predict_spread_s": predicts["torch"]}
    return nl, th


def population_windows(lookback=4, test_size=20):
    """The training windows of ``numlstm.cli.population_workflow``, from the same function it uses."""
    from numlstm.cli import population_windows as windows

    data = windows(lookback, test_size)
    n = data["n_train"]
    return data["X"][:n, :, None], data["y"][:n]


def torch_workflow(torch, epochs, random_state=0):
    """The population tutorial in PyTorch: LSTM(1, 50) + Linear(50, 1), Adam 1e-3, MSE,
    batch_size=1, shuffled every epoch. Returns the seconds of the training loop."""
    nn = torch.nn
    X, y = population_windows()
    torch.manual_seed(random_state)
    rng = np.random.default_rng(random_state)
    lstm = nn.LSTM(1, 50, batch_first=True)
    lin = nn.Linear(50, 1)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(lin.parameters()), lr=1e-3)
    # One tensor per sample, made before the clock starts: the loop does no slicing.
    xs = [torch.from_numpy(X[i:i + 1].copy()) for i in range(len(X))]
    ys = [torch.from_numpy(y[i:i + 1].reshape(1, 1).copy()) for i in range(len(y))]
    start = time.perf_counter()
    for _ in range(epochs):
        for i in rng.permutation(len(xs)):
            opt.zero_grad()
            out, _ = lstm(xs[i])
            loss = ((lin(out[:, -1]) - ys[i]) ** 2).mean()
            loss.backward()
            opt.step()
    return time.perf_counter() - start, len(xs)


def workflow(torch, epochs, repeats):
    """Warm fit seconds of the origin workflow, numlstm and torch runs alternating."""
    from numlstm.cli import population_workflow

    population_workflow(epochs=1)  # compile; population_workflow's own clock is around fit only
    torch_workflow(torch, 1)  # warm-up
    numlstm_times, torch_times = [], []
    for _ in range(repeats):
        numlstm_times.append(population_workflow(epochs=epochs)["fit_seconds"])
        seconds, n_samples = torch_workflow(torch, epochs)
        torch_times.append(seconds)
    return {
        "epochs": epochs, "samples": n_samples, "repeats": repeats,
        "numlstm_fit_s": statistics.median(numlstm_times), "numlstm_fit_all_s": numlstm_times,
        "torch_fit_s": statistics.median(torch_times), "torch_fit_all_s": torch_times,
    }


# --- fresh processes -----------------------------------------------------------------------------
IMPORT_CODE = """
import time
start = time.perf_counter()
import numlstm
print(time.perf_counter() - start)
"""

FIRST_FIT_CODE = """
import sys, time
import numpy as np
import numlstm
numlstm.set_num_threads(int(sys.argv[1]))
rng = np.random.default_rng(0)
X = rng.standard_normal((16, 10, 1)).astype(np.float32)
y = rng.standard_normal(16).astype(np.float32)
start = time.perf_counter()
numlstm.LSTMRegressor(units=8, epochs=1, random_state=0).fit(X, y)
print(time.perf_counter() - start)
"""


def run_child(code, env_extra=None, args=()):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMLSTM_CACHE", "NUMLSTM_CACHE_DIR")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else REPO
    env.update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child process failed ({done.returncode}):\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def startup(threads):
    import_s = min(run_child(IMPORT_CODE) for _ in range(3))
    cold_s = run_child(FIRST_FIT_CODE, {"NUMLSTM_CACHE": "0"}, args=(threads,))
    with tempfile.TemporaryDirectory(prefix="numlstm-bench-cache-") as cache_dir:
        env = {"NUMLSTM_CACHE_DIR": cache_dir}
        populate_s = run_child(FIRST_FIT_CODE, env, args=(threads,))
        cached_s = run_child(FIRST_FIT_CODE, env, args=(threads,))
    return {"import_s": import_s, "cold_first_fit_s": cold_s,
            "cache_populating_first_fit_s": populate_s, "cached_first_fit_s": cached_s}


# --- report --------------------------------------------------------------------------------------
def source_state():
    """Which numlstm code is measured: git commit, uncommitted changes, and a hash of the sources.

    The fresh processes of the start-up rows import numlstm again, so a source
    edited during the run would be measured there but not in the rest.
    """
    digest = hashlib.sha256()
    package = os.path.join(REPO, "numlstm")
    for root, dirs, files in sorted(os.walk(package)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, package).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())

    def git(*cmd):
        try:
            done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "numlstm")
    return {"git_commit": git("rev-parse", "--short", "HEAD"),
            "numlstm_uncommitted_changes": None if status is None else bool(status),
            "numlstm_sources_sha256": digest.hexdigest()[:16]}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ms(seconds):
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def spread(stats):
    return f"{stats['max'] / stats['min']:.2f}"


def verdict(ratio, target):
    return "met" if ratio <= target else "NOT met"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and a 10-epoch origin workflow (for a smoke test, not for figures)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both numlstm and torch (default: os.cpu_count() = %(default)s)")
    parser.add_argument("--output", default=None, help="write every figure to this JSON file")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("bench_cpu.py needs PyTorch, the peer it compares against, and it is not installed.\n"
              "Install the benchmark extra:  pip install '.[bench]'   (or: pip install torch)", file=sys.stderr)
        return 2
    import numba

    import numlstm

    threads = args.threads
    torch.set_num_threads(threads)
    numlstm.set_num_threads(threads)
    repeats = 5 if args.quick else 11
    workflow_epochs = 10 if args.quick else 100
    workflow_repeats = 1 if args.quick else 3

    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": threads,
        "platform": platform.platform(), "python": platform.python_version(),
        "numlstm": numlstm.__version__, "numba": numba.__version__, "numpy": np.__version__,
        "torch": torch.__version__, "threading_layer": None, "dtype": "float32",
        "statistic": f"median of {repeats} repeats after warm-up, numlstm and torch interleaved",
        "quick": args.quick, "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    meta["source"] = source_state()
    src = meta["source"]
    print(f"numlstm {meta['numlstm']} vs torch {meta['torch']} on {meta['cpu']} ({meta['cpu_count']} cores), "
          f"{threads} thread(s) each, float32")
    print(f"numba {meta['numba']}, numpy {meta['numpy']}, python {meta['python']}, {meta['date']}")
    print(f"numlstm source: git {src['git_commit']}"
          f"{' + uncommitted changes' if src['numlstm_uncommitted_changes'] else ''}, "
          f"sources sha256 {src['numlstm_sources_sha256']}")
    print(f"times: {meta['statistic']}" + ("  [--quick: few repeats, 10-epoch workflow]" if args.quick else ""))
    load = meta["load_average_at_start"]
    if load is not None:
        busy = "  (the machine is busy: expect noisy figures)" if load[0] > 0.5 else ""
        print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{busy}")
    meta["vectors"] = vector_width()
    print(meta["vectors"])
    print()

    rng = np.random.default_rng(0)
    gemm = gemm_gflops()
    cases = []
    for shape, step_target, pred_target in CASES:
        B, T, I, H = shape
        t0 = time.perf_counter()
        nl, th = run_case(torch, shape, repeats, rng)
        flops = lstm_forward_flops(B, T, I, H)
        cases.append({
            "batch": B, "time": T, "features": I, "hidden": H,
            "numlstm": nl, "torch": th,
            "train_ratio": nl["train_step_s"] / th["train_step_s"],
            "fit_epoch_ratio": nl["fit_epoch_s"] / th["train_step_s"],
            "predict_ratio": nl["predict_s"] / th["predict_s"],
            "train_target": step_target, "predict_target": pred_target,
            "forward_gflop": flops / 1e9,
            "numlstm_predict_gflops": flops / nl["predict_s"] / 1e9,
            "numlstm_train_gflops": 3 * flops / nl["train_step_s"] / 1e9,
            "torch_predict_gflops": flops / th["predict_s"] / 1e9,
            "torch_train_gflops": 3 * flops / th["train_step_s"] / 1e9,
        })
        print(f"  case {shape} measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    try:
        meta["threading_layer"] = numba.threading_layer()
    except ValueError:
        pass
    t0 = time.perf_counter()
    wf = workflow(torch, workflow_epochs, workflow_repeats)
    wf["ratio"] = wf["numlstm_fit_s"] / wf["torch_fit_s"]
    wf["target"] = WORKFLOW_TARGET
    print(f"  origin workflow measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    t0 = time.perf_counter()
    start = startup(threads)
    print(f"  start-up measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    meta["source_at_end"] = source_state()
    if meta["source_at_end"]["numlstm_sources_sha256"] != src["numlstm_sources_sha256"]:
        print("WARNING: numlstm's sources changed during the run (sha256 "
              f"{src['numlstm_sources_sha256']} -> {meta['source_at_end']['numlstm_sources_sha256']}); "
              "figures may mix two versions of the code. Run again on a quiet tree.")
    print()

    # --- the table of ratios ---
    print("| case (batch, time, features, hidden) | measure | numlstm | numlstm fit/epoch | torch "
          "| numlstm / torch | target | verdict | spread max/min (numlstm, torch) |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for c in cases:
        label = f"{c['batch']}, {c['time']}, {c['features']}, {c['hidden']}"
        nl, th = c["numlstm"], c["torch"]
        print(f"| {label} | training step | {ms(nl['train_step_s'])} | {ms(nl['fit_epoch_s'])} "
              f"| {ms(th['train_step_s'])} | {c['train_ratio']:.3f} (fit/epoch: {c['fit_epoch_ratio']:.3f}) "
              f"| <= {c['train_target']} | {verdict(c['train_ratio'], c['train_target'])} "
              f"| {spread(nl['train_step_spread_s'])}, {spread(th['train_step_spread_s'])} |")
        print(f"| {label} | predict | {ms(nl['predict_s'])} | | {ms(th['predict_s'])} | {c['predict_ratio']:.3f} "
              f"| <= {c['predict_target']} | {verdict(c['predict_ratio'], c['predict_target'])} "
              f"| {spread(nl['predict_spread_s'])}, {spread(th['predict_spread_s'])} |")
    wf_label = (f"origin workflow ({wf['samples']} samples, lookback 4, LSTM(50), batch_size=1, "
                f"{wf['epochs']} epochs{', --quick' if args.quick else ''})")
    print(f"| {wf_label} | fit, warm | {ms(wf['numlstm_fit_s'])} | | {ms(wf['torch_fit_s'])} "
          f"| {wf['ratio']:.3f} | <= {wf['target']} | {verdict(wf['ratio'], wf['target'])} "
          f"| {max(wf['numlstm_fit_all_s']) / min(wf['numlstm_fit_all_s']):.2f}, "
          f"{max(wf['torch_fit_all_s']) / min(wf['torch_fit_all_s']):.2f} |")
    print()
    print("numlstm: compiled epoch kernel (train_epoch, one batch = whole data set, its workspace kept across steps "
          "as fit keeps it); 'fit/epoch' is "
          f"LSTMRegressor.fit(epochs={FIT_EPOCHS}) / {FIT_EPOCHS}, Python and setup included. "
          "Predict: model.predict(X) vs torch under inference_mode.")
    print("spread: slowest / fastest repeat; far above 1 means the run was disturbed.")
    print(f"origin workflow: median of {wf['repeats']} warm run(s) each, alternating; numlstm {[round(s, 3) for s in wf['numlstm_fit_all_s']]} s, "
          f"torch {[round(s, 3) for s in wf['torch_fit_all_s']]} s")
    print()

    print("| case | forward GFLOP | numlstm predict GFLOP/s | numlstm train GFLOP/s | torch predict GFLOP/s "
          "| torch train GFLOP/s | float32 GEMM GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in cases:
        label = f"{c['batch']}, {c['time']}, {c['features']}, {c['hidden']}"
        print(f"| {label} | {c['forward_gflop']:.4f} | {c['numlstm_predict_gflops']:.2f} "
              f"| {c['numlstm_train_gflops']:.2f} | {c['torch_predict_gflops']:.2f} | {c['torch_train_gflops']:.2f} "
              f"| {gemm:.1f} |")
    print()
    print("flops: forward 2*B*T*(I+H)*4H, training step 3x forward; GEMM: numpy float32 2048x2048 matmul, "
          "best of 5 (numpy's BLAS threads, not --threads)")
    print()
    print("| start-up (fresh process) | seconds |")
    print("|---|---:|")
    print(f"| import numlstm (best of 3) | {start['import_s']:.3f} |")
    print(f"| cold first fit, LSTMRegressor(units=8, epochs=1), compile included | {start['cold_first_fit_s']:.2f} |")
    print(f"| first fit that writes the cache (empty NUMLSTM_CACHE_DIR) "
          f"| {start['cache_populating_first_fit_s']:.2f} |")
    print(f"| cached first fit (cache populated) | {start['cached_first_fit_s']:.2f} |")

    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        report = {"meta": meta, "gemm_float32_gflops": gemm, "cases": cases, "origin_workflow": wf,
                  "startup": start}
        tmp = args.output + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, args.output)
        print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
