"""Data-parallel training on a dask.distributed cluster.

The training windows are split into one contiguous shard per worker and sent
there once. For every batch (the same shuffled batches as a single-process
fit), each worker computes the loss and gradient over the batch's windows in
its shard, as *sums* over its unmasked targets; the client adds the workers'
sums, divides by the batch's total count, clips and applies the update, and
sends the new weights with the next batch. The update is synchronous, so the
result equals single-process training on the same batches up to the order of
floating-point additions.

A worker lost during the fit (killed, out of memory, its machine gone) takes
its shard with it. The batch it was part of is then computed again: the
shards are scattered anew, from the client's copy, over the workers still
there (or new ones, within ``WORKER_WAIT`` seconds), up to ``RETRIES`` times
per batch. The update is applied only once every shard's gradient is in, so
a retried batch gives the numbers it would have given. A batch that gets no
answer within ``BATCH_TIMEOUT`` seconds counts as failed too. While it waits,
the client looks every ``POLL`` seconds whether a shard or a gradient task
was lost (its data gone with a worker, the task cancelled or failed), so a
lost worker costs seconds, not the whole timeout. When no retry succeeds the fit stops with a :class:`WorkerLostError` saying so:
never a hang. (A fit with ``checkpoint=`` can then be resumed.)

Only the mean losses with one count per target (mse, mae, huber, pinball,
gaussian_nll, binary cross-entropy) split this way; the Forecaster uses mse
or pinball.
"""

import math
import time

import numpy as np

from numlstm._threads import kernel_threads
from numlstm.core import losses as _losses
from numlstm.core.cpu_engine import batch_loss_grad
from numlstm.core.engines import CpuTrainer, Engine, cpu_predict
from numlstm._aligned import aligned_zeros
from numlstm.core.optimizers import apply_update

RETRIES = 3  # attempts per batch after the first, each on freshly scattered shards
BATCH_TIMEOUT = 600.0  # seconds one batch may take on the cluster before it counts as lost
WORKER_WAIT = 60.0  # seconds to wait for a worker when none is left
POLL = 1.0  # seconds between checks for lost shards while a batch runs


class WorkerLostError(RuntimeError):
    """The cluster lost workers during a ``client=`` fit and the work could not be done again."""


SPLITTABLE = {_losses.MSE, _losses.MAE, _losses.HUBER, _losses.PINBALL, _losses.GAUSSIAN_NLL,
              _losses.BINARY_CE}


def _shard_gradient(shard, rows, params, table, head, loss_id, lparams):
    """On a worker: (gradient sum, loss sum, count) over ``rows`` of its shard."""
    X, Y, M = shard
    grads = aligned_zeros(params.size, params.dtype)
    Mb = M[rows]
    count = float(Mb.sum())
    if count == 0.0:
        return grads, 0.0, 0.0
    loss = batch_loss_grad(params, grads, table, head, X[rows], Y[rows], Mb, loss_id, lparams, kernel_threads())
    return grads * count, loss * count, count


class DistributedTrainer(CpuTrainer):
    """The epoch loop's view of a cluster: weights and optimizer state on the client,
    windows and gradient work on the workers (validation loss, weights: as on the CPU)."""

    def __init__(self, net, X, Y, M, batch_size, loss_id, lparams, optimizer, clipnorm, drop=None, seed=0, *,
                 client):
        if loss_id not in SPLITTABLE:
            raise ValueError("data-parallel training supports the per-target mean losses (mse, mae, huber, "
                             "pinball, gaussian_nll, binary cross-entropy); fit categorical models without a "
                             "client.")
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise ValueError("the dask client has no workers; start some (e.g. LocalCluster(n_workers=2)) or fit "
                             "without client=.")
        self.client, self.net = client, net
        self.data = (X, Y, M)  # the client's copy, to scatter again when a worker is lost
        n = X.shape[0]
        self.bounds = np.linspace(0, n, len(workers) + 1).astype(np.int64)
        self.shards = []
        self._scatter(workers)
        self.batch_size, self.loss_id, self.lparams = batch_size, loss_id, lparams
        self.kind, self.hp = optimizer.kind, optimizer.hyperparams()
        self.clipnorm = float(clipnorm or 0.0)
        self.state = np.zeros((2, net.n_params), dtype=net.dtype)
        self.step = 0
        self.n_threads = kernel_threads()

    def _scatter(self, workers):
        """Send shard ``k`` to ``workers[k % len(workers)]``.

        Each scatter gets new random keys (``hash=False``): scattered again after a lost
        worker, the same arrays would otherwise get the keys just cancelled, and the
        scheduler could forget the new copies as it releases the old ones (the batch then
        waited for data no worker held)."""
        X, Y, M = self.data
        self.shards = [self.client.scatter((X[lo:hi], Y[lo:hi], M[lo:hi]), workers=[workers[k % len(workers)]],
                                           direct=True, hash=False)
                       for k, (lo, hi) in enumerate(zip(self.bounds[:-1], self.bounds[1:]))]

    def _rescatter(self, failure):
        """After a lost worker: drop the shards and scatter them again over the workers there are."""
        from distributed import TimeoutError as DaskTimeout

        try:
            self.close()
        except Exception:  # noqa: BLE001 - the scheduler may have lost them already
            self.shards = []
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT)
        except (DaskTimeout, TimeoutError, OSError) as err:
            raise WorkerLostError(
                f"the dask cluster lost its workers during the client= fit ({failure}) and none came back within "
                f"{WORKER_WAIT:g} s ({type(err).__name__}); restart the cluster and fit again (with checkpoint= "
                "to keep the progress).") from None
        self._scatter(sorted(self.client.scheduler_info()["workers"]))

    def _batch(self, idx):
        failure = None
        for attempt in range(RETRIES + 1):
            if attempt:
                self._rescatter(failure)
            try:
                return self._batch_once(idx)
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as err:  # noqa: BLE001 - a lost worker shows as many exception types
                failure = f"{type(err).__name__}: {err}"
        raise WorkerLostError(
            f"a batch of the client= fit failed {RETRIES + 1} times on the dask cluster, its shards scattered "
            f"anew each time; the last failure: {failure}. Check the workers' logs (memory, crashes).")

    def _batch_once(self, idx):
        net = self.net
        futures = []
        for k, shard in enumerate(self.shards):
            lo, hi = self.bounds[k], self.bounds[k + 1]
            rows = np.sort(idx[(idx >= lo) & (idx < hi)]) - lo
            if rows.size:
                futures.append(self.client.submit(_shard_gradient, shard, rows, net.params, net.table, net.head,
                                                  self.loss_id, self.lparams, pure=False))
        self._wait(futures)
        grads, loss, count = np.zeros(net.n_params), 0.0, 0.0
        for g, l_sum, c in self.client.gather(futures):
            grads += g
            loss += l_sum
            count += c
        if count == 0.0:
            return 0.0, np.zeros_like(net.params)
        return loss / count, (grads / count).astype(net.dtype)

    def _wait(self, futures):
        """Wait for a batch's gradient tasks; raise as soon as one of them or a shard is lost."""
        from distributed import wait

        shards = [future for shard in self.shards for future in shard]
        deadline = time.monotonic() + BATCH_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the cluster within BATCH_TIMEOUT={BATCH_TIMEOUT:g} s")
            try:
                wait(futures, timeout=min(POLL, left))
                return
            except TimeoutError:  # dask's is the builtin since Python 3.11
                pass
            for future in futures + shards:
                if future.status in ("lost", "cancelled", "error"):
                    raise RuntimeError(f"a task of the batch is {future.status} (key {future.key})")
            missing = [key for key, workers in self.client.who_has(shards).items() if not workers]
            if missing:
                raise RuntimeError(f"{len(missing)} shard part(s) no longer held by any worker")

    def epoch(self, order, batch_losses):
        n = order.shape[0]
        for bi, start in enumerate(range(0, n, self.batch_size)):
            loss, grads = self._batch(order[start:start + self.batch_size])
            norm = math.sqrt(float(np.dot(grads.astype(np.float64), grads.astype(np.float64))))
            if not (math.isfinite(loss) and math.isfinite(norm)):
                return bi
            if self.clipnorm > 0 and norm > self.clipnorm:
                grads *= self.clipnorm / norm
            self.step += 1
            apply_update(self.kind, self.net.params, grads, self.state, self.step, self.hp)
            batch_losses[bi] = loss
        return -1

    def close(self):
        """Release the shards on the workers."""
        self.client.cancel([future for shard in self.shards for future in shard])
        self.shards = []


# Gradients on the workers, the update and the validation loss on the client; a
# model from it predicts on this process's CPU. Dropout masks are drawn per batch
# row on one process, L-BFGS needs the full batch there, and per-series models
# are spread over a cluster by the Forecaster itself (mode='local' with client=).
ENGINE = Engine("dask", "a dask.distributed cluster (client=)", dropout=False, dropout_plans=False, lbfgs=False,
                tokens=True, checkpoint=True, per_series=True, trainer=DistributedTrainer, predict=cpu_predict)
