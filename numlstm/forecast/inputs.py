"""The Forecaster's inputs: checks of the data and arguments, stacking variables into
arrays, the bookkeeping of series (their labels, positions and coordinates), and the
model's view of them (calendar columns, gaps filled and flagged; ``model_view``).
``MissingInputWarning`` lives here because fitting and forecasting both raise it.

Everything here reads the user's data and never modifies it; messages say what was
expected, what came and the fix.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import xarray as xr

from numlstm.forecast import cycles, skill


class MissingInputWarning(UserWarning):
    """Some series have missing values where a forecast needs inputs; their forecasts are NaN."""


def _is_lazy(ds, variables):
    """Whether any of ``variables`` in ``ds`` is dask-backed (missing ones are reported later)."""
    return any(name in ds.data_vars and ds[name].chunks is not None for name in variables)


def _as_dataset(data, name):
    if isinstance(data, xr.DataArray):
        if data.name is None:
            raise ValueError(f"{name} is an unnamed DataArray; name it first, e.g. {name}.rename('flow'), or pass "
                             "a Dataset.")
        return data.to_dataset()
    if not isinstance(data, xr.Dataset):
        raise TypeError(f"{name} must be an xarray Dataset or a named DataArray, got {type(data).__name__}. "
                        "Wrap arrays first, e.g. xr.Dataset({'flow': (('station', 'time'), values)}).")
    return data


def _names(value, arg, ds, *, required=False, what=None):
    if value is None:
        if required:
            raise ValueError(f"{arg} is required: name one or more variables of data.")
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{arg} must be a variable name or a list of names, got {value!r}.")
    names = list(names)
    if required and not names:
        raise ValueError(f"{arg} is empty; name at least one variable of data.")
    if len(set(names)) != len(names):
        raise ValueError(f"{arg} lists a variable twice: {names}.")
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise ValueError(
            f"{arg} {missing if len(missing) > 1 else repr(missing[0])} not found in data"
            f"{f' ({what})' if what else ''}; its data variables are {sorted(map(str, ds.data_vars))}.")
    for n in names:
        kind = ds[n].dtype.kind
        if kind not in "biuf":
            raise TypeError(f"variable {n!r} has dtype {ds[n].dtype}; {arg} must be numeric. Convert or encode "
                            f"it first, e.g. data[{n!r}].astype(float).")
    return names


def _check_disjoint(targets, past, future):
    for a_name, a, b_name, b in (("target", targets, "covariates", past), ("target", targets,
                                 "future_covariates", future), ("covariates", past, "future_covariates", future)):
        both = sorted(set(a) & set(b))
        if both:
            raise ValueError(f"{both} appear in both {a_name} and {b_name}; list each variable once.")


def _time_like_dims(ds, dims):
    """The dimensions among ``dims`` whose coordinate holds dates (datetime64 or cftime)."""
    out = []
    for d in dims:
        if d in ds.coords:
            values = ds[d].values
            if np.issubdtype(values.dtype, np.datetime64) or (
                    values.dtype == object and values.size and hasattr(values.flat[0], "calendar")):
                out.append(d)
    return out


def _series_dims(ds, targets, dim, fitted=False):
    """The targets' dimensions other than ``dim``; ``fitted``: ``dim`` is the fitted model's."""
    dims = ds[targets[0]].dims
    if not dims:
        raise ValueError(f"target {targets[0]!r} has no dimensions (a single value); a target is a time series "
                         f"along {dim!r}, e.g. data[{targets[0]!r}] with dims ({dim!r},) or ('station', {dim!r}).")
    if dim not in dims:
        dated = _time_like_dims(ds, dims)
        if fitted:
            fix = (f"rename data's time dimension to {dim!r}, e.g. data.rename({{{dated[0]!r}: {dim!r}}})" if dated
                   else f"rename data's time dimension to {dim!r}, e.g. data.rename({{<its name>: {dim!r}}})")
            raise ValueError(f"target {targets[0]!r} has no {dim!r} dimension (dims {dims}), the time dimension "
                             f"the model was fitted on; {fix}.")
        fix = (f"pass dim=<the time dimension>, e.g. dim={dated[0]!r} (its labels are dates)" if dated
               else f"pass dim=<the time dimension>, one of {list(dims)}")
        raise ValueError(f"target {targets[0]!r} has no {dim!r} dimension (dims {dims}); {fix}.")
    for name in targets[1:]:
        if set(ds[name].dims) != set(dims):
            raise ValueError(f"targets must share dimensions: {targets[0]!r} has {dims}, {name!r} has "
                             f"{ds[name].dims}.")
    return tuple(d for d in dims if d != dim)


def _fit_dims(ds, targets, past, future, dim):
    """The series dimensions of a fit's data, its variables' dimensions checked."""
    series_dims = _series_dims(ds, targets, dim)
    _check_unique_series(ds, series_dims)
    for name in future:
        if dim not in ds[name].dims:
            raise ValueError(
                f"future covariate {name!r} has no {dim!r} dimension (dims {ds[name].dims}); a future "
                f"covariate varies in time. Pass a static feature as covariates=[{name!r}] instead.")
    for name in past + future:
        extra = set(ds[name].dims) - set(series_dims) - {dim}
        if extra:
            raise ValueError(
                f"covariate {name!r} has dimension(s) {sorted(extra)} that the target(s) lack; a covariate "
                f"may only use {dim!r} and the series dimensions {list(series_dims)}. Select or reduce "
                f"them first, e.g. data[{name!r}].mean({sorted(extra)[0]!r}).")
    return series_dims


def _check_quantiles(quantiles):
    if quantiles is None:
        return None
    try:
        q = np.asarray(quantiles, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"quantiles must be a list of numbers in (0, 1), got {quantiles!r}.") from None
    if q.ndim != 1 or q.size == 0 or not ((q > 0) & (q < 1)).all():
        raise ValueError(f"quantiles must be a non-empty list of levels strictly between 0 and 1, e.g. "
                         f"[0.1, 0.5, 0.9]; got {quantiles!r}.")
    if np.unique(q).size != q.size:
        raise ValueError(f"quantiles repeats a level: {quantiles!r}.")
    return [float(v) for v in np.sort(q)]


# The network's loss for point forecasts under loss="auto" (the Forecaster's ``loss``).
DEFAULT_LOSS = "mae"


def _check_loss(loss, quantiles):
    """The loss a model with these checked ``quantiles`` trains on: "pinball" for a quantile model
    (``loss`` must then be "auto"), else "mae" or "mse" (``"auto"``: ``DEFAULT_LOSS``)."""
    if not (isinstance(loss, str) and loss in ("auto", "mae", "mse")):
        raise ValueError(f"loss must be 'auto' ({DEFAULT_LOSS!r} for point forecasts, pinball with quantiles), "
                         f"'mae' (absolute error) or 'mse' (squared error), got {loss!r}.")
    if quantiles and loss != "auto":
        raise ValueError(f"loss={loss!r} with quantiles={list(quantiles)}: a quantile model is trained on the "
                         f"pinball loss of its levels; leave loss='auto', or drop quantiles for point forecasts.")
    return "pinball" if quantiles else DEFAULT_LOSS if loss == "auto" else loss


def _calendar_choice(calendar, axis, dim):
    if calendar is None or calendar is False:
        return ()
    if isinstance(calendar, str) and calendar == "auto":
        if axis.kind == "integer" or len(axis) < 2:
            return ()
        days = pd.Timedelta(axis.index[1] - axis.index[0]) / pd.Timedelta(days=1)
        # The day of week for steps under a week: electricity, traffic, web visits and river
        # regulation follow the working week, which a lookback of a day or two cannot see.
        # (The 360_day calendar has no weeks.)
        week = ("dow",) if days < 7 and axis.calendar != "360_day" else ()
        if days < 1:
            return ("hour",) + week + ("doy",)
        if days < 28:
            return week + ("doy",)
        if days < 360:
            return ("month",)
        return ()
    names = (calendar,) if isinstance(calendar, str) else tuple(calendar)
    cycles.calendar_features(axis, names, name=dim)  # validates the names against the axis
    return names


def _memory_bytes():
    """This machine's physical memory in bytes (8 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def _as_label(start, index):
    """``start`` as something ``index.searchsorted`` compares with its labels."""
    if isinstance(index, xr.CFTimeIndex) and isinstance(start, str):
        ts = pd.Timestamp(start)
        return type(index[0])(ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second)
    if isinstance(index, pd.DatetimeIndex):
        return pd.Timestamp(start)
    return start


def _stack(ds, variables, dim, series_dims):
    """(S, T, F) float64 values: series dims flattened in C order, ``dim`` second.

    A variable lacking a series dimension or the time dimension is broadcast.
    """
    columns = []
    for name in variables:
        da = ds[name]
        missing = {d: ds.sizes[d] for d in (*series_dims, dim) if d not in da.dims}
        if missing:
            da = da.expand_dims(missing)
        arr = np.asarray(da.transpose(*series_dims, dim).values, dtype=np.float64)  # a new array (dask: loaded)
        if np.isinf(arr).any():
            _infinite(ds, name, (*series_dims, dim), arr)
        columns.append(arr.reshape(-1, arr.shape[-1]))
    return np.stack(columns, axis=-1)


def _infinite(ds, name, dims, arr, *, offsets=None, what="data"):
    """Raise for the infinite values of variable ``name`` of ``what``: ``arr`` its values laid out
    along ``dims``, each starting at position ``offsets[dim]`` of ``ds`` (0 where not given: a
    streamed fit reads one block of series at a time, and counts only that block's)."""
    offsets = offsets or {}
    where = np.argwhere(np.isinf(arr))[0]
    index = {d: int(k) + offsets.get(d, 0) for d, k in zip(dims, where)}
    at = ", ".join(f"{d}={ds[d].values[i] if d in ds.coords else i}" for d, i in index.items())
    count = f"{int(np.isinf(arr).sum())} infinite value(s)" if not offsets else "infinite values"
    raise ValueError(
        f"{what}[{name!r}] holds {count}, the first at {at}; numlstm reads NaN as missing but cannot scale an "
        f"infinite value. Mark them missing first, e.g. {what}[{name!r}] = {what}[{name!r}].where("
        f"np.isfinite({what}[{name!r}])) ({what} = {what}.where(np.isfinite({what})) for a DataArray).")


def _with_calendar(scaled, index, calendar):
    if not calendar:
        return scaled
    cal, _ = cycles.calendar_features(index, calendar)
    cal = np.broadcast_to(cal[None], (scaled.shape[0],) + cal.shape)
    return np.concatenate([scaled, cal], axis=2)


def _series_index(ds, series_dims):
    """One index per series dim: its coordinate labels, or positions when it has none."""
    return [ds.indexes[d] if d in ds.indexes else pd.RangeIndex(ds.sizes[d], name=d) for d in series_dims]


def _check_unique_series(ds, series_dims, what="data"):
    """Raise where a series dimension's labels repeat: series are matched by label (to the
    fitted ones, to future covariates, in the output), so each needs its own."""
    for d in series_dims:
        if d in ds.indexes and not ds.indexes[d].is_unique:
            index = ds.indexes[d]
            repeated = list(index[index.duplicated()].unique()[:5])
            raise ValueError(
                f"{what} has repeated {d!r} labels {repeated}; each series needs its own label, as forecasts are "
                f"matched to series by label. Drop or rename the repeats first, e.g. {what}.drop_duplicates({d!r}) "
                "keeps the first of each.")


def _series_positions(ds, series_dims, fitted_index):
    """Position of each series of ``ds`` (flattened in C order) among the fitted series, -1 where new."""
    if not series_dims:
        return np.zeros(1, dtype=np.intp)
    theirs = _series_index(ds, series_dims)
    if all(a.equals(b) for a, b in zip(fitted_index, theirs)):
        return np.arange(int(np.prod([len(a) for a in theirs])), dtype=np.intp)
    if len(series_dims) == 1:
        keys, found = theirs[0], fitted_index[0].get_indexer(theirs[0])
    else:
        keys = pd.MultiIndex.from_product(theirs)
        found = pd.MultiIndex.from_product(fitted_index).get_indexer(keys)
    return found.astype(np.intp)  # -1 for a series not seen at fit


def _series_frame(coords_from, series_dims, sizes, dim):
    """A DataArray of zeros on the series dimensions, carrying every coordinate of
    ``coords_from`` that lives on them (non-index ones like ``lat(station)`` too)."""
    coords = {k: v.variable for k, v in coords_from.coords.items() if dim not in v.dims and set(v.dims) <= set(
        series_dims)}
    return xr.DataArray(np.zeros(tuple(sizes)), dims=series_dims, coords=coords)


def _jsonable(attrs):
    """The attributes that survive JSON (numbers, strings, lists), for model files."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        try:
            json.dumps(v)
        except TypeError:
            continue
        out[str(k)] = v
    return out


# ------------------------------------------------------ the model's view


def model_view(scaled, index, calendar, n_variables, gap_fill):
    """What the network reads: scaled variables and calendar columns, and with
    ``gap_fill`` the gaps carried forward plus one indicator column per variable."""
    features = _with_calendar(scaled, index, calendar)
    return skill.fill_gaps(features, n_variables) if gap_fill else features


def known_columns(n_variables, n_future, n_calendar):
    """Columns of the model's view known in the future: the future covariates, then the calendar."""
    return np.arange(n_variables - n_future, n_variables + 2 * n_calendar)


def observed_enough(X, lookback, n_variables, n_calendar, n_targets):
    """Windows (rows of ``X`` from a gap-filled view) with at least ``skill.MIN_OBSERVED``
    of every target's lookback steps observed."""
    first = n_variables + 2 * n_calendar  # the view is [variables | calendar | indicators] (| flag)
    indicators = X[:, :lookback, first:first + n_targets]
    return (1.0 - indicators.mean(axis=1)).min(axis=1) >= skill.MIN_OBSERVED
