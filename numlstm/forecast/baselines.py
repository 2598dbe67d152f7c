"""Naive forecasts and observations laid out like a backtest, to score against.

:meth:`numlstm.Forecaster.backtest` returns forecasts on ``(init_time, lead,
...)`` with a ``valid_time`` coordinate. The functions here give, on the same
layout, what was observed at each valid time and what the two classic naive
forecasts would have said, so that skill is one call of :mod:`numlstm.metrics`:

>>> import numlstm
>>> from numlstm.forecast import baselines
>>> ds = numlstm.datasets.load("us_population")
>>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=8, epochs=2, random_state=0)
>>> fc = fc.fit(ds.sel(time=slice(None, "1999")), "population")
>>> bt = fc.backtest(ds, start="2000-01-01")
>>> obs = baselines.observed(ds, bt)
>>> naive = baselines.persistence(ds, bt)
>>> float(numlstm.metrics.mae(obs, naive, dim=None)["population"]) > 0
True
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["observed", "persistence", "seasonal_naive"]


def _check(data, backtest, dim):
    if isinstance(data, xr.DataArray):
        data = data.to_dataset()
    if not isinstance(data, xr.Dataset) or not isinstance(backtest, xr.Dataset):
        raise TypeError("data and backtest must be xarray Datasets (backtest as returned by Forecaster.backtest).")
    for name in ("init_time", "valid_time"):
        if name not in backtest.coords:
            raise ValueError(f"backtest has no {name!r} coordinate; pass the result of Forecaster.backtest.")
    if dim not in data.dims:
        raise ValueError(f"data has no {dim!r} dimension; pass dim=<the time dimension>.")
    missing = [n for n in backtest.data_vars if n not in data.data_vars]
    if missing:
        raise ValueError(f"data lacks the backtest's variable(s) {missing}.")
    return data


def _at(data, backtest, positions, dim):
    """data's backtest variables at integer time ``positions`` (init_time, lead); NaN where < 0."""
    index = xr.DataArray(np.where(positions >= 0, positions, 0), dims=("init_time", "lead"))
    out = xr.Dataset(attrs=dict(data.attrs))
    for name in backtest.data_vars:
        da = data[name].isel({dim: index}).where(xr.DataArray(positions >= 0, dims=("init_time", "lead")))
        da = da.drop_vars([c for c in da.coords if dim in da[c].dims or c == dim], errors="ignore")
        out[name] = da.transpose("init_time", "lead", ...)
        out[name].attrs = dict(data[name].attrs)
    return out.assign_coords({k: backtest[k] for k in ("init_time", "lead", "valid_time")})


def _positions(data, labels, dim):
    found = data.get_index(dim).get_indexer(np.ravel(labels))
    if (found < 0).any():
        raise ValueError(f"some backtest times are not labels of data's {dim!r} axis; pass the data the "
                         "backtest was computed on.")
    return found.reshape(np.shape(labels))


def observed(data, backtest, *, dim="time"):
    """The observations at each ``valid_time`` of ``backtest``, on its layout."""
    data = _check(data, backtest, dim)
    return _at(data, backtest, _positions(data, backtest["valid_time"].values, dim), dim)


def persistence(data, backtest, *, dim="time"):
    """The last observed value at each ``init_time``, repeated at every lead."""
    data = _check(data, backtest, dim)
    init = _positions(data, backtest["init_time"].values, dim)
    return _at(data, backtest, np.repeat(init[:, None], backtest.sizes["lead"], axis=1), dim)


def seasonal_naive(data, backtest, season, *, dim="time"):
    """The value ``season`` steps before each valid time (e.g. 365 for daily data,
    12 for monthly), or the latest such value observed by the ``init_time``:
    a lead longer than ``season`` repeats the last season."""
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ValueError(f"season must be a positive number of time steps (e.g. 365 for daily data), got "
                         f"{season!r}.")
    data = _check(data, backtest, dim)
    valid = _positions(data, backtest["valid_time"].values, dim)
    init = _positions(data, backtest["init_time"].values, dim)[:, None]
    # Step back whole seasons until the value was known at the origin.
    back = np.maximum(1, -((init - valid) // season)) * season
    return _at(data, backtest, valid - back, dim)
