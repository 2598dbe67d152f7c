"""numlstm's CUDA backend against PyTorch's cuDNN LSTM, same GPU, same run.

Run on a machine with an NVIDIA GPU and a CUDA build of PyTorch::

    python benchmarks/bench_gpu.py [--repeats 11] [--output benchmarks/results/gpu.txt]

For each (batch, time, features, hidden), float32, data already on the GPU:

* training step: one full-batch step of LSTM + dense head on the last hidden
  state + MSE + Adam. numlstm: ``numlstm.core.gpu.Trainer.epoch`` with one
  batch (gather, forward, loss, backward, norm, update, and the loss read back);
  PyTorch: ``nn.LSTM`` + ``nn.Linear``, ``loss.backward()``, ``Adam.step()``,
  then ``loss.item()``.
* predict: the forward pass of the whole batch and the head (numlstm
  ``Trainer.forward(train=False)``, PyTorch under ``inference_mode``), synchronised.
* forward (train): numlstm's forward pass storing what the backward pass reads
  (a part of the training step, for where the time goes).

cuDNN is timed with TF32 allowed (PyTorch's default for cuDNN) and not.
Times are medians of interleaved repeats after a warm-up. Then, at each size,
two fresh trainers take one step each: their weights must be the same bits.
Before the table, the layer kernels at full launch sizes are checked against
the NumPy reference (float32) and the CPU kernels (float64, to 1e-10).
Targets (numlstm / cuDNN): predict <= 1.0, training step <= 1.5.
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

import numpy as np  # noqa: E402
from _report import emit, median_times, provenance  # noqa: E402

CASES = [((1024, 365, 4, 64), 1.5, 1.0), ((4096, 60, 8, 64), 1.5, 1.0), ((256, 100, 16, 256), 1.5, 1.0)]


def check_layers(lines):
    """Full-size launches against the references: float32 (fast kernels) and float64 (generic)."""
    from numba import cuda

    import numlstm
    import reference as ref
    from numlstm.kernels import cuda as k
    from numlstm.kernels import cuda_fast as fast

    rng = np.random.default_rng(1)
    for (B, T, F, H), dtype in (((300, 40, 8, 64), np.float32), ((300, 40, 8, 37), np.float32),
                                ((70, 20, 8, 64), np.float64), ((70, 20, 16, 256), np.float32)):
        x, W, U, b = ref.random_layer(rng, B, T, F, H, scale=0.5 * min(1.0, (64 / H) ** 0.5))  # well conditioned
        dh_T = rng.standard_normal((B, H))
        dev = [cuda.to_device(a.astype(dtype)) for a in (x, W, U, b)]
        zeros = cuda.to_device(np.zeros((B, H), dtype))
        zs, cs, hs = k.layer_forward(*dev, zeros, zeros)
        d_dh, d_dc = cuda.to_device(dh_T.astype(dtype)), cuda.to_device(np.zeros((B, H), dtype))
        dx, dW, dU, db = k.layer_backward(dev[0], dev[1], None, zeros, zeros, zs, cs, hs, None, d_dh, d_dc,
                                          U=dev[2])
        got = {"h": hs.copy_to_host(), "dx": dx.copy_to_host(), "dW": dW.copy_to_host(), "dU": dU.copy_to_host(),
               "db": db.copy_to_host(), "dh0": d_dh.copy_to_host()}
        if dtype == np.float64:
            want = numlstm.lstm_backward(x, W, U, b, np.zeros((B, T, H)), dh_T=dh_T, device="cpu")
            want["h"] = numlstm.lstm_forward(x, W, U, b, device="cpu")[0]
        else:
            want = ref.lstm_backward(x, W, U, b, np.zeros((B, T, H)), dh_T=dh_T)
            want["h"] = ref.lstm_forward(x, W, U, b)[0]
        worst = max(np.abs(got[key] - want[key]).max() / max(np.abs(want[key]).max(), 1e-30) for key in got)
        limit = 1e-10 if dtype == np.float64 else 1e-4
        path = ("register-resident" if fast.fast_path(dtype, H, F) else
                "per-step" if fast.step_path(dtype, H) else "generic")
        lines.append(f"check {np.dtype(dtype).name} ({B}, {T}, {F}, {H}) {path} kernels vs "
                     f"{'CPU' if dtype == np.float64 else 'NumPy float64'}: worst max|diff|/max|ref| "
                     f"{worst:.2e} ({'ok' if worst <= limit else 'FAILED'}, limit {limit:g})")
        print(lines[-1], flush=True)


def event_ms(fn, repeats=5):
    """Median device time of ``fn`` in milliseconds, between two CUDA events."""
    import statistics

    from numba import cuda

    fn()
    times = []
    for _ in range(repeats):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cuda.event_elapsed_time(start, stop))
    return statistics.median(times)


def phases(trainer, d_X):
    """Where a training step's time goes: device times of its parts, and the host's cost of
    one kernel launch."""
    import time

    from numba import cuda

    from numlstm.kernels import cuda as k

    from numlstm.kernels import cuda_common as common



    _, cache, _, _ = trainer.forward(d_X)
    x, zs, cs, hs, zeros = cache[0].x, cache[0].first, cache[0].second, cache[0].hs, cache[0].zeros
    W, U, _, _ = trainer._layer(trainer.params, 0)
    _, _, _, block = trainer._layer(trainer.grads, 0)
    n, H = zeros.shape
    dh, dc = cuda.to_device(np.zeros((n, H), np.float32)), cuda.to_device(np.zeros((n, H), np.float32))
    keep, hmask, use_keep, use_hmask = common.mask_args(None, None, np.float32)
    parts = {
        "forward (train)": lambda: trainer.forward(d_X),
        "forward (predict)": lambda: trainer.forward(d_X, train=False),
        "layer backward (recurrence + weight gradients)": lambda: k.layer_backward(
            x, W, None, zeros, zeros, zs, cs, hs, None, dh, dc, need_dx=False, out=block, U=U, ws=trainer.ws,
            tag="bench/"),
        "weight gradients (split-K product + reduction)": lambda: k.weight_grads(
            x, zeros, hs, trainer.ws.get("bench/dzs", zs.shape, np.float32), keep, hmask, use_keep, use_hmask,
            block, trainer.ws, "bench/"),
    }
    out = [f"{name} {event_ms(fn):.3f} ms" for name, fn in parts.items()]
    tiny = cuda.device_array((1, 1), np.float32)
    launch = k.launch(common.transpose_kernel, 1, 1)
    launch(tiny, tiny)
    cuda.synchronize()
    start = time.perf_counter()
    for _ in range(200):
        launch(tiny, tiny)
    host = (time.perf_counter() - start) / 200
    cuda.synchronize()
    out.append(f"host time of one launch (2 array arguments) {host * 1e6:.1f} us")
    return "; ".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--output")
    parser.add_argument("--rows", type=int, nargs="*", default=[],
                        help="also time the fast kernels with these FAST_ROWS (rows per block)")
    args = parser.parse_args(argv)
    from numba import cuda

    from numlstm.runtime import cuda_status

    usable, reason = cuda_status()
    if not usable or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        sys.exit(f"bench_gpu.py needs a real NVIDIA GPU: {reason}")
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA build of PyTorch as the peer (torch.cuda.is_available() is False)")
    from numlstm.core import gpu, losses
    from numlstm.core.network import Network
    from numlstm.core.optimizers import Adam
    from numlstm.kernels import cuda_fast as fast
    from numlstm.kernels import cuda_sizes as sizes

    try:
        import numba_cuda
        target = f"numba-cuda {numba_cuda.__version__}"
    except ImportError:
        target = "numba's own CUDA target"
    import numba

    lines = [f"GPU: {reason}; numba {numba.__version__}, {target}, numpy {np.__version__}; torch {torch.__version__}, "
             f"cuDNN {torch.backends.cudnn.version()}; {provenance(REPO)}", ""]
    check_layers(lines)
    lines += ["", "| case (batch, time, features, hidden) | measure | numlstm | cuDNN TF32 | cuDNN FP32 | "
              "numlstm / cuDNN TF32 | numlstm / cuDNN FP32 | target |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    repeat_lines, phase_lines = [], []
    for (B, T, F, H), train_target, predict_target in CASES:
        X = rng.standard_normal((B, T, F)).astype(np.float32)
        y = rng.standard_normal((B, 1)).astype(np.float32)
        net = Network(F, [H], 1, np.float32).initialize(rng)
        params0 = net.params.copy()
        order = np.arange(B, dtype=np.int64)
        batch_losses = np.zeros(1)
        d_X = cuda.to_device(X)

        # bitwise repeatability of a training step at this size
        after = []
        for _ in range(2):
            net.params[:] = params0
            t = gpu.Trainer(net, X, y, np.ones_like(y), B, losses.MSE, np.zeros(1), Adam(), None)
            t.epoch(order, batch_losses)
            after.append(t.get_params())
            del t
        same = np.array_equal(after[0], after[1])
        repeat_lines.append(f"({B}, {T}, {F}, {H}) two fresh trainers, one step each: weights "
                            f"{'bit-identical' if same else 'DIFFER'}")
        print(repeat_lines[-1], flush=True)
        net.params[:] = params0
        trainer = gpu.Trainer(net, X, y, np.ones_like(y), B, losses.MSE, np.zeros(1), Adam(), None)

        def numlstm_step():
            trainer.epoch(order, batch_losses)

        def numlstm_predict():
            trainer.forward(d_X, train=False)
            cuda.synchronize()

        def numlstm_forward():
            trainer.forward(d_X)
            cuda.synchronize()

        lstm = torch.nn.LSTM(F, H, batch_first=True).cuda()
        head = torch.nn.Linear(H, 1).cuda()
        opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=1e-3)
        tX, ty = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()

        def torch_step():
            opt.zero_grad()
            out, _ = lstm(tX)
            loss = torch.nn.functional.mse_loss(head(out[:, -1]), ty)
            loss.backward()
            opt.step()
            loss.item()

        def torch_predict():
            with torch.inference_mode():
                out, _ = lstm(tX)
                head(out[:, -1])
            torch.cuda.synchronize()

        def tf32(on, fn):
            def run():
                torch.backends.cudnn.allow_tf32 = on
                torch.backends.cuda.matmul.allow_tf32 = on
                fn()
            return run

        phase_lines.append(f"({B}, {T}, {F}, {H}) device times: {phases(trainer, d_X)}")
        print(phase_lines[-1], flush=True)
        default_rows = sizes.FAST_ROWS
        variants = [(None, "")] + [(r, f" (FAST_ROWS={r})") for r in args.rows if H <= sizes.FAST_HIDDEN]
        if fast.step_path(np.float32, H):
            variants.append(("per-step", " (a launch per step)"))
        elif fast.fast_path(np.float32, H, F):
            variants += [("split-K", " (split-K weight gradients)"), ("cap", " (forward capped at 128 registers)")]
        for rows, label in variants:
            sizes.FAST_ROWS = rows if isinstance(rows, int) else default_rows
            sizes.STEP_GRID = rows != "per-step"
            sizes.FAST_FUSED_GRADS = rows != "split-K"
            sizes.FAST_MAX_REGISTERS = 128 if rows == "cap" else None
            measures = [("training step" + label, numlstm_step, torch_step, train_target)]
            if rows != "split-K":  # (prediction does not compute gradients)
                measures.append(("predict" + label, numlstm_predict, torch_predict, predict_target))
            if rows is None:
                measures.append(("forward (train)", numlstm_forward, None, None))
            for measure, ours, theirs, target in measures:
                fns = {"numlstm": ours}
                if theirs is not None and rows is None:
                    fns.update(tf32=tf32(True, theirs), fp32=tf32(False, theirs))
                medians = median_times(fns, args.repeats, warmup=2)  # compilation in the warm-up
                a = medians["numlstm"]
                cells = [f"{a * 1e3:.2f} ms"]
                if "tf32" in medians:
                    b32, b = medians["tf32"], medians["fp32"]
                    cells += [f"{b32 * 1e3:.2f} ms", f"{b * 1e3:.2f} ms", f"{a / b32:.2f}", f"{a / b:.2f}"]
                else:
                    cells += ["-"] * 4
                lines.append(f"| {B}, {T}, {F}, {H} | {measure} | {' | '.join(cells)} | "
                             f"{'<= ' + str(target) if target else '-'} |")
                print(lines[-1], flush=True)
        sizes.FAST_ROWS = default_rows
        sizes.STEP_GRID = True
        sizes.FAST_FUSED_GRADS = True
        sizes.FAST_MAX_REGISTERS = None
        trainer = None  # its device arrays go before the next case
    if fast._GRID_FAILED:
        lines.append(f"cooperative launch failed: {fast._GRID_FAILED[0]}")
    emit(lines + [""] + repeat_lines + [""] + phase_lines, args.output)


if __name__ == "__main__":
    main()
