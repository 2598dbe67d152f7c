"""The epoch loop, one for every engine: history, progress, early stopping, the
best weights, non-finite losses, Ctrl-C and checkpoints, and L-BFGS.

:func:`resolve_engine` turns a device, a dask client and streaming into one
:class:`~numlstm.core.engines.Engine`; :func:`fit` asks it for what the fit
uses and drives its trainer (the protocol :class:`Trainer`) through
:func:`run_epochs`, the loop the streamed fit
(:mod:`numlstm.forecast.streaming`) and :mod:`numlstm.keras` run too.
:func:`predict` runs a network on the engine of a device.
"""

import hashlib
import logging
import math
import os
import sys
import warnings
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from numlstm._threads import kernel_threads
from numlstm.core import engines as _engines
from numlstm.core.cpu_engine import PER_STEP, RATE, _drop, batch_loss_grad, dataset_loss
from numlstm._aligned import aligned_zeros
from numlstm.core.optimizers import LBFGS

log = logging.getLogger("numlstm")

class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the model keeps its last good weights."""


def non_finite(epoch, batch, n_batches=None):
    """The :class:`NonFiniteLossError` of a non-finite loss or gradient at ``batch`` (0-based)
    of ``epoch`` (0-based), out of ``n_batches`` when known."""
    of = "" if n_batches is None else f" of {n_batches}"
    return NonFiniteLossError(
        f"the loss or its gradient became NaN or infinite at epoch {epoch + 1}, batch {batch + 1}{of}; training "
        "stopped and the model keeps the weights from before that batch. Try a lower learning_rate, clipnorm=1.0, "
        "or scaling the inputs and targets.")


class Trainer(Protocol):
    """What the epoch loop asks of an engine's trainer: the CPU's
    :class:`~numlstm.core.engines.CpuTrainer`, CUDA's :class:`numlstm.core.gpu.Trainer`,
    dask's :class:`numlstm.core.distributed.DistributedTrainer` and L-BFGS's
    ``_FullBatch`` implement it (an engine's ``trainer`` makes one)."""

    def epoch(self, order, batch_losses):
        """One epoch over the windows in ``order``, each batch's loss into ``batch_losses``;
        the index of the first batch with a non-finite loss or gradient, or -1."""

    def dataset_loss(self, X, Y, M):
        """The loss over a whole data set (the validation loss)."""

    def get_params(self):
        """A host copy of the weights."""

    def set_params(self, params):
        """Take the weights ``params``."""

    def get_optimizer_state(self):
        """A copy of the (2, n_params) optimizer moments, and the update count."""

    def set_optimizer_state(self, state, step):
        """Take optimizer moments and an update count (resuming, after an interrupt)."""

    def close(self):
        """Release what the engine holds (device memory, shards on a cluster)."""


def resolve_engine(device="cpu", client=None, streamed=False):
    """The :class:`~numlstm.core.engines.Engine` of a fit or prediction: ``device`` ("cpu"
    or "cuda", as ``_validation.resolve_device`` returns it), a dask.distributed
    ``client`` (data-parallel training on its workers), or ``streamed`` (out-of-core
    data, batch by batch on this process). The one place these choices combine."""
    if streamed:
        if device == "cuda" or client is not None:
            raise ValueError(
                "a streamed (out-of-core) fit trains on this process's CPU, one global model: use "
                "device='cpu', no client and mode='global', or pass stream=False to load the data.")
        return _engines.STREAMED
    if client is not None:
        if device == "cuda":
            raise ValueError("client= trains on the workers' CPUs; use device='cpu' with a client, or "
                             "device='cuda' without one.")
        from numlstm.core import distributed

        return distributed.ENGINE
    if device == "cuda":
        from numlstm.core import gpu

        return gpu.ENGINE
    return _engines.CPU


def predict(net, X, device="cpu", drop=None, seed=0, step=0, row0=0):
    """Raw head outputs for ``X`` (n, time, features), or token ids (n, time), on
    ``device`` ("cpu" or "cuda"). With ``drop``, dropout stays on (Monte-Carlo
    dropout), its masks drawn from ``seed``."""
    return resolve_engine(device).predict(net, X, drop=drop, seed=seed, step=step, row0=row0)


def run_epochs(net, trainer, record, epochs, train, evaluate=None):
    """The epoch loop every fit runs (but L-BFGS, whose iterations scipy drives and
    ``record`` keeps the same way).

    ``train(epoch)`` runs one epoch's batches and returns ``(loss, failed,
    n_batches)``: the epoch's mean training loss, the first batch (0-based) with a
    non-finite loss or gradient or -1, and the number of batches (None when not
    known ahead, as in a streamed fit). ``evaluate(logs)``, if given, adds the
    validation loss (and any metrics) to the epoch's ``logs``. ``record`` (an
    :class:`EpochRecord`, or one with its methods) keeps the history, the progress,
    early stopping and the snapshots; on a non-finite batch ``net`` keeps the
    weights from before it and :class:`NonFiniteLossError` says where; on
    ``KeyboardInterrupt`` ``record`` restores the last completed epoch and the
    interrupt propagates. Returns ``record.history``."""
    try:
        first = record.start(trainer)
        for epoch in range(first, epochs):
            loss, failed, n_batches = train(epoch)
            if failed >= 0:
                net.params[:] = trainer.get_params()
                raise non_finite(epoch, failed, n_batches)
            logs = {"loss": float(loss)}
            if evaluate is not None:
                evaluate(logs)
            if record.end_epoch(epoch, logs, trainer):
                break
    except KeyboardInterrupt:
        if record.snapshot is not None:
            record.interrupted(net, trainer)
        raise
    record.finish(net, trainer)
    return record.history


class _Progress:
    """Keras-style verbosity: 0 silent, 1 a tqdm bar, 2 one log line per epoch."""

    def __init__(self, verbose, epochs):
        self.verbose = verbose
        self.bar = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # tqdm is optional: fall back to one line per epoch
                self.verbose = 2
            else:
                self.bar = tqdm(total=epochs, unit="epoch", desc="fit", leave=True)

    def update(self, epoch, epochs, logs):
        text = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.verbose == 2:
            log.info("Epoch %d/%d - %s", epoch + 1, epochs, text)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class FitInterruptedWarning(UserWarning):
    """A fit was interrupted (Ctrl-C); the model keeps what the completed epochs learned."""


@dataclass
class TrainingState:
    """Everything a fit needs to continue after ``epoch`` completed epochs as if it
    had never stopped: what a checkpoint holds (see :mod:`numlstm.core.checkpoint`).

    ``params`` are the weights after those epochs, ``optimizer_state`` the (2,
    n_params) optimizer moments and ``step`` the update count, ``rng_state``
    the shuffling generator's ``bit_generator.state`` before the next epoch's
    draws, ``dropout_seed`` the seed of the dropout masks, ``history`` the
    per-epoch logs (in a checkpoint; None in the loop's own snapshots), for
    early stopping ``best_loss``, ``best_params`` (None before a first
    improvement) and ``wait``, and ``fingerprint`` (see :func:`fit_fingerprint`)."""

    epoch: int
    params: np.ndarray
    optimizer_state: np.ndarray
    step: int
    rng_state: dict
    dropout_seed: int
    history: dict
    best_loss: float = math.inf
    best_params: np.ndarray = None
    wait: int = 0
    fingerprint: str = ""


def fit_fingerprint(net, arrays, settings):
    """A digest of what decides a fit's course besides its length: the network's layout,
    the training (and validation) ``arrays`` and the ``settings``. A checkpoint keeps
    it, so that ``resume`` refuses other data or other settings instead of quietly
    ending somewhere else."""
    digest = hashlib.sha256()
    for a in (net.table, net.head, *arrays):
        if a is None:
            digest.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.reshape(-1).view(np.uint8))
    digest.update(repr(settings).encode())
    return digest.hexdigest()


class EpochRecord:
    """What every epoch loop keeps: the per-epoch logs, the progress display, early
    stopping on ``val_loss`` (or ``loss`` without validation), and a snapshot of
    the last completed epoch, from which an interrupted fit keeps its weights and
    a checkpoint is written.

    A loop calls :meth:`start` once (it returns the first epoch to run, later
    than 0 when resuming), :meth:`end_epoch` after each epoch, :meth:`finish` at
    the end and :meth:`interrupted` on ``KeyboardInterrupt``. ``checkpoint``, a
    callable taking a :class:`TrainingState`, is called every
    ``checkpoint_every`` completed epochs and at an interrupt; ``resume``, a
    :class:`TrainingState`, continues a fit from it.
    """

    def __init__(self, validating, early_stopping, patience, verbose, epochs, *, rng=None, dropout_seed=0,
                 checkpoint=None, checkpoint_every=1, resume=None):
        self.history = {"loss": [], "val_loss": []} if validating else {"loss": []}
        self.monitor = "val_loss" if validating else "loss"
        self.early_stopping, self.patience, self.epochs = early_stopping, patience, epochs
        self.progress = _Progress(verbose, epochs)
        self.best = (np.inf, None)
        self.wait = 0
        self.rng, self.dropout_seed = rng, int(dropout_seed)
        self.checkpoint, self.checkpoint_every, self.resume = checkpoint, checkpoint_every, resume
        self.completed = 0
        self.snapshot = None
        self.written = -1
        self.fingerprint = ""

    def start(self, trainer):
        """Take the starting snapshot, after restoring ``resume`` into ``trainer``, this
        record and the generator; returns the first epoch to run."""
        state = self.resume
        if state is not None:
            if set(state.history) != set(self.history):
                raise ValueError(
                    f"the checkpoint was written by a fit {'with' if 'val_loss' in state.history else 'without'} "
                    f"validation, and this fit is {'with' if 'val_loss' in self.history else 'without'}; resume "
                    "with the same settings and data as the interrupted fit.")
            for key, values in state.history.items():
                self.history[key][:] = [float(v) for v in values]
            self.best = (state.best_loss, None if state.best_params is None else state.best_params.copy())
            self.wait = state.wait
            trainer.set_params(state.params)
            trainer.set_optimizer_state(state.optimizer_state, state.step)
            if self.rng is not None:
                self.rng.bit_generator.state = state.rng_state
            self.dropout_seed = state.dropout_seed
            if state.fingerprint and self.fingerprint and state.fingerprint != self.fingerprint:
                raise ValueError(
                    "the checkpoint was written by a fit with other data or other settings (batch size, "
                    "optimizer, learning rate, loss, clipping, dropout, early stopping, validation or network "
                    "layout); resume with the same data and parameters as the interrupted fit (only epochs "
                    "may change).")
            self.completed = self.written = state.epoch
            if self.early_stopping and self.wait >= self.patience:  # the fit had stopped early there
                self.snapshot = self._state(trainer)
                return self.epochs
        self.snapshot = self._state(trainer)
        return self.completed

    def _state(self, trainer, best=None, wait=None, completed=None):
        optimizer_state, step = trainer.get_optimizer_state()
        best = self.best if best is None else best
        return TrainingState(
            epoch=self.completed if completed is None else completed, params=trainer.get_params(),
            optimizer_state=optimizer_state, step=int(step),
            rng_state=None if self.rng is None else self.rng.bit_generator.state, dropout_seed=self.dropout_seed,
            history=None, best_loss=float(best[0]),  # the history is self.history's first `epoch` entries
            best_params=best[1], wait=self.wait if wait is None else wait, fingerprint=self.fingerprint)

    def end_epoch(self, epoch, logs, trainer):
        """Record ``logs``; True when early stopping ends the fit here."""
        for key, value in logs.items():
            self.history[key].append(value)
        self.progress.update(epoch, self.epochs, logs)
        best, wait, stop = self.best, self.wait, False
        if self.early_stopping:
            if logs[self.monitor] < best[0]:
                best, wait = (logs[self.monitor], trainer.get_params()), 0
            else:
                wait += 1
                stop = wait >= self.patience
        snapshot = self._state(trainer, best, wait, epoch + 1)
        # Committed together, after the copies: an interrupt lands before or after, never half-way.
        self.best, self.wait, self.completed, self.snapshot = best, wait, epoch + 1, snapshot
        if self.checkpoint is not None and self.completed % self.checkpoint_every == 0:
            self._write()
        return stop

    def _write(self):
        epoch = self.snapshot.epoch
        self.checkpoint(replace(self.snapshot, history={k: list(v[:epoch]) for k, v in self.history.items()}))
        self.written = epoch

    def best_params(self):
        """The weights of the best epoch under early stopping, else None."""
        return self.best[1] if self.early_stopping else None

    def finish(self, net, trainer):
        """The fit ran to its end: the best weights (under early stopping) or the last ones into ``net``."""
        best = self.best_params()
        net.params[:] = best if best is not None else trainer.get_params()

    def interrupted(self, net, trainer):
        """After a ``KeyboardInterrupt``: ``net`` gets the weights of the last completed epoch
        (the best ones under early stopping), the history drops a half-recorded epoch,
        the checkpoint (if any) is written, and a warning says what was kept."""
        snapshot = self.snapshot
        for values in self.history.values():
            del values[snapshot.epoch:]
        best = self.best_params() if snapshot.epoch > 0 else None
        try:
            trainer.set_params(snapshot.params)
            trainer.set_optimizer_state(snapshot.optimizer_state, snapshot.step)
        except Exception:  # noqa: BLE001 - a trainer on a broken device or cluster: the host copy is enough
            pass
        # After the trainer: the CPU trainer's weights are net.params itself.
        net.params[:] = best if best is not None else snapshot.params
        where = ""
        if self.checkpoint is not None and self.written != snapshot.epoch:
            self._write()
            where = "; a checkpoint of it was written"
        warn_interrupted(snapshot.epoch, self.epochs, best=best is not None, where=where)


def warn_interrupted(completed, epochs, *, best=False, where=""):
    """Issue the :class:`FitInterruptedWarning` of a fit interrupted after ``completed`` of
    ``epochs`` epochs, whose model keeps the best epoch's weights (``best``) or the last
    completed epoch's; ``where`` is appended (e.g. that a checkpoint was written). The
    warning names the user's line: the first caller outside numlstm, however deep the
    front door's path to the loop."""
    kept = ("its initial weights" if completed == 0 else
            "the best epoch's weights" if best else f"the weights of epoch {completed}")
    warnings.warn(f"fit interrupted after {completed} completed epoch(s) of {epochs}; the model keeps "
                  f"{kept} and their history{where}.", FitInterruptedWarning, stacklevel=_user_stacklevel())


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_stacklevel():
    """The ``stacklevel`` of the first frame outside numlstm, as seen by a
    :func:`warnings.warn` called from this function's caller."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def fit(net, X, Y, M, *, epochs, batch_size, loss_id, lparams, optimizer, clipnorm,
        validation_fraction, early_stopping, patience, rng, verbose, X_val=None, Y_val=None, M_val=None,
        device="cpu", client=None, drop=None, history=None, checkpoint=None, checkpoint_every=1, resume=None):
    """Train ``net`` in place; returns the history dict.

    ``X`` (n, time, features), ``Y``/``M`` (n, targets): targets and mask.
    ``validation_fraction`` holds out the *last* fraction of samples, as Keras
    does, unless ``X_val`` is given. On a non-finite loss or gradient the
    weights stay at their last good values and :class:`NonFiniteLossError`
    names the epoch and batch. With a dask.distributed ``client``, gradients are
    computed data-parallel on its workers (:mod:`numlstm.core.distributed`).
    ``drop`` is ``(dropout, recurrent_dropout)``: the masks are drawn from a seed
    taken from ``rng`` (only when a rate is not zero, so a fit without dropout
    draws exactly what it always did) and the update step.

    On ``KeyboardInterrupt`` (on every engine) the interrupt propagates, and
    ``net`` keeps the weights of the last completed epoch (the best ones under
    early stopping); ``history``, a dict given by the caller, is filled in place
    with the completed epochs' logs, so the caller keeps them too. ``checkpoint``
    (a callable taking a :class:`TrainingState`) is called every
    ``checkpoint_every`` epochs and at an interrupt; ``resume`` (a
    :class:`TrainingState` of a fit with the same arguments) continues that fit
    to the result it would have had. Neither applies to L-BFGS.
    """
    engine = resolve_engine(device, client)
    if X_val is None and validation_fraction > 0:
        n_val = int(math.ceil(validation_fraction * X.shape[0]))
        if n_val >= X.shape[0]:
            raise ValueError(
                f"validation_fraction={validation_fraction} leaves no training samples out of {X.shape[0]}; "
                "use a smaller fraction or more data.")
        X, X_val = X[:-n_val], X[-n_val:]
        Y, Y_val = Y[:-n_val], Y[-n_val:]
        M, M_val = M[:-n_val], M[-n_val:]
    validating = X_val is not None and X_val.shape[0] > 0
    drop = _drop(drop)
    if drop.any():
        engine.require("dropout", "dropout", "fit without client= (on this process's CPU or the GPU), or with "
                       "dropout=0 and recurrent_dropout=0.")
    if drop.ndim == 2 and (drop[:, PER_STEP].any() or drop[-1, RATE] > 0):
        engine.require("dropout_plans", "a dropout plan with per-step input masks or dropout on the head's input "
                       "(Keras Dropout layers)", "train it on this process's CPU (device='cpu').")
    if X.ndim == 2:
        engine.require("tokens", "token input", "fit on device='cpu'.")
    if isinstance(optimizer, LBFGS):
        engine.require("lbfgs", "optimizer='lbfgs'", "it runs on the CPU of this process only: use device='cpu' "
                       "without a client, or Adam/SGD.")
    if checkpoint is not None or resume is not None:
        engine.require("checkpoint", "checkpoint= and resume=", "load the data (stream=False) or fit without them.")
    seed = int(rng.integers(2 ** 62)) if drop.any() else 0
    record = EpochRecord(validating, early_stopping, patience, verbose, epochs, rng=rng, dropout_seed=seed,
                         checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    if history is not None:  # the caller's dict, filled as the epochs complete
        history.clear()
        history.update(record.history)
        record.history = history
    history, progress = record.history, record.progress
    trainer = None
    try:
        if isinstance(optimizer, LBFGS):
            if drop.any():
                raise ValueError("optimizer='lbfgs' needs a deterministic loss, and dropout makes it random; use "
                                 "optimizer='adam' (or 'sgd') with dropout, or dropout=0 and recurrent_dropout=0.")
            if checkpoint is not None or resume is not None:
                raise ValueError("checkpoint= and resume= work with optimizer='adam' or 'sgd'; L-BFGS keeps its "
                                 "state inside scipy, so it cannot be saved and continued.")
            trainer = _FullBatch(net)
            try:
                record.start(trainer)
                _fit_lbfgs(net, X, Y, M, epochs, loss_id, lparams, optimizer, kernel_threads(), record, trainer,
                           (X_val, Y_val, M_val) if validating else None)
            except KeyboardInterrupt:
                record.interrupted(net, trainer)
                raise
            record.finish(net, trainer)
            return history
        n = X.shape[0]
        batch_size = min(batch_size, n)
        if resume is not None:
            if resume.params.shape != net.params.shape or resume.optimizer_state.shape != (2, net.n_params):
                raise ValueError(
                    f"the checkpoint holds {resume.params.shape[0]} weights but this network has {net.n_params}; "
                    "resume with the same model settings and data as the interrupted fit.")
            seed = resume.dropout_seed
        trainer = engine.trainer(net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm, drop=drop,
                                 seed=seed, client=client)
        if checkpoint is not None or resume is not None:
            record.fingerprint = fit_fingerprint(
                net, (X, Y, M, X_val, Y_val, M_val) if validating else (X, Y, M),
                (batch_size, loss_id, np.asarray(lparams).tolist(), optimizer.kind, optimizer.hyperparams().tolist(),
                 float(clipnorm or 0.0), drop.tolist(), bool(early_stopping), int(patience), validating))
        batch_losses = np.zeros((n + batch_size - 1) // batch_size)
        batch_sizes = np.diff(np.minimum(np.arange(len(batch_losses) + 1) * batch_size, n))

        def train(epoch):
            failed = trainer.epoch(rng.permutation(n).astype(np.int64), batch_losses)
            return float(np.dot(batch_losses, batch_sizes) / n), failed, len(batch_losses)

        def evaluate(logs):
            logs["val_loss"] = float(trainer.dataset_loss(X_val, Y_val, M_val))

        return run_epochs(net, trainer, record, epochs, train, evaluate if validating else None)
    finally:
        progress.close()
        if trainer is not None:
            trainer.close()


class _FullBatch:
    """The epoch loop's view of an L-BFGS fit: the weights live in ``net.params``,
    and scipy keeps the optimizer's state (none of it is saved or restored)."""

    def __init__(self, net):
        self.net = net

    def get_params(self):
        return self.net.params.copy()

    def set_params(self, params):
        self.net.params[:] = params

    def get_optimizer_state(self):
        return np.zeros((2, self.net.n_params), dtype=self.net.dtype), 0

    def set_optimizer_state(self, state, step):
        pass

    def dataset_loss(self, X, Y, M):  # pragma: no cover - _fit_lbfgs computes it itself
        raise NotImplementedError

    def epoch(self, order, batch_losses):  # pragma: no cover - scipy runs the iterations
        raise NotImplementedError

    def close(self):
        pass


class _StopEarly(Exception):
    """Raised from scipy's callback when early stopping ends an L-BFGS fit."""


def _fit_lbfgs(net, X, Y, M, epochs, loss_id, lparams, optimizer, n_threads, record, trainer, validation):
    """Full-batch L-BFGS (scipy), one iteration an epoch, recorded by ``record`` (through
    ``trainer``, the fit's ``_FullBatch`` view of ``net``) like any other epoch: history,
    progress, early stopping and its best weights, Ctrl-C."""
    from scipy.optimize import minimize

    grads = aligned_zeros(net.n_params, net.dtype)
    iteration = [0]
    last = {"p": None, "loss": None}  # the iterate scipy accepts was evaluated last: reuse its loss

    def fun(p):
        params = p.astype(net.dtype)
        loss = batch_loss_grad(params, grads, net.table, net.head, X, Y, M, loss_id, lparams, n_threads)
        if not (math.isfinite(loss) and np.isfinite(grads).all()):
            raise NonFiniteLossError(
                f"the loss or its gradient became NaN or infinite in L-BFGS iteration {iteration[0] + 1} "
                "(full batch); the model keeps the weights from before it.")
        last["p"], last["loss"] = p.copy(), loss
        return loss, grads.astype(np.float64)

    def callback(p):
        net.params[:] = p
        loss = last["loss"] if last["p"] is not None and np.array_equal(last["p"], p) else fun(p)[0]
        logs = {"loss": float(loss)}
        if validation is not None:
            Xv, Yv, Mv = validation
            logs["val_loss"] = float(dataset_loss(net.params, net.table, net.head, Xv, Yv, Mv, loss_id, lparams,
                                                  n_threads))
        stop = record.end_epoch(iteration[0], logs, trainer)
        iteration[0] += 1
        if stop:
            raise _StopEarly

    try:
        result = minimize(fun, net.params.astype(np.float64), jac=True, method="L-BFGS-B", callback=callback,
                          options={"maxiter": epochs, "maxcor": optimizer.memory, "ftol": optimizer.tol,
                                   "gtol": optimizer.tol})
    except _StopEarly:
        return
    net.params[:] = result.x
