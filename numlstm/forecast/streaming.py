"""Out-of-core training for the Forecaster: windows streamed one chunk of series at a time.

When the training data are dask-backed and too large to hold (with their
windows) in memory, :meth:`numlstm.Forecaster.fit` trains from a stream
instead of loading everything:

1. **One pass for the statistics.** Each variable of each block (one dask
   chunk of series, every time step) is loaded in turn, and the per-series scaling statistics,
   the trend test, the observed-target count and the last ``lookback`` steps
   are taken from it, a few MiB of values at a time. They are the very
   numbers an in-memory fit computes.
2. **Windows cut per batch, never stored.** A block is kept as the raw arrays
   its chunks computed to (no scaled or stacked copy; float64 data are held
   as float32 for a float32 model). Candidate windows
   ``(series, origin)`` are visited in a scrambled order (an affine
   permutation of the block's candidates, new each epoch) and cut, scaled
   and checked a few batches at a time.
3. **A shuffle buffer across blocks.** Complete windows go into a buffer of
   ``shuffle_buffer`` windows; each batch is drawn from it at random, so the
   batches mix windows of neighbouring blocks, and every window is used once
   per epoch. Blocks are visited in a new random order every epoch.
4. **Validation by a second pass** over the blocks at the end of each epoch,
   with the epoch's final weights, as in memory.

Memory: one block's raw arrays, the buffer and a few batches; nothing scales
with the number of blocks except the per-series statistics and the tail kept
for :meth:`~numlstm.Forecaster.predict` (``n_series x lookback x features``).
Training runs on this process's CPU.
"""

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from numlstm.core.cpu_engine import _drop
from numlstm.core import training as _training
from numlstm.forecast import skill
from numlstm.forecast.inputs import _infinite
from numlstm.forecast.windows import SeriesScaler, window_inputs

STATS_BYTES = 2**20  # float64 values per step of the statistics pass (1 MiB): bounds its temporaries
CANDIDATES = 1024  # candidate windows cut at a time
SHUFFLE_BUFFER = 4096  # windows pooled for drawing random batches


class SeriesBlocks:
    """The data's blocks: one dask chunk of series (all time steps) each.

    ``load(k)`` computes block ``k`` and returns the flat (C-order) indices of
    its series and one raw ``(n_block_series, n_time)`` array per variable, in
    the variable's own dtype (a variable lacking a series dimension or the
    time dimension is broadcast).
    """

    def __init__(self, ds, variables, dim, series_dims):
        self.ds, self.variables, self.dim, self.series_dims = ds, variables, dim, series_dims
        sizes = [ds.sizes[d] for d in series_dims]
        chunked = next((ds[n] for n in variables if ds[n].chunks is not None and
                        set(series_dims) <= set(ds[n].dims)), None)
        bounds = []
        for d, size in zip(series_dims, sizes):
            steps = chunked.chunksizes[d] if chunked is not None else (size,)
            edges = np.concatenate([[0], np.cumsum(steps)])
            bounds.append([slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])])
        self.blocks = list(itertools.product(*bounds))
        self.sizes = sizes

    def __len__(self):
        return len(self.blocks)

    def load(self, k, names=None, dtype=None):
        """Block ``k``: its series' flat indices and one ``(n_block_series, n_time)`` array per
        variable of ``names`` (default: all), cast to ``dtype`` when that is narrower."""
        slices = self.blocks[k]
        names = self.variables if names is None else names
        ranges = [np.arange(s.start, s.stop) for s in slices]
        rows = np.ravel_multi_index(np.meshgrid(*ranges, indexing="ij"), self.sizes).ravel() if ranges else (
            np.zeros(1, dtype=np.intp))
        block_sizes = {**{d: s.stop - s.start for d, s in zip(self.series_dims, slices)},
                       self.dim: self.ds.sizes[self.dim]}
        raws = []
        for name in names:
            da = self.ds[name]
            da = da.isel({d: s for d, s in zip(self.series_dims, slices) if d in da.dims})
            missing = {d: n for d, n in block_sizes.items() if d not in da.dims}
            if missing:
                da = da.expand_dims(missing)
            arr = np.asarray(da.transpose(*self.series_dims, self.dim).values)
            if arr.dtype.kind == "f" and np.isinf(arr).any():
                _infinite(self.ds, name, (*self.series_dims, self.dim), arr,
                          offsets={d: s.start for d, s in zip(self.series_dims, slices)})
            if dtype is not None and arr.dtype.kind == "f" and arr.dtype.itemsize > np.dtype(dtype).itemsize:
                arr = arr.astype(dtype)  # the block is held at the model's precision
            raws.append(arr.reshape(len(rows), arr.shape[-1]))
        return rows, raws


def line_r2(scaled_targets):
    """Per (series, target): the share of variance a straight line in time explains
    (NaN where undefined). ``scaled_targets`` is (S, T, k)."""
    t = np.arange(scaled_targets.shape[1], dtype=np.float64)[None, :, None]
    ok = np.isfinite(scaled_targets)
    count = ok.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(ok, scaled_targets, 0.0)
        t_mean = np.where(ok, t, 0.0).sum(axis=1, keepdims=True) / count
        y_mean = y.sum(axis=1, keepdims=True) / count
        dt, dy = np.where(ok, t - t_mean, 0.0), np.where(ok, y - y_mean, 0.0)
        return (dt * dy).sum(axis=1) ** 2 / ((dt * dt).sum(axis=1) * (dy * dy).sum(axis=1))


def trending(r2):
    """Whether the median series' straight line explains more than half its variance."""
    r2 = r2[np.isfinite(r2)]
    return bool(r2.size and np.median(r2) > 0.5)


class Statistics:
    """Everything a fit needs from a pass over the data, gathered one variable of one
    block at a time (every statistic is per feature)."""

    def __init__(self, blocks, n_series, n_features, n_targets, cut, lookback):
        self.mean = np.zeros((n_series, n_features))
        self.std = np.ones((n_series, n_features))
        self.first = np.zeros((n_series, n_features))  # each feature's first value (static features)
        self.observed = np.zeros(n_series, dtype=bool)
        self.r2 = np.full((n_series, n_targets), np.nan)
        self.seen = np.zeros((n_series, n_targets), dtype=bool)  # a target observed at all
        self.negative = np.zeros((n_series, n_targets), dtype=bool)  # a target observed below 0
        self.zero = np.zeros((n_series, n_targets), dtype=bool)  # a target observed at exactly 0
        self.smallest = np.full((n_series, n_targets), np.inf)  # its smallest value above 0
        self.tail = np.empty((n_series, lookback, n_features))
        for k in range(len(blocks)):
            for f, name in enumerate(blocks.variables):
                rows, (raw,) = blocks.load(k, [name])
                n_time = raw.shape[1]
                step = max(1, STATS_BYTES // (8 * n_time))
                for r0 in range(0, len(rows), step):
                    r1 = min(len(rows), r0 + step)
                    values = raw[r0:r1, :, None].astype(np.float64)
                    where = rows[r0:r1]
                    scaler = SeriesScaler.fit(values, slice(0, cut))
                    self.mean[where, f], self.std[where, f] = scaler.mean[:, 0], scaler.std[:, 0]
                    self.first[where, f] = values[:, 0, 0]
                    self.tail[where, :, f] = values[:, n_time - lookback:, 0]
                    if f < n_targets:
                        self.observed[where] |= np.isfinite(values).any(axis=(1, 2))
                        self.r2[where, f] = line_r2(scaler.transform(values[:, :cut]))[:, 0]
                        self.seen[where, f] |= np.isfinite(values).any(axis=(1, 2))
                        with np.errstate(invalid="ignore"):
                            self.negative[where, f] |= (values < 0).any(axis=(1, 2))
                        zero, smallest = skill.zeros_of(values)  # (rows, 1): this target's
                        self.zero[where, f] |= zero[:, 0]
                        self.smallest[where, f] = np.minimum(self.smallest[where, f], smallest[:, 0])
                del raw


class ShuffleBuffer:
    """Windows (X, Y, M) pooled up to ``capacity``; batches drawn from the pool at random."""

    def __init__(self, capacity, batch_size, rng):
        self.capacity, self.batch_size, self.rng = max(capacity, batch_size), batch_size, rng
        self.parts = None
        self.n = 0

    def push(self, X, Y, M):
        """Add windows; yield the batches that are ready."""
        if self.parts is None:
            cap = self.capacity + CANDIDATES
            self.parts = [np.empty((cap,) + a.shape[1:], dtype=a.dtype) for a in (X, Y, M)]
        for start in range(0, len(X), CANDIDATES):
            stop = min(len(X), start + CANDIDATES)
            for part, a in zip(self.parts, (X, Y, M)):
                part[self.n:self.n + stop - start] = a[start:stop]
            self.n += stop - start
            while self.n >= self.capacity:
                yield self._draw(self.batch_size)

    def drain(self):
        """The remaining windows, in random batches."""
        while self.n > 0:
            yield self._draw(min(self.batch_size, self.n))

    def _draw(self, size):
        pick = self.rng.choice(self.n, size=size, replace=False)
        batch = tuple(part[pick] for part in self.parts)
        # fill the holes with the pool's last windows (those not picked themselves)
        last = np.setdiff1d(np.arange(self.n - size, self.n), pick, assume_unique=True)
        holes = np.sort(pick[pick < self.n - size])
        for part in self.parts:
            part[holes] = part[last]
        self.n -= size
        return batch


class WindowCutter:
    """Cuts scaled training windows of a loaded block, ready for the network."""

    def __init__(self, scaler, n_targets, calendar, lookback, horizon, known, relative, dtype):
        self.scaler, self.n_targets, self.calendar = scaler, n_targets, calendar
        self.lookback, self.horizon, self.known, self.relative, self.dtype = lookback, horizon, known, relative, dtype

    def cut(self, rows, raws, s_local, origin):
        """(X, Y, M) of the complete windows among ``(s_local, origin)``: inputs all
        finite, at least one target observed. Only the windows' own steps are
        read and scaled."""
        L, H, nt = self.lookback, self.horizon, self.n_targets
        m = len(s_local)
        where = rows[s_local]
        steps = np.empty((m, L + H, len(raws)))  # the windows' raw steps, then scaled in place
        for k, raw in enumerate(raws):
            steps[:, :, k] = sliding_window_view(raw, L + H, axis=1)[s_local, origin - L + 1]
        SeriesScaler(mean=self.scaler.mean[where], std=self.scaler.std[where]).transform(steps, inplace=True)
        if self.calendar is not None:
            cal = sliding_window_view(self.calendar, L + H, axis=0)[origin - L + 1].transpose(0, 2, 1)
            steps = np.concatenate([steps, cal], axis=2)
        X, ok = window_inputs(steps, np.arange(m), np.full(m, L - 1), L, H, self.known, self.dtype)
        Y = steps[:, L:, :nt]
        mask = np.isfinite(Y)
        keep = ok & mask.any(axis=(1, 2))
        X, Y, mask = X[keep], Y[keep], mask[keep]
        Y = np.where(mask, Y, 0.0)
        if self.relative:
            Y = Y - X[:, L - 1, :nt][:, None, :]
        n = len(X)
        return X, np.ascontiguousarray(Y.reshape(n, -1), dtype=self.dtype), np.ascontiguousarray(
            mask.reshape(n, -1), dtype=self.dtype)

    def windows(self, rows, raws, origins, rng=None):
        """Every complete window of the block with an origin in ``origins``, in chunks;
        scrambled when ``rng`` is given (an affine permutation of the candidates)."""
        n_orig = len(origins)
        total = len(rows) * n_orig
        if total == 0:
            return
        a, c = 1, 0
        if rng is not None and total > 1:
            c = int(rng.integers(total))
            a = int(rng.integers(1, total))
            while math.gcd(a, total) != 1:
                a += 1
        for start in range(0, total, CANDIDATES):
            i = np.arange(start, min(total, start + CANDIDATES), dtype=np.int64)
            idx = (a * i + c) % total
            yield self.cut(rows, raws, idx // n_orig, origins[idx % n_orig])


def train(net, blocks, cutter, train_origins, val_origins, *, epochs, batch_size, shuffle_buffer, loss_id, lparams,
          optimizer, clipnorm, early_stopping, patience, rng, verbose, drop=None, kept=None):
    """A fit on the streamed engine, through the epoch loop every fit runs
    (:func:`numlstm.core.training.run_epochs`); returns the history and the number of
    training windows. ``kept``, a dict, gets ``"history"`` (filled epoch by epoch) and
    ``"n_windows"``, so the caller has them after a ``KeyboardInterrupt``."""
    engine = _training.resolve_engine(streamed=True)
    drop = _drop(drop)
    seed = int(rng.integers(2 ** 62)) if drop.any() else 0  # as training.fit draws it
    trainer = engine.trainer(net, None, None, None, batch_size, loss_id, lparams, optimizer, clipnorm, drop=drop,
                             seed=seed)
    validating = len(val_origins) > 0
    record = _training.EpochRecord(validating, early_stopping, patience, verbose, epochs, rng=rng, dropout_seed=seed)
    kept = {} if kept is None else kept
    kept.update(history=record.history, n_windows=0)
    one = np.zeros(1)

    def epoch_batches():
        buffer = ShuffleBuffer(shuffle_buffer, batch_size, rng)
        for k in rng.permutation(len(blocks)):
            rows, raws = blocks.load(int(k), dtype=cutter.dtype)
            for X, Y, M in cutter.windows(rows, raws, train_origins, rng):
                yield from buffer.push(X, Y, M)
            del raws
        yield from buffer.drain()

    def train_one(epoch):
        total, count = 0.0, 0
        for n_batches, (X, Y, M) in enumerate(epoch_batches()):
            if trainer.batch(X, Y, M, one) >= 0:
                return math.nan, n_batches, None  # stops here: the loop raises, the weights from before it
            total += one[0] * len(X)
            count += len(X)
        if count == 0:
            raise ValueError(
                "no complete training window: every run of lookback + horizon steps has a missing input or "
                "no observed target. Shorten lookback or fill the gaps in the inputs.")
        kept["n_windows"] = count
        return total / count, -1, None

    def evaluate(logs):
        logs["val_loss"] = _streamed_loss(trainer, blocks, cutter, val_origins)

    try:
        history = _training.run_epochs(net, trainer, record, epochs, train_one, evaluate if validating else None)
    finally:
        record.progress.close()
    return history, kept["n_windows"]


def _streamed_loss(trainer, blocks, cutter, origins):
    """Mean loss over every complete window with an origin in ``origins``, block by block."""
    total = weight = 0.0
    for k in range(len(blocks)):
        rows, raws = blocks.load(k, dtype=cutter.dtype)
        for X, Y, M in cutter.windows(rows, raws, origins):
            w = float(M.sum())
            if w > 0:
                total += trainer.dataset_loss(X, Y, M) * w
                weight += w
        del raws
    return total / weight if weight else float("nan")
