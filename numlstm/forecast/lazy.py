"""Lazy forecasts of dask-backed data: ``predict`` and ``backtest`` as one task per
chunk of series (``xr.map_blocks``), the fitted model shipped once per graph.

:class:`LazyForecasts` is a base of :class:`numlstm.Forecaster`; it reads the
fitted state through the Forecaster's own methods (``_frame``, ``_dataset``,
``_check_data``, ``_origins``, ``_backtest_coords``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from numlstm.forecast import timeaxis
from numlstm.forecast.inputs import _as_dataset


def _predict_block(block, shipped, horizon, future_covariates, samples, seed):
    return shipped.values.item().predict(block, horizon=horizon, future_covariates=future_covariates,
                                         samples=samples, seed=seed)


def _backtest_block(block, shipped, start, stride, horizon):
    return shipped.values.item().backtest(block, start=start, stride=stride, horizon=horizon)


class LazyForecasts:
    """The dask side of :class:`numlstm.Forecaster`."""

    def _lazy_template(self, ds, lead_coords, lead_dims, lead_shape, sampling=None):
        """An all-zero result shaped like the forecast of ``ds``, chunked like its series."""
        frame = self._frame(ds)
        q = (len(self.quantiles_),) if self.quantiles_ else (sampling[0],) if sampling is not None else ()
        shape = (max(frame.size, 1),) + lead_shape + (len(self.targets_),) + q
        zeros = np.broadcast_to(np.zeros((), dtype=self.network_.dtype), shape)
        chunks = ds.unify_chunks().chunksizes
        return self._dataset(zeros, frame, lead_coords, lead_dims, sampling).chunk(
            {d: chunks[d] for d in self.series_dims_ if d in chunks})

    def _lazy_predict(self, ds, h, future_covariates, sampling=None):
        """predict on dask-backed data: a lazy Dataset, one task per chunk of series."""
        new = (self._check_data(ds) < 0).any()
        self._check_history(ds)
        dim = self.dim_
        recent = ds[self._variables]
        # the last lookback steps, unless the smoothing member reads the whole record or a series not
        # seen at fit needs its history (its scaling, floor and snap), as the eager predict keeps it
        if not new and getattr(self, "smoothing_", None) is None:
            recent = recent.isel({dim: slice(-self.lookback, None)})
        recent = recent.chunk({dim: -1})
        new_time = timeaxis.continue_time_axis(recent[dim].values, self.horizon, self.freq_, name=dim)
        if future_covariates is not None:
            future_covariates = _as_dataset(future_covariates, "future_covariates").compute()  # the horizon only
        template = self._lazy_template(recent, {dim: (dim, new_time[:h], dict(ds[dim].attrs))}, (dim,), (h,), sampling)
        samples, seed = sampling if sampling is not None else (None, 0)
        return xr.map_blocks(_predict_block, recent, args=[self._shipped()],
                             kwargs={"horizon": h, "future_covariates": future_covariates, "samples": samples,
                                     "seed": seed}, template=template)

    def _lazy_backtest(self, ds, start, stride, h):
        """backtest on dask-backed data: a lazy Dataset, one task per chunk of series."""
        self._check_data(ds)
        origins = self._origins(ds, start, stride)
        record = ds[self._variables].chunk({self.dim_: -1})
        coords = self._backtest_coords(ds, origins, h)
        template = self._lazy_template(record, coords, ("init_time", "lead"), (origins.size, h))
        out = xr.map_blocks(_backtest_block, record, args=[self._shipped()],
                            kwargs={"start": start, "stride": stride, "horizon": h}, template=template)
        # map_blocks makes every non-index coordinate a task output; valid_time is known now
        return out.assign_coords(valid_time=coords["valid_time"])

    def _shipped(self):
        """This model as one chunk of a dask graph, for the tasks of a lazy forecast.

        Passed as an argument of ``xr.map_blocks``, the one-element object array
        is a single key of the graph that every task depends on: the model is
        serialised once and a dask.distributed worker receives it once, where
        a keyword argument would be copied into every task.
        """
        holder = np.empty(1, dtype=object)
        holder[0] = self
        return xr.DataArray(holder, dims="numlstm_model")  # map_blocks makes it one chunk
