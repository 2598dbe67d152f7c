"""Engines: where a fit or a prediction runs, and what it can do there.

An :class:`Engine` is a device resolved once (by
:func:`numlstm.core.training.resolve_engine`): this process's CPU (``cpu``), one
NVIDIA GPU (``cuda``, :mod:`numlstm.core.gpu`), the workers of a dask.distributed
cluster (``dask``, :mod:`numlstm.core.distributed`), or this process's CPU fed
batch by batch from out-of-core data (``streamed``, the Forecaster's
``stream=True``). It declares its capabilities, makes the trainer the epoch loop
drives (the protocol :class:`numlstm.core.training.Trainer`) and predicts.
Callers ask :meth:`Engine.require` for each feature a fit uses, so a refusal
reads the same on every front door and is decided in one place.

The CPU engine lives here; each other engine's entry is defined beside its
trainer (``gpu.ENGINE``, ``distributed.ENGINE``), and the streamed engine's
batches come from :mod:`numlstm.forecast.streaming`.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from numlstm._threads import kernel_threads
from numlstm.core.cpu_engine import (dataset_loss, dropout_plan, no_workspace, predict_rows, train_epoch, workspace,
                                     workspace_size)
from numlstm._aligned import aligned_zeros


@dataclass(frozen=True)
class Engine:
    """One engine: its name, where it runs (for messages), its capabilities, and how it
    trains and predicts.

    ``trainer(net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm, drop=,
    seed=, client=)`` makes the epoch loop's trainer; ``predict(net, X, drop=, seed=,
    step=, row0=)`` returns raw head outputs on the host.
    """

    name: str
    where: str  # in messages: "this process's CPU"
    dropout: bool  # (dropout, recurrent_dropout) while training, and Monte-Carlo dropout at predict
    dropout_plans: bool  # per-layer rates, per-step input masks, dropout on the head's input (numlstm.keras)
    lbfgs: bool  # optimizer='lbfgs': full batch, scipy's L-BFGS-B on this process
    tokens: bool  # token-id inputs through an embedding layer
    checkpoint: bool  # checkpoint= and resume=
    per_series: bool  # the Forecaster's mode='local' (one small model per series)
    trainer: Callable = None
    predict: Callable = None

    def require(self, capability, feature, fix):
        """Raise the ValueError saying that ``feature`` (what the caller asked for, in the
        user's words) cannot run on this engine, and ``fix``, unless it declares
        ``capability`` (one of the boolean fields)."""
        if not getattr(self, capability):
            raise ValueError(f"{feature} cannot run on {self.where} (the {self.name!r} engine); {fix}")


class CpuTrainer:
    """The epoch loop's trainer on the CPU: the weights are ``net.params`` itself, and
    each epoch is one compiled call over every batch."""

    def __init__(self, net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm, drop=None, seed=0,
                 client=None):
        self.net, self.X, self.Y, self.M = net, X, Y, M
        self.drop, self.seed = dropout_plan(drop, net.table), int(seed)
        self.batch_size, self.loss_id, self.lparams = batch_size, loss_id, lparams
        self.optimizer, self.clipnorm = optimizer, float(clipnorm or 0.0)
        self.grads = aligned_zeros(net.n_params, net.dtype)
        self.state = np.zeros((2, net.n_params), dtype=net.dtype)
        self.hp = optimizer.hyperparams()
        self.step = 0
        self.n_threads = kernel_threads()
        self.work = no_workspace(net.dtype)  # grown to the largest batch on first use, then kept

    def epoch(self, order, batch_losses):
        """Every batch of the windows in ``order``; returns the first failed batch or -1."""
        return self._run(self.X, self.Y, self.M, order, self.batch_size, batch_losses)

    def batch(self, X, Y, M, losses):
        """One optimizer step on the whole batch ``X``, ``Y``, ``M`` (a streamed fit's),
        its loss into ``losses[0]``; returns 0 when it was not finite, else -1."""
        return self._run(X, Y, M, np.arange(len(X), dtype=np.int64), len(X), losses)

    def _run(self, X, Y, M, order, batch_size, batch_losses):
        net = self.net
        need = workspace_size(net.table, min(batch_size, len(order)), X.shape[1])
        if self.work.shape[0] < need:  # one workspace for every epoch: no stored array allocated per batch
            self.work = workspace(net.table, min(batch_size, len(order)), X.shape[1], net.dtype)
        failed, self.step = train_epoch(net.params, self.grads, net.table, net.head, X, Y, M, order, batch_size,
                                        self.loss_id, self.lparams, self.optimizer.kind, self.hp, self.state,
                                        self.step, self.clipnorm, self.n_threads, batch_losses, drop=self.drop,
                                        seed=self.seed, work=self.work)
        return failed

    def dataset_loss(self, X, Y, M):
        net = self.net
        return dataset_loss(net.params, net.table, net.head, X, Y, M, self.loss_id, self.lparams, self.n_threads)

    def get_params(self):
        return self.net.params.copy()

    def set_params(self, params):
        self.net.params[:] = params

    def get_optimizer_state(self):
        """A copy of the optimizer's (2, n_params) moments, and the update count."""
        return self.state.copy(), self.step

    def set_optimizer_state(self, state, step):
        self.state[:] = state
        self.step = int(step)

    def close(self):
        """Let the workspace go (the other arrays are the caller's)."""
        self.work = no_workspace(self.net.dtype)


def cpu_predict(net, X, drop=None, seed=0, step=0, row0=0):
    """Raw head outputs for ``X`` on this process's CPU (with ``drop``, Monte-Carlo dropout)."""
    out = np.empty((X.shape[0], net.output_size), dtype=net.dtype)
    predict_rows(net.params, net.table, net.head, X, kernel_threads(), out, drop=drop, seed=seed, step=step,
                 row0=row0)
    return out


CPU = Engine("cpu", "this process's CPU", dropout=True, dropout_plans=True, lbfgs=True, tokens=True,
             checkpoint=True, per_series=True, trainer=CpuTrainer, predict=cpu_predict)

# Out-of-core data: the CPU trainer, fed batch by batch (CpuTrainer.batch); checkpoints
# need the windows in memory, L-BFGS the full batch.
STREAMED = Engine("streamed", "a streamed (out-of-core) fit", dropout=True, dropout_plans=True, lbfgs=False,
                  tokens=False, checkpoint=False, per_series=False, trainer=CpuTrainer, predict=cpu_predict)
