"""numlstm's CUDA backend against PyTorch's cuDNN LSTM, same GPU, same run.

Run on a machine with an NVIDIA GPU and a CUDA build of PyTorch::

    python benchmarks/bench_gpu.py [--repeats 11] [--output benchmarks/results/gpu.txt]

For each (batch, time, features, hidden), float32, data already on the GPU:

* training step: one full-batch step of LSTM + dense head on the last hidden
  state + MSE + Adam. numlstm: ``numlstm.core.gpu.Trainer.epoch`` with one
  batch (gather, forward, loss, backward, norm, update, and the loss read back);
  PyTorch: ``nn.LSTM`` + ``nn.Linear``, ``loss.backward()``, ``Adam.step()``,
  then ``loss.item()``.
* predict: the forward pass of the whole batch (numlstm ``Trainer.forward``,
  PyTorch under ``inference_mode``), synchronised.

Times are medians of interleaved repeats after a warm-up. Targets (numlstm /
cuDNN): predict <= 1.0 at the first two sizes, training step <= 1.5 at all.
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from _report import emit, median_times, provenance  # noqa: E402

CASES = [((1024, 365, 4, 64), 1.5, 1.0), ((4096, 60, 8, 64), 1.5, 1.0), ((256, 100, 16, 256), 1.5, None)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--output")
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

    lines = [f"GPU: {reason}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
             f"{provenance(REPO)}", "",
             "| case (batch, time, features, hidden) | measure | numlstm | cuDNN | numlstm / cuDNN | target |",
             "|---|---|---:|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    for (B, T, F, H), train_target, predict_target in CASES:
        X = rng.standard_normal((B, T, F)).astype(np.float32)
        y = rng.standard_normal((B, 1)).astype(np.float32)
        net = Network(F, [H], 1, np.float32).initialize(rng)
        trainer = gpu.Trainer(net, X, y, np.ones_like(y), B, losses.MSE, np.zeros(1), Adam(), None)
        order = np.arange(B, dtype=np.int64)
        batch_losses = np.zeros(1)
        d_X = cuda.to_device(X)

        def numlstm_step():
            trainer.epoch(order, batch_losses)

        def numlstm_predict():
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

        for measure, ours, theirs, target in (("training step", numlstm_step, torch_step, train_target),
                                              ("predict", numlstm_predict, torch_predict, predict_target)):
            # two warm-up calls each, compilation included
            medians = median_times({"numlstm": ours, "torch": theirs}, args.repeats, warmup=2)
            a, b = medians["numlstm"], medians["torch"]
            lines.append(f"| {B}, {T}, {F}, {H} | {measure} | {a * 1e3:.2f} ms | {b * 1e3:.2f} ms | {a / b:.2f} | "
                         f"{'<= ' + str(target) if target else '-'} |")
            print(lines[-1], flush=True)
    emit(lines, args.output)


if __name__ == "__main__":
    main()
