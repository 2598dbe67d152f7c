"""numlstm's GRU layer against PyTorch's nn.GRU on the CPU, same machine, same run, same thread count.

Run from a checkout::

    python benchmarks/bench_gru.py [--threads N] [--repeats 15] [--output benchmarks/results/gru.txt]

For the sizes of the LSTM table of ``bench_cpu.py`` (float32 throughout),
one GRU layer with the same weights in both libraries (a ``torch.nn.GRU``
converted with ``numlstm.interop.from_torch(..., cell="gru")``; the outputs
are checked to agree before anything is timed):

* forward: ``numlstm.gru_forward(x, W, U, b)`` against ``gru(x)`` under
  ``torch.inference_mode()``;
* forward + backward: ``numlstm.gru_backward(x, W, U, b, dh)`` (which runs
  the forward pass itself and returns ``dx``, ``dW``, ``dU``, ``db``,
  ``dh0``) against ``gru(x)`` then ``h.backward(dh)`` with ``x`` requiring
  a gradient, so both compute the same gradients.

numlstm is timed through its public functions, validation and allocation
included. Times are medians of interleaved repeats after a warm-up (which
compiles numlstm's kernels), each repeat a block of back-to-back calls; the
table gives numlstm / PyTorch time ratios. The load average at the start is
printed: on a machine shared with other work, use ``--threads 1``, since an
OpenMP pool (PyTorch's) with more threads than free cores stalls at its
barriers (about 0.5 s per call was seen on 2 cores with one busy elsewhere).
PyTorch is a benchmark-only dependency (``pip install ".[bench]"``).
"""

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmark the checkout this file lives in

import numpy as np  # noqa: E402
from _report import emit, median_times, peer_start  # noqa: E402

import numlstm  # noqa: E402
from numlstm import interop  # noqa: E402

# (batch, time, features, hidden): the cases of bench_cpu.py's LSTM table.
CASES = [(32, 30, 1, 50), (256, 60, 8, 64), (64, 100, 16, 256)]


def ms(seconds):
    return f"{seconds * 1e3:.3g} ms"


def per_call(fns, repeats, min_seconds=0.05):
    """Median seconds per call of each function in ``fns``: each timed block runs a function
    back to back for about ``min_seconds`` (a count fixed after a warm-up), so calls of
    a fraction of a millisecond are not lost in timer noise, and one library's thread
    pool winding down does not fall on every call of the other's."""
    counts = {}
    for name, fn in fns.items():
        fn()  # warm-up: compiles numlstm's kernels
        start = time.perf_counter()
        fn()
        counts[name] = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-9)))

    def block(fn, n):
        def run():
            for _ in range(n):
                fn()
        return run

    medians = median_times({name: block(fn, counts[name]) for name, fn in fns.items()}, repeats, warmup=0)
    return {name: seconds / counts[name] for name, seconds in medians.items()}


def run_case(torch, shape, repeats, rng):
    """``{"forward": {...}, "forward+backward": {...}}`` of median seconds per library."""
    B, T, I, H = shape
    torch.manual_seed(0)
    gru = torch.nn.GRU(I, H, batch_first=True)  # float32
    layer = interop.from_torch(gru, cell="gru")["layers"][0]
    W, U, b = layer["W"], layer["U"], layer["b"]
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    dh = rng.standard_normal((B, T, H)).astype(np.float32)
    x_t, dh_t = torch.from_numpy(x), torch.from_numpy(dh)
    x_grad = x_t.clone().requires_grad_(True)

    with torch.inference_mode():
        h_torch = gru(x_t)[0].numpy()
    np.testing.assert_allclose(numlstm.gru_forward(x, W, U, b)[0], h_torch, rtol=1e-4, atol=1e-4)

    def torch_forward():
        with torch.inference_mode():
            gru(x_t)

    def torch_backward():
        gru.zero_grad(set_to_none=True)
        x_grad.grad = None
        gru(x_grad)[0].backward(dh_t)

    def numlstm_backward():
        numlstm.gru_backward(x, W, U, b, dh)

    torch_backward()
    grads = numlstm.gru_backward(x, W, U, b, dh)
    np.testing.assert_allclose(grads["dx"], x_grad.grad.numpy(), rtol=1e-3, atol=1e-3)

    forward = per_call({"numlstm": lambda: numlstm.gru_forward(x, W, U, b), "torch": torch_forward}, repeats)
    backward = per_call({"numlstm": numlstm_backward, "torch": torch_backward}, repeats)
    return {"forward": forward, "forward+backward": backward}


def main(argv=None):
    args, torch, title, load = peer_start("bench_gru.py", __doc__.splitlines()[0], argv, 15, REPO)
    if torch is None:
        return 2
    lines = [
        title,
        f"one GRU layer, the same weights in both; median of {args.repeats} interleaved repeats after a warm-up, "
        f"each repeat a block of calls lasting about 50 ms; load average at start {load}",
        "",
        "| case (batch, time, features, hidden) | measure | numlstm | torch | numlstm / torch |",
        "|---|---|---:|---:|---:|",
    ]
    rng = np.random.default_rng(0)
    for shape in CASES:
        label = ", ".join(map(str, shape))
        for measure, times in run_case(torch, shape, args.repeats, rng).items():
            lines.append(f"| {label} | {measure} | {ms(times['numlstm'])} | {ms(times['torch'])} "
                         f"| {times['numlstm'] / times['torch']:.3f} |")
            print(lines[-1], flush=True)
    lines += [
        "",
        "forward: numlstm.gru_forward vs nn.GRU under inference_mode; forward+backward: numlstm.gru_backward "
        "(forward recomputed inside, all gradients) vs nn.GRU forward + backward(dh) with x requiring a gradient.",
    ]
    emit(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
