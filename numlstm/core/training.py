"""Stacked forward/backward on batches and the training loop, for LSTM and GRU networks.

One call of :func:`train_epoch` runs every batch of an epoch inside compiled
code (gather, forward, loss, backward, clipping, update), so a fit with
``batch_size=1`` costs microseconds per step, not a Python round trip.

The loop, the dense head, the loss and the update are written once
(``_network_forward``, ``_batch_loss_grad``, ``_train_epoch``,
``_predict_rows``, ``_dataset_loss``); only the pass through the stack of
recurrent layers differs between cells (``_lstm_forward_stack`` and
``_gru_forward_stack``, and their backward twins). :func:`_compile_for_cell`
compiles the shared functions once per cell, each calling that cell's stack,
so an LSTM fit never compiles or branches on GRU code; the public functions
read the network's cell from ``table`` and call its kernels, once per call
(an epoch, a batch), never per step.
"""

import logging
import math
from types import FunctionType, SimpleNamespace

import numpy as np
from numba import njit

from numlstm._threads import kernel_threads
from numlstm._validation import CELLS
from numlstm.core import losses as _losses
from numlstm.core.network import CELL_COLUMN
from numlstm.core.optimizers import LBFGS, apply_update
from numlstm.kernels import gru_cpu
from numlstm.kernels._jit import CPU_OPTIONS
from numlstm.kernels.cpu import FIRST, add_gram, add_tile, layer_backward, layer_forward, chunk_count

log = logging.getLogger("numlstm")

# Plain error model, no fastmath: the loss and the norm must see NaN and inf.
_CHECKED = dict(error_model="numpy", nogil=True, cache=CPU_OPTIONS["cache"])

PREDICT_ROWS = 4096  # rows per predict pass: bounds the workspace, not the speed


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the model keeps its last good weights."""


@njit(**_CHECKED)
def _views(params, table, layer):
    I, H, oW, oU, ob = table[layer, 0], table[layer, 1], table[layer, 2], table[layer, 3], table[layer, 4]
    G = 4 * H
    return params[oW:oU].reshape((I, G)), params[oU:ob].reshape((H, G)), params[ob:ob + G]


@njit(**_CHECKED)
def _gru_views(params, table, layer):
    I, H, oW, oU, ob = table[layer, 0], table[layer, 1], table[layer, 2], table[layer, 3], table[layer, 4]
    G = 3 * H
    return params[oW:oU].reshape((I, G)), params[oU:ob].reshape((H, G)), params[ob:ob + 2 * G].reshape((2, G))


@njit(**_CHECKED)
def _head_views(params, head):
    H, O, oW, ob = head[0], head[1], head[2], head[3]
    return params[oW:ob].reshape((H, O)), params[ob:ob + O]


# --- the stack of recurrent layers: one forward and one backward per cell ----------------------
#
# ``*_forward_stack(params, table, X, chunks)`` returns three lists with one
# array per layer, the last of them the hidden states; ``*_backward_stack(params,
# grads, table, X, first, second, hs_list, dhs, chunks)`` takes them and ``dhs``,
# the gradient reaching the top layer's hidden states, and writes every layer's
# weight gradients into ``grads``. Inlined into their callers at the Numba IR
# level: as functions of their own they would each link and optimize the
# layer kernels once more, which made compiling an LSTM fit 10% slower.


@njit(inline="always", **_CHECKED)
def _lstm_forward_stack(params, table, X, chunks):
    """Every LSTM layer forward: per-layer pre-activations, cell states and hidden states."""
    n, T = X.shape[0], X.shape[1]
    zs_list, cs_list, hs_list = [], [], []
    inp = X
    for layer in range(table.shape[0]):
        W, U, b = _views(params, table, layer)
        H = U.shape[0]
        zs = np.empty((n, T, 4 * H), dtype=X.dtype)
        cs = np.empty((n, T, H), dtype=X.dtype)
        hs = np.empty((n, T, H), dtype=X.dtype)
        zeros = np.zeros((n, H), dtype=X.dtype)
        layer_forward(inp, W, U, b, zeros, zeros, zs, cs, hs, chunks)
        zs_list.append(zs)
        cs_list.append(cs)
        hs_list.append(hs)
        inp = hs
    return zs_list, cs_list, hs_list


@njit(inline="always", **_CHECKED)
def _lstm_backward_stack(params, grads, table, X, zs_list, cs_list, hs_list, dhs, chunks):
    n = X.shape[0]
    for layer in range(table.shape[0] - 1, -1, -1):
        W, U, _ = _views(params, table, layer)
        dW, dU, db = _views(grads, table, layer)
        H = U.shape[0]
        inp = X if layer == 0 else hs_list[layer - 1]
        zeros = np.zeros((n, H), dtype=X.dtype)
        dx = np.empty(inp.shape, dtype=X.dtype)
        layer_backward(inp, W, U, zeros, zeros, zs_list[layer], cs_list[layer], hs_list[layer], dhs,
                       np.zeros((n, H), dtype=X.dtype), np.zeros((n, H), dtype=X.dtype),
                       dW, dU, db, dx, chunks, layer > 0)
        dhs = dx


@njit(inline="always", **_CHECKED)
def _gru_forward_stack(params, table, X, chunks):
    """Every GRU layer forward: per-layer input projections, recurrent projections and hidden states."""
    n, T = X.shape[0], X.shape[1]
    xs_list, gs_list, hs_list = [], [], []
    inp = X
    for layer in range(table.shape[0]):
        W, U, b = _gru_views(params, table, layer)
        H = U.shape[0]
        xs = np.empty((n, T, 3 * H), dtype=X.dtype)
        gs = np.empty((n, T, 3 * H), dtype=X.dtype)
        hs = np.empty((n, T, H), dtype=X.dtype)
        gru_cpu.layer_forward(inp, W, U, b, np.zeros((n, H), dtype=X.dtype), xs, gs, hs, chunks)
        xs_list.append(xs)
        gs_list.append(gs)
        hs_list.append(hs)
        inp = hs
    return xs_list, gs_list, hs_list


@njit(inline="always", **_CHECKED)
def _gru_backward_stack(params, grads, table, X, xs_list, gs_list, hs_list, dhs, chunks):
    n = X.shape[0]
    for layer in range(table.shape[0] - 1, -1, -1):
        W, U, _ = _gru_views(params, table, layer)
        dW, dU, db = _gru_views(grads, table, layer)
        H = U.shape[0]
        inp = X if layer == 0 else hs_list[layer - 1]
        dx = np.empty(inp.shape, dtype=X.dtype)
        gru_cpu.layer_backward(inp, W, U, np.zeros((n, H), dtype=X.dtype), xs_list[layer], gs_list[layer],
                               hs_list[layer], dhs, np.zeros((n, H), dtype=X.dtype), dW, dU, db, dx, chunks,
                               layer > 0)
        dhs = dx


# --- written once for every cell; compiled per cell by _compile_for_cell -----------------------


def _forward_stack(params, table, X, chunks):  # pragma: no cover - each cell's kernels call their own
    raise NotImplementedError("replaced by the cell's forward stack in _compile_for_cell")


def _backward_stack(params, grads, table, X, first, second, hs_list, dhs, chunks):  # pragma: no cover
    raise NotImplementedError("replaced by the cell's backward stack in _compile_for_cell")


def _network_forward(params, table, head, X, n_threads):
    """Forward through every layer and the head. Returns the head's output
    (n, O) and the per-layer lists of the stack's forward pass (see above)."""
    n, T = X.shape[0], X.shape[1]
    chunks = chunk_count(n, n_threads)
    first, second, hs_list = _forward_stack(params, table, X, chunks)
    Wd, bd = _head_views(params, head)
    out = np.empty((n, 1, Wd.shape[1]), dtype=X.dtype)
    out[:, 0, :] = bd
    add_tile(out, FIRST, hs_list[-1], T - 1, Wd, FIRST, n)
    return out[:, 0, :], first, second, hs_list


def _batch_loss_grad(params, grads, table, head, Xb, Yb, Mb, loss_id, lparams, n_threads):
    """Loss on one batch; writes the gradient of every parameter into ``grads``."""
    n, T = Xb.shape[0], Xb.shape[1]
    chunks = chunk_count(n, n_threads)
    pred, first, second, hs_list = _network_forward(params, table, head, Xb, n_threads)
    dpred64 = np.empty(pred.shape, dtype=np.float64)
    loss = _losses.loss_and_grad(loss_id, lparams, pred, Yb, Mb, dpred64)
    dpred = dpred64.astype(Xb.dtype)
    top = hs_list[-1]
    Htop = top.shape[2]
    last = np.ascontiguousarray(top[:, T - 1, :])
    dWd, dbd = _head_views(grads, head)
    Wd, _ = _head_views(params, head)
    dWd[:, :] = 0
    add_gram(dWd, np.ascontiguousarray(last.T), dpred)
    dbd[:] = dpred.sum(axis=0)
    dhs = np.zeros((n, T, Htop), dtype=Xb.dtype)
    add_tile(dhs, T - 1, dpred.reshape((n, 1, dpred.shape[1])), FIRST, np.ascontiguousarray(Wd.T), FIRST, n)
    _backward_stack(params, grads, table, Xb, first, second, hs_list, dhs, chunks)
    return loss


@njit(**_CHECKED)
def global_norm(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += float(v[i]) * float(v[i])
    return math.sqrt(s)


def _train_epoch(params, grads, table, head, X, Y, M, order, batch_size, loss_id, lparams,
                 opt_kind, hp, state, step, clipnorm, n_threads, batch_losses):
    """All batches of one epoch, in the order given. Returns ``(failed_batch, step)``:
    ``failed_batch`` is -1, or the index of the first batch whose loss or
    gradient was not finite (its update is not applied)."""
    n = order.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    for bi in range(n_batches):
        idx = order[bi * batch_size: min(n, (bi + 1) * batch_size)]
        loss = _batch_loss_grad(params, grads, table, head, X[idx], Y[idx], M[idx], loss_id, lparams, n_threads)
        norm = global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return bi, step
        if clipnorm > 0 and norm > clipnorm:
            grads *= clipnorm / norm
        step += 1
        apply_update(opt_kind, params, grads, state, step, hp)
        batch_losses[bi] = loss
    return -1, step


def _predict_rows(params, table, head, X, n_threads, out):
    """Head outputs for every row of ``X`` into ``out``, ``PREDICT_ROWS`` at a time."""
    n = X.shape[0]
    for start in range(0, n, PREDICT_ROWS):
        stop = min(n, start + PREDICT_ROWS)
        out[start:stop] = _network_forward(params, table, head, X[start:stop], n_threads)[0]


def _dataset_loss(params, table, head, X, Y, M, loss_id, lparams, n_threads):
    """Mean loss over a whole data set, evaluated in ``PREDICT_ROWS`` passes."""
    out = np.empty((X.shape[0], head[1]), dtype=X.dtype)
    _predict_rows(params, table, head, X, n_threads, out)
    dummy = np.empty(out.shape, dtype=np.float64)
    return _losses.loss_and_grad(loss_id, lparams, out, Y, M, dummy)


_SHARED = (_network_forward, _batch_loss_grad, _train_epoch, _predict_rows, _dataset_loss)


def _compile_for_cell(cell, forward_stack, backward_stack):
    """The shared functions compiled for one cell: copies of them whose global names
    ``_forward_stack``/``_backward_stack`` are that cell's, and whose calls to one
    another stay within the cell (as :func:`numlstm.kernels.gates.gpu_twin` does
    for the GPU). Each copy has a qualified name of its own, hence its own
    on-disk cache file under ``NUMLSTM_CACHE=1``. Compiled lazily, on first call."""
    namespace = dict(globals())
    namespace.update(_forward_stack=forward_stack, _backward_stack=backward_stack)
    kernels = {}
    for fn in _SHARED:
        twin = FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        twin.__qualname__ = f"{fn.__qualname__}_{cell}"
        twin.__doc__ = fn.__doc__
        namespace[fn.__name__] = kernels[fn.__name__.lstrip("_")] = njit(**_CHECKED)(twin)
    return SimpleNamespace(**kernels)


_STACKS = {"lstm": (_lstm_forward_stack, _lstm_backward_stack), "gru": (_gru_forward_stack, _gru_backward_stack)}
# Indexed by the cell column of Network.table (the cell's position in CELLS).
_KERNELS = tuple(_compile_for_cell(cell, *_STACKS[cell]) for cell in CELLS)


def kernels_for(table):
    """The compiled training functions of the cell of the network described by ``table``."""
    return _KERNELS[table[0, CELL_COLUMN]]


def network_forward(params, table, head, X, n_threads):
    """Forward through every layer and the head: ``(out, first, second, hs_list)``,
    the head's output (n, O) and the per-layer arrays of the stack's forward pass."""
    return kernels_for(table).network_forward(params, table, head, X, n_threads)


def batch_loss_grad(params, grads, table, head, Xb, Yb, Mb, loss_id, lparams, n_threads):
    """Loss on one batch; writes the gradient of every parameter into ``grads``."""
    return kernels_for(table).batch_loss_grad(params, grads, table, head, Xb, Yb, Mb, loss_id, lparams, n_threads)


def train_epoch(params, grads, table, head, X, Y, M, order, batch_size, loss_id, lparams,
                opt_kind, hp, state, step, clipnorm, n_threads, batch_losses):
    """All batches of one epoch, in the order given, in one compiled call. Returns
    ``(failed_batch, step)``: ``failed_batch`` is -1, or the index of the first
    batch whose loss or gradient was not finite (its update is not applied)."""
    return kernels_for(table).train_epoch(params, grads, table, head, X, Y, M, order, batch_size, loss_id, lparams,
                                          opt_kind, hp, state, step, clipnorm, n_threads, batch_losses)


def predict_rows(params, table, head, X, n_threads, out):
    """Head outputs for every row of ``X`` into ``out``, ``PREDICT_ROWS`` at a time."""
    kernels_for(table).predict_rows(params, table, head, X, n_threads, out)


def dataset_loss(params, table, head, X, Y, M, loss_id, lparams, n_threads):
    """Mean loss over a whole data set, evaluated in ``PREDICT_ROWS`` passes."""
    return kernels_for(table).dataset_loss(params, table, head, X, Y, M, loss_id, lparams, n_threads)


def predict(net, X, device="cpu"):
    """Raw head outputs for ``X`` (n, time, features), on ``device`` ("cpu" or "cuda")."""
    if device == "cuda":
        from numlstm.core import gpu

        return gpu.predict(net, X)
    out = np.empty((X.shape[0], net.output_size), dtype=net.dtype)
    predict_rows(net.params, net.table, net.head, X, kernel_threads(), out)
    return out


class _CpuTrainer:
    """The epoch loop's view of the CPU: parameters in ``net.params``, one compiled call per epoch."""

    def __init__(self, net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm):
        self.net, self.X, self.Y, self.M = net, X, Y, M
        self.batch_size, self.loss_id, self.lparams = batch_size, loss_id, lparams
        self.optimizer, self.clipnorm = optimizer, float(clipnorm or 0.0)
        self.grads = np.zeros_like(net.params)
        self.state = np.zeros((2, net.n_params), dtype=net.dtype)
        self.hp = optimizer.hyperparams()
        self.step = 0
        self.n_threads = kernel_threads()

    def epoch(self, order, batch_losses):
        net = self.net
        failed, self.step = train_epoch(net.params, self.grads, net.table, net.head, self.X, self.Y, self.M, order,
                                        self.batch_size, self.loss_id, self.lparams, self.optimizer.kind, self.hp,
                                        self.state, self.step, self.clipnorm, self.n_threads, batch_losses)
        return failed

    def dataset_loss(self, X, Y, M):
        net = self.net
        return dataset_loss(net.params, net.table, net.head, X, Y, M, self.loss_id, self.lparams, self.n_threads)

    def get_params(self):
        return self.net.params.copy()

    def set_params(self, params):
        self.net.params[:] = params


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


class EpochRecord:
    """What every epoch loop keeps: the per-epoch logs, the progress display and
    early stopping on ``val_loss`` (or ``loss`` without validation)."""

    def __init__(self, validating, early_stopping, patience, verbose, epochs):
        self.history = {"loss": [], "val_loss": []} if validating else {"loss": []}
        self.monitor = "val_loss" if validating else "loss"
        self.early_stopping, self.patience, self.epochs = early_stopping, patience, epochs
        self.progress = _Progress(verbose, epochs)
        self.best = (np.inf, None)
        self.wait = 0

    def end_epoch(self, epoch, logs, trainer):
        """Record ``logs``; True when early stopping ends the fit here."""
        for key, value in logs.items():
            self.history[key].append(value)
        self.progress.update(epoch, self.epochs, logs)
        if not self.early_stopping:
            return False
        if logs[self.monitor] < self.best[0]:
            self.best = (logs[self.monitor], trainer.get_params())
            self.wait = 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    def best_params(self):
        """The weights of the best epoch under early stopping, else None."""
        return self.best[1] if self.early_stopping else None


def fit(net, X, Y, M, *, epochs, batch_size, loss_id, lparams, optimizer, clipnorm,
        validation_fraction, early_stopping, patience, rng, verbose, X_val=None, Y_val=None, M_val=None,
        device="cpu", client=None):
    """Train ``net`` in place; returns the history dict.

    ``X`` (n, time, features), ``Y``/``M`` (n, targets): targets and mask.
    ``validation_fraction`` holds out the *last* fraction of samples, as Keras
    does, unless ``X_val`` is given. On a non-finite loss or gradient the
    weights stay at their last good values and :class:`NonFiniteLossError`
    names the epoch and batch. With a dask.distributed ``client``, gradients are
    computed data-parallel on its workers (:mod:`numlstm.core.distributed`).
    """
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
    n_threads = kernel_threads()
    record = EpochRecord(validating, early_stopping, patience, verbose, epochs)
    history, progress = record.history, record.progress
    trainer = None
    try:
        if isinstance(optimizer, LBFGS):
            if device == "cuda" or client is not None:
                raise ValueError("optimizer='lbfgs' runs on the CPU of this process only; use device='cpu' "
                                 "without a client, or Adam/SGD.")
            _fit_lbfgs(net, X, Y, M, epochs, loss_id, lparams, optimizer, n_threads, history, progress,
                       (X_val, Y_val, M_val) if validating else None)
            return history
        n = X.shape[0]
        batch_size = min(batch_size, n)
        if client is not None:
            from numlstm.core.distributed import DistributedTrainer

            trainer = DistributedTrainer(client, net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm)
        elif device == "cuda":
            from numlstm.core.gpu import Trainer

            trainer = Trainer(net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm)
        else:
            trainer = _CpuTrainer(net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm)
        batch_losses = np.zeros((n + batch_size - 1) // batch_size)
        batch_sizes = np.diff(np.minimum(np.arange(len(batch_losses) + 1) * batch_size, n))
        for epoch in range(epochs):
            order = rng.permutation(n).astype(np.int64)
            failed = trainer.epoch(order, batch_losses)
            if failed >= 0:
                net.params[:] = trainer.get_params()
                raise NonFiniteLossError(
                    f"the loss or its gradient became NaN or infinite at epoch {epoch + 1}, batch {failed + 1} "
                    f"of {len(batch_losses)}; training stopped and the model keeps the weights from before that "
                    "batch. Try a lower learning_rate, clipnorm=1.0, or scaling the inputs and targets.")
            logs = {"loss": float(np.dot(batch_losses, batch_sizes) / n)}
            if validating:
                logs["val_loss"] = float(trainer.dataset_loss(X_val, Y_val, M_val))
            if record.end_epoch(epoch, logs, trainer):
                break
        best = record.best_params()
        net.params[:] = best if best is not None else trainer.get_params()
        return history
    finally:
        progress.close()
        if trainer is not None and hasattr(trainer, "close"):
            trainer.close()


def _fit_lbfgs(net, X, Y, M, epochs, loss_id, lparams, optimizer, n_threads, history, progress, validation):
    from scipy.optimize import minimize

    grads = np.zeros_like(net.params)
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
        for key, value in logs.items():
            history[key].append(value)
        progress.update(iteration[0], epochs, logs)
        iteration[0] += 1

    result = minimize(fun, net.params.astype(np.float64), jac=True, method="L-BFGS-B", callback=callback,
                      options={"maxiter": epochs, "maxcor": optimizer.memory, "ftol": optimizer.tol,
                               "gtol": optimizer.tol})
    net.params[:] = result.x
