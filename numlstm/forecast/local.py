"""Local models: one network per series, fitted side by side in threads or as
dask.distributed tasks (``Forecaster(mode="local")``).

Every series starts from its own seed, so series ``s`` gets the model a global
fit of that series alone with ``random_state=seeds[s]`` would give.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from numlstm.core import training as _training
from numlstm.core.network import Network
from numlstm.forecast.skill import start_at_baseline


def _fit_local(net, n_series, window_series, train, val, rng, train_on, verbose):
    """One network per series, fitted in parallel threads (one Numba thread each).

    Every series starts from its own seed, drawn in series order from ``rng``, so
    series ``s`` gets the model a global fit of that series alone with
    ``random_state=seeds[s]`` would give. Returns the (n_series, n_params)
    weights, the list of per-series histories (None where a series has no
    training window: its weights stay at their initial values) and the seeds.
    """
    import numba

    seeds = rng.integers(0, 2**63 - 1, size=n_series)
    params = np.empty((n_series, net.n_params), dtype=net.dtype)
    histories = [None] * n_series

    def fit_one(s):
        numba.set_num_threads(1)  # per thread: the series run side by side
        local_rng = np.random.default_rng(int(seeds[s]))
        own = Network(net.input_size, net.hidden_sizes, net.output_size, net.dtype, cell=net.cell).initialize(
            local_rng)
        mine = window_series == s
        if (train & mine).any():
            histories[s] = train_on(own, train & mine, val & mine, local_rng, 0)
        params[s] = own.params
        return s

    progress = _training._Progress(verbose, n_series)
    try:
        with ThreadPoolExecutor(max(1, numba.get_num_threads())) as pool:
            for done, s in enumerate(pool.map(fit_one, range(n_series))):
                if histories[s]:
                    progress.update(done, n_series, {"loss": histories[s]["loss"][-1]})
    finally:
        progress.close()
    return params, histories, seeds


def _fit_local_on(client, net, n_series, window_series, train, val, rng, rows, fit_kwargs, verbose):
    """``_fit_local`` as dask.distributed tasks: one task per group of series, each
    sent only its own windows; the same seeds, so the same models."""
    from distributed import as_completed

    seeds = rng.integers(0, 2**63 - 1, size=n_series)
    params = np.empty((n_series, net.n_params), dtype=net.dtype)
    histories = [None] * n_series
    n_threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    groups = [g for g in np.array_split(np.arange(n_series), max(1, min(n_series, 4 * n_threads))) if g.size]
    shape = (net.input_size, net.hidden_sizes, net.output_size, net.dtype.name, net.cell)
    futures = []
    for group in groups:
        mine = np.isin(window_series, group)
        t, v = train & mine, val & mine
        data = (window_series[t], *rows(t), window_series[v], *(rows(v) if v.any() else (None, None, None)))
        futures.append(client.submit(_fit_group, group, seeds[group], shape, data, fit_kwargs, pure=False))
    progress = _training._Progress(verbose, n_series)
    done = 0
    try:
        for future in as_completed(futures):
            for s, p, history in future.result():
                params[s], histories[s] = p, history
                done += 1
                if history:
                    progress.update(done - 1, n_series, {"loss": history["loss"][-1]})
    finally:
        progress.close()
        for future in futures:
            future.release()
    return params, histories, seeds


def _fit_group(group, seeds, shape, data, fit_kwargs):
    """On a worker: fit one network per series of ``group`` (see ``_fit_local``)."""
    import numba

    numba.set_num_threads(1)  # a worker's threads each fit their own group, side by side
    ws_t, Xt, Yt, Mt, ws_v, Xv, Yv, Mv = data
    out = []
    for s, seed in zip(group, seeds):
        local_rng = np.random.default_rng(int(seed))
        own = Network(*shape).initialize(local_rng)
        history = None
        t = ws_t == s
        if t.any():
            start_at_baseline(own, Yt[t], Mt[t], own.output_size // Yt.shape[1])  # as _fit_local's train_on
            v = ws_v == s
            val = (Xv[v], Yv[v], Mv[v]) if Xv is not None and v.any() else (None, None, None)
            history = _training.fit(own, Xt[t], Yt[t], Mt[t], **fit_kwargs, rng=local_rng, verbose=0,
                                    X_val=val[0], Y_val=val[1], M_val=val[2])
        out.append((int(s), own.params, history))
    return out
