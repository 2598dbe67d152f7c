"""Forecasting with a fitted Forecaster, and the labeled output.

:class:`Forecasting` is a base of :class:`numlstm.Forecaster`: it checks data
against the fit, reads the series of the data (fitted ones with their fitted
scaling, new ones scaled by their own history), builds the model's view and
windows, runs the network (one global one, one per series in local mode, or
Monte-Carlo dropout samples), adds back the baseline and the linear stage,
undoes the scaling, and lays the forecasts on the data's series and time
labels as an ``xarray.Dataset``. :meth:`numlstm.Forecaster.predict`,
``backtest`` and ``calibrate`` are built from these steps.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from numlstm._threads import one_blas_thread
from numlstm._validation import NotFittedError, check_positive_int
from numlstm.core import training as _training
from numlstm.forecast import skill, smoothing, timeaxis
from numlstm.forecast.inputs import (
    MissingInputWarning,
    _as_dataset,
    _as_label,
    _check_unique_series,
    _infinite,
    _names,
    _series_dims,
    _series_frame,
    _series_positions,
    _stack,
    known_columns,
    model_view,
    observed_enough,
)
from numlstm.forecast.windows import SeriesScaler, window_inputs


class Forecasting:
    """The forecasting side of :class:`numlstm.Forecaster`."""

    def __setstate__(self, state):
        """Unpickling (and ``copy``): a model pickled before the member's weights (``smoothing_``
        with five columns) gets the weight, a half, that every member then had."""
        self.__dict__.update(state)
        if getattr(self, "smoothing_", None) is not None:
            self.smoothing_ = smoothing.with_weight(self.smoothing_)

    def _check_sampling(self, samples, seed):
        """``(samples, seed)`` for Monte-Carlo dropout, or None."""
        if samples is None:
            return None
        samples = check_positive_int(samples, "samples")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise TypeError(f"seed must be a non-negative integer, got {seed!r}.")
        if not self._drop().any():
            raise ValueError("samples= draws Monte-Carlo dropout samples, but this model was fitted without "
                             "dropout; fit it with dropout=0.1 (or recurrent_dropout=0.1), or use quantiles= for "
                             "forecast bands.")
        if self.quantiles_:
            raise ValueError("samples= and quantiles cannot be combined: a quantile model already gives bands. "
                             "Fit without quantiles to sample with dropout.")
        return samples, int(seed)

    def _drop(self):
        """The (dropout, recurrent_dropout) the model was fitted with."""
        return np.array([getattr(self, "dropout", 0.0) or 0.0, getattr(self, "recurrent_dropout", 0.0) or 0.0])

    def _prediction_features(self, data, future_covariates):
        """Features (S, lookback + horizon, F) of the series to forecast, in the order of
        ``data``; their per-series tables (see ``_tables``); their series frame; the
        forecast's time labels and attrs; the smoothing member's forecasts (or None)."""
        if data is None:
            values, time = self._tail
            tables = self._tables(values, np.arange(values.shape[0]))
            frame, time_attrs = self._series_coords, self._time["attrs"]
            member = getattr(self, "_smoothing_tail", None) if self._mixes_member() else None
        else:
            ds = _as_dataset(data, "data")
            new = (self._check_data(ds) < 0).any()
            self._check_history(ds)
            # only the last lookback steps, unless a series not seen at fit needs its history for
            # scaling or the smoothing member reads the record
            whole = new or getattr(self, "smoothing_", None) is not None
            values, time, time_attrs, positions = self._read(
                ds if whole else ds.isel({self.dim_: slice(-self.lookback, None)}))
            tables = self._tables(values, positions)
            member = self._member(values, tables, np.arange(values.shape[0]), np.full(values.shape[0],
                                                                                         values.shape[1] - 1))
            values, time = values[:, -self.lookback:], time[-self.lookback:]
            frame = self._frame(ds)
        new_time = timeaxis.continue_time_axis(time, self.horizon, self.freq_, name=self.dim_)
        future = self._future_values(future_covariates, new_time, frame)
        features = self._features(np.concatenate([values, future], axis=1), tables,
                                  np.concatenate([time, new_time]))
        return features, tables, frame, new_time, time_attrs, member

    def _mixes_member(self):
        """Whether forecasts take the smoothing member in: not a band whose levels are all on one
        side of 0.5, which has no centre to move to the member (the network's band is left whole)."""
        q = self.quantiles_
        return not q or min(q) <= 0.5 <= max(q)

    def _member(self, values, tables, series, origins):
        """The smoothing member's forecasts (n, horizon, k) from ``origins`` of ``series`` of
        ``values`` (S, T, F) read from the start of the record, or None without the member
        (or where forecasts do not take it in, see ``_mixes_member``)."""
        if tables["smoothing"] is None or not self._mixes_member():
            return None
        return smoothing.forecast(values[:, :, :len(self.targets_)], tables["smoothing"], self.season_, series,
                                  origins, self.horizon, self._member_median())

    def _member_median(self):
        """Whether the member's forecasts move to the median of its errors (see ``smoothing.forecast``)."""
        return bool(getattr(self, "member_median_", False))

    def _scaling(self, values, positions):
        """The scaling ``mean``/``std`` (S, F) of the data's series (rows of ``values``): a
        fitted series (``positions`` >= 0) has its fitted one; a new series (-1) is scaled by
        its own observed history in ``values`` (static covariates by the fit's across-series
        scaling)."""
        fitted = np.maximum(positions, 0)
        mean, std = self.scaler_.mean[fitted].copy(), self.scaler_.std[fitted].copy()
        new = np.flatnonzero(positions < 0)
        if new.size:
            own = SeriesScaler.fit(values[new])
            varying = [k for k, n in enumerate(self._variables) if self.dim_ in self._var_info[n]["dims"]]
            mean[np.ix_(new, varying)] = own.mean[:, varying]
            std[np.ix_(new, varying)] = own.std[:, varying]
        return mean, std

    def _floors(self, n_series):
        """The fitted series' floor flags (n_series, n_targets), a copy: all False for a model
        pickled before them."""
        flags = getattr(self, "nonnegative_", None)
        return np.zeros((n_series, len(self.targets_)), dtype=bool) if flags is None else flags.copy()

    def _zeros(self, n_series):
        """The fitted series' ``zeros_`` (exact 0 observed; smallest positive value), copies: none
        observed for a model from before them."""
        zeros = getattr(self, "zeros_", None)
        if zeros is None:
            shape = (n_series, len(self.targets_))
            return np.zeros(shape, dtype=bool), np.full(shape, np.inf)
        return zeros[0].copy(), zeros[1].copy()

    def _validation_origins(self, n_series, n_time):
        """``(series, origins)`` of the windows a fit on ``n_series`` records of ``n_time`` steps
        validates on (the last ``validation_fraction`` of the origins; every origin without)."""
        first, last = self.lookback - 1, n_time - self.horizon - 1
        if last < first:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        frac = self.validation_fraction
        start = skill.validation_cut(n_time, self.lookback, self.horizon, frac) - 1 if frac else first
        origins = np.arange(start, last + 1)
        return np.repeat(np.arange(n_series), origins.size), np.tile(origins, n_series)

    def _validation_forecasts(self, values, time, series, origins):
        """From windows ``(series, origins)`` of the fitted record ``values`` (S, T, F, data units;
        ``time`` its labels): the pipeline's forecasts (the median of a band, before the floor), the
        member's (None without it) and what was observed after each origin, (n, horizon, k) each."""
        tables = self._tables(values, np.arange(values.shape[0]))
        tables["floor"][:] = False
        pipeline = self._forecast(self._features(values, tables, time), tables, series, origins).astype(np.float64)
        if self.quantiles_:
            pipeline = skill.median_of(pipeline, self.quantiles_)
        truth = smoothing.observed_after(values[:, :, :len(self.targets_)], series, origins, self.horizon)
        return pipeline, self._member(values, tables, series, origins), truth

    def _weigh_member(self, values, time, series, origins, on_log=None):
        """The fitted smoothing member's parameters with each series' weight in the mix chosen
        (:func:`smoothing.weigh`) on windows ``(series, origins)`` of the fitted record ``values``
        (see ``_validation_forecasts``), and a member on the logarithm ``on_log`` (S, k, 6; NaN
        where none) taken where it leads there clearly (:func:`smoothing.prefer_log`)."""
        pipeline, member, truth = self._validation_forecasts(values, time, series, origins)
        params = smoothing.weigh(self.smoothing_, pipeline, member, truth, series)
        if on_log is None:
            return params
        return smoothing.prefer_log(params, on_log, pipeline, member, truth, values[:, :, :len(self.targets_)],
                                    self.season_, series, origins, self.horizon, self._member_median())

    def _tables(self, values, positions, upto=None):
        """Per series of the data (rows of ``values``): the scaling ``mean``/``std``
        (S, F; see ``_scaling``), the baseline ``codes`` (S, horizon, k), the network
        ``rows``, the ``smoothing`` member's parameters (S, k, 6; None without it) and
        the ``floor`` flags and ``gaps`` (S, k; see ``nonnegative``). A fitted series (``positions``
        >= 0) has its fitted ones; a new series (-1) takes the baseline most fitted
        series took, per lead and target, and has its smoothing member, floor and gap chosen
        on its history in ``values`` (up to step ``upto``, a backtest's first origin,
        when given); its network row is numbered after the fitted ones."""
        fitted = np.maximum(positions, 0)
        codes, rows = self._codes[fitted].copy(), positions.copy()
        floor = self._floors(self.scaler_.mean.shape[0])[fitted]
        zero, smallest = (z[fitted] for z in self._zeros(self.scaler_.mean.shape[0]))
        member = getattr(self, "smoothing_", None)  # None without the member (or before it)
        member = None if member is None else member[fitted].copy()
        new = np.flatnonzero(positions < 0)
        if new.size:
            if self.local_params_ is not None:
                raise ValueError(
                    f"data has {new.size} series the model was not fitted on; a local model (mode='local') has "
                    "one network per fitted series and none for them. Forecast them with a global model "
                    "(mode='global'), or refit with them included.")
            counts = np.stack([(self._codes == c).sum(axis=0) for c in range(len(skill.BASELINES))])
            codes[new] = counts.argmax(axis=0).astype(np.int8)
            rows[new] = self.scaler_.mean.shape[0] + np.arange(new.size)
            own = values[new][:, :upto, :len(self.targets_)]  # their targets' history
            if member is not None:  # chosen, and screened as at fit, on the series' own history
                member[new] = smoothing.screen(own, smoothing.choose(own, self.season_), codes[new], self.season_,
                                               *self._validation_origins(len(new), own.shape[1]), self.horizon,
                                               self._member_median())
            floor[new] = skill.nonnegative_of(own, getattr(self, "nonnegative", False))
            if getattr(self, "zeros_", None) is not None:  # a model from before the snap snaps nothing
                zero[new], smallest[new] = skill.zeros_of(own)
        mean, std = self._scaling(values, positions)
        return {"mean": mean, "std": std, "codes": codes, "rows": rows, "smoothing": member, "floor": floor,
                "gaps": skill.zero_gaps(floor, zero, smallest)}

    def _conformal_shifts(self, ds, bt):
        """``calibrate``'s shifts (horizon, k, n_quantiles) from the backtest ``bt`` of ``ds``: each
        quantile's conformal quantile of its residuals by lead, in units of each series' std."""
        from numlstm.forecast import baselines

        values, _, _, positions = self._read(ds)
        std = self._scaling(values, positions)[1][:, :len(self.targets_)]  # (S, k)
        obs = baselines.observed(ds, bt, dim=self.dim_)
        q = np.asarray(self.quantiles_)
        shifts = np.zeros((self.horizon, len(self.targets_), q.size))
        for k, name in enumerate(self.targets_):
            scale = xr.DataArray(std[:, k].reshape(self._frame(ds).shape) if self.series_dims_ else std[0, k],
                                 dims=self.series_dims_)
            err = ((obs[name] - bt[name]) / scale).transpose("lead", ..., "quantile").values
            shifts[:, k] = skill.conformal_shifts(err.reshape(err.shape[0], -1, q.size), q)
        return shifts

    def _origins(self, ds, start, stride):
        """The forecast origins (time indices) of a backtest of ``ds``."""
        n_time = ds.sizes[self.dim_]
        index = ds.indexes[self.dim_] if self.dim_ in ds.indexes else pd.RangeIndex(n_time)
        first_allowed, last_allowed = self.lookback - 1, n_time - 1 - self.horizon
        try:
            begin = int(index.searchsorted(_as_label(start, index), side="left"))
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"start={start!r} cannot be compared with the {self.dim_!r} labels ({index.dtype}): {err}. "
                f"Pass one of the labels, e.g. start=data[{self.dim_!r}].values[{first_allowed}].") from None
        origins = np.arange(max(begin, first_allowed), last_allowed + 1, stride)
        if origins.size == 0:
            span = (f"{index[first_allowed]} and {index[last_allowed]}" if 0 <= first_allowed <= last_allowed
                    else "nowhere in this record")
            raise ValueError(
                f"no forecast origin from start={start!r}: an origin needs lookback = {self.lookback} steps up to "
                f"it and horizon = {self.horizon} steps after it inside data, so origins lie between {span}. "
                "Choose an earlier start or a longer record.")
        return origins

    def _backtest_coords(self, ds, origins, h):
        time, attrs = ds[self.dim_].values, dict(ds[self.dim_].attrs)
        lead = np.arange(1, h + 1)
        return {
            "init_time": ("init_time", time[origins], attrs),
            "lead": ("lead", lead, {"long_name": "lead time", "units": f"steps of {self.freq_}"}),
            "valid_time": (("init_time", "lead"), time[origins[:, None] + lead[None, :]], attrs),
        }

    def _frame(self, ds):
        return _series_frame(ds, self.series_dims_, [ds.sizes[d] for d in self.series_dims_], self.dim_)

    def _check_history(self, ds):
        n = ds.sizes[self.dim_]
        if n < self.lookback:
            raise ValueError(
                f"data has {n} time step(s) along {self.dim_!r}; a forecast needs the last lookback = "
                f"{self.lookback}. Pass a longer stretch of the record.")

    def _check_fitted(self):
        if not hasattr(self, "network_"):
            raise NotFittedError(
                "This Forecaster is not fitted yet; call fit(data, target) before predict, backtest or save.")

    def _check_horizon(self, horizon):
        if horizon is None:
            return self.horizon
        h = check_positive_int(horizon, "horizon")
        if h > self.horizon:
            raise ValueError(
                f"horizon={h} is beyond the fitted horizon ({self.horizon}): the network emits {self.horizon} "
                f"steps at once. Refit with Forecaster(horizon={h}, ...) to forecast further.")
        return h

    @property
    def _variables(self):
        return self.targets_ + self.covariates_ + self.future_covariates_

    def _read(self, ds):
        """Values (S, T, F) of the fitted variables in ``ds``, its time labels and
        attrs, and the position of each of its series among the training series."""
        positions = self._check_data(ds)
        values = _stack(ds, self._variables, self.dim_, self.series_dims_)
        return values, ds[self.dim_].values, dict(ds[self.dim_].attrs), positions

    def _check_data(self, ds):
        """Check ``ds`` against the fit (variables, dimensions, time axis) from its
        coordinates alone; the position of each of its series among the fitted ones."""
        dim = self.dim_
        _names(self._variables, "data variables", ds, required=True, what="the variables the model was fitted on")
        series_dims = _series_dims(ds, self.targets_, dim, fitted=True)
        if set(series_dims) != set(self.series_dims_):
            raise ValueError(
                f"the targets in data have series dimensions {list(series_dims)}, but the model was fitted on "
                f"{list(self.series_dims_)}. Pass data with the same dimensions.")
        _check_unique_series(ds, series_dims)
        axis = timeaxis.check_time_axis(ds[dim], name=dim)
        kind, calendar = self._time["kind"], self._time["calendar"]
        if axis.kind != kind or axis.calendar != calendar:
            raise ValueError(
                f"data's {dim!r} axis holds {axis.kind} labels ({axis.calendar or 'no'} calendar); the model was "
                f"fitted on {kind} labels ({calendar or 'no'} calendar). Convert the time axis first.")
        if len(axis) >= 2:
            timeaxis.infer_frequency(axis, self.freq_, name=dim)
        return _series_positions(ds, self.series_dims_, self._series_index)

    def _future_values(self, future_covariates, new_time, frame):
        """(S, horizon, F) raw inputs for the forecast steps: NaN except the future covariates."""
        n_series = int(np.prod(frame.shape)) if frame.ndim else 1
        variables = self._variables
        out = np.full((n_series, self.horizon, len(variables)), np.nan)
        if not self.future_covariates_:
            if future_covariates is not None:
                raise ValueError("future_covariates were given, but the model was fitted without any; drop them "
                                 "or refit with fit(..., future_covariates=[...]).")
            return out
        dim = self.dim_
        span = f"the next {self.horizon} {dim!r} labels, {new_time[0]} to {new_time[-1]}"
        if future_covariates is None:
            raise ValueError(
                f"this model was fitted with future covariates {self.future_covariates_}; predict needs their "
                f"values at {span} (the whole fitted horizon): pass future_covariates=<Dataset of them>.")
        fut = _as_dataset(future_covariates, "future_covariates")
        _names(self.future_covariates_, "future_covariates", fut, required=True,
               what="the future covariates of the fit")
        _check_unique_series(fut, [d for d in self.series_dims_ if d in fut.dims], "future_covariates")
        for k, name in enumerate(self.future_covariates_):
            da = fut[name]
            if dim not in da.dims:
                raise ValueError(f"future covariate {name!r} has no {dim!r} dimension; it needs values at {span}.")
            extra = set(da.dims) - {dim} - set(self.series_dims_)
            if extra:
                raise ValueError(f"future covariate {name!r} has dimension(s) {sorted(extra)} beyond {dim!r} and "
                                 f"the series dimensions {list(self.series_dims_)}.")
            try:
                da = da.sel({dim: new_time})
            except KeyError:
                have = da[dim].values
                raise ValueError(
                    f"future_covariates[{name!r}] must cover {span} (steps of {self.freq_!r}); it has "
                    f"{len(have)} label(s){f' from {have[0]} to {have[-1]}' if len(have) else ''}.") from None
            for d in self.series_dims_:
                if d in da.dims and d in frame.indexes and d in da.indexes:
                    lacking = frame.indexes[d].difference(da.indexes[d])
                    if len(lacking):
                        raise ValueError(f"future_covariates[{name!r}] has no values for {d}={list(lacking[:5])}; "
                                         "give values for every series being forecast.")
                    da = da.sel({d: frame.indexes[d]})
                elif d in da.dims and da.sizes[d] != frame.sizes[d]:
                    raise ValueError(f"future_covariates[{name!r}] has {da.sizes[d]} {d!r} entries; the data has "
                                     f"{frame.sizes[d]}.")
            da = da.drop_vars([c for c in da.coords if c != dim]).broadcast_like(
                frame.drop_vars(list(frame.coords)))
            arr = np.asarray(da.transpose(*self.series_dims_, dim).values, dtype=np.float64)
            if np.isinf(arr).any():
                labels = xr.Dataset(coords={**frame.coords, dim: new_time})  # the series forecast, the horizon
                _infinite(labels, name, (*self.series_dims_, dim), arr, what="future_covariates")
            out[:, :, len(variables) - len(self.future_covariates_) + k] = arr.reshape(n_series, -1)
        return out

    def _features(self, values, tables, time):
        """The model's view of ``values`` (scaled, with the calendar columns and, for a
        gap-filling model, gaps filled and flagged), with the scaling of ``tables``."""
        scaled = SeriesScaler(mean=tables["mean"], std=tables["std"]).transform(values)
        return model_view(scaled, time, self.calendar_features_, len(self._variables), self.gap_fill_)

    def _windows(self, features, series, origin):
        """The network's inputs for windows ``(series, origin)`` of ``features``, and which can be forecast."""
        n_var, n_cal = len(self._variables), len(self.calendar_features_)
        if self.gap_fill_:
            known = known_columns(n_var, len(self.future_covariates_), n_cal)
        else:
            n_known = len(self.future_covariates_) + 2 * n_cal
            known = np.arange(features.shape[2] - n_known, features.shape[2])
        X, ok = window_inputs(features, series, origin, self.lookback, self.horizon, known, self.network_.dtype)
        if self.gap_fill_:
            ok &= observed_enough(X, self.lookback, n_var, n_cal, len(self.targets_))
        return X, ok

    def _forecast(self, features, tables, series, origin, sampling=None, member=None):
        """Forecasts (n, horizon, n_targets[, Q]) in data units, mixed with the smoothing
        ``member``'s (n, horizon, n_targets; data units) when given; NaN where inputs are missing."""
        n_targets = len(self.targets_)
        X, ok = self._windows(features, series, origin)
        rows = tables["rows"][series]
        raw = self._raw_predict(X, rows, sampling).astype(np.float64)
        shape = (len(series), self.horizon, n_targets)
        if self.quantiles_:
            raw = np.sort(raw.reshape(shape + (len(self.quantiles_),)), axis=-1)  # quantiles never cross
            expand = (slice(None), slice(None), slice(None), None)
        elif sampling is not None:
            raw = raw.reshape(shape + (sampling[0],))
            expand = (slice(None), slice(None), slice(None), None)
        else:
            raw = raw.reshape(shape)
            expand = (slice(None), slice(None), slice(None))
        if self.shrink_ is not None:
            gate = self.shrink_[None] if self.shrink_.ndim == 2 else self.shrink_[rows]  # local: per series
            raw = raw * gate[expand]
        base = skill.baseline_values(X[:, :self.lookback], tables["codes"][series], self.horizon, self.season_)
        fitted = drift = None
        if self.linear_ is not None:
            Z = skill.linear_inputs(X, n_targets, self.lookback)
            with one_blas_thread():  # no BLAS threads left spinning beside the next call's kernels
                fitted = Z @ self.linear_ if self.linear_.ndim == 2 else np.einsum("np,npm->nm", Z,
                                                                                   self.linear_[rows])
            fitted = fitted.reshape(shape)
            # the constant's coefficients (Z's last column is 1), per series in local mode
            drift = np.broadcast_to(self.linear_[-1] if self.linear_.ndim == 2 else self.linear_[rows, -1],
                                    (len(series), shape[1] * shape[2])).reshape(shape)
        centre = None  # what the stages' weights apply to when the network gives a band or samples
        if self.stage_weights_[1] != 1.0 and self.quantiles_:
            centre = skill.median_of(raw, self.quantiles_)
        elif self.stage_weights_[1] != 1.0 and sampling is not None:
            centre = self._raw_predict(X, rows).astype(np.float64).reshape(shape)  # dropout off
            if self.shrink_ is not None:
                centre = centre * gate
        raw = skill.combine(base, fitted, drift, raw, self.stage_weights_, centre)
        if member is not None:  # in the scaled units of raw
            k = np.arange(n_targets)
            scaled = (member - tables["mean"][series][:, None, k]) / tables["std"][series][:, None, k]
            centre = (skill.median_of(raw, self.quantiles_) if self.quantiles_ else
                      raw.mean(axis=-1) if sampling is not None else None)
            raw = smoothing.mix(raw, scaled, centre, tables["smoothing"][series, :, -1])
        if self.quantiles_ and getattr(self, "calibration_", None) is not None:
            raw = np.sort(raw + self.calibration_[None], axis=-1)  # conformal shifts; quantiles never cross
        scaler = SeriesScaler(mean=tables["mean"], std=tables["std"])  # the data's series: new ones by their own
        out = np.moveaxis(scaler.inverse_transform(np.moveaxis(raw, 2, -1), np.arange(n_targets), series=series),
                          -1, 2)  # the targets on the last axis, as the scaler reads them
        out[~ok] = np.nan
        skill.floor_at_zero(out, tables["floor"], series, tables["gaps"])  # after the member and the calibration
        return out.astype(self.network_.dtype, copy=False)

    def _raw_predict(self, X, rows, sampling=None):
        """The network's outputs for windows ``X`` of the fitted series ``rows``; with
        ``sampling`` (samples, seed), every Monte-Carlo run along a last axis."""
        if sampling is None:
            return self._raw_predict_once(X, rows, None, 0, 0, 0)
        # Sample s of the window of fitted series p draws the masks of row p at step s: the
        # samples of a series do not depend on which other series are predicted with it (or
        # on how dask data is chunked). Windows are run in stretches of consecutive series.
        samples, seed = sampling
        out = np.empty((X.shape[0], self.network_.output_size, samples), dtype=self.network_.dtype)
        order = np.argsort(rows, kind="stable")
        stretches = np.split(order, np.flatnonzero(np.diff(rows[order]) != 1) + 1)
        for idx in stretches:
            Xs = X if idx.size == X.shape[0] and (idx == np.arange(idx.size)).all() else np.ascontiguousarray(X[idx])
            for s in range(samples):
                out[idx, :, s] = self._raw_predict_once(Xs, rows[idx], self._drop(), seed, s, int(rows[idx[0]]))
        return out

    def _raw_predict_once(self, X, rows, drop, seed, step, row0):
        """One pass of the network; with ``drop``, row ``i`` of ``X`` draws the masks of row
        ``row0 + i`` (the rows of ``X`` are then consecutive fitted series from ``row0``)."""
        if self.local_params_ is None:
            return _training.predict(self.network_, X, self.device_, drop=drop, seed=seed, step=step, row0=row0)
        out = np.empty((X.shape[0], self.network_.output_size), dtype=self.network_.dtype)
        for position in np.unique(rows):
            net = copy.copy(self.network_)  # its own params: concurrent predicts share nothing mutable
            net.params = self.local_params_[position]
            sel = rows == position
            out[sel] = _training.predict(net, np.ascontiguousarray(X[sel]), "cpu", drop=drop, seed=seed, step=step,
                                         row0=int(position))
        return out

    def _warn_missing(self, out, where):
        bad = np.isnan(out.reshape(out.shape[0], -1)).all(axis=1)
        if bad.any():
            warnings.warn(
                f"{int(bad.sum())} of {bad.size} forecast(s) are NaN because inputs are missing in {where}; "
                "windows with a missing input are not forecast. Fill or drop those series to get forecasts.",
                MissingInputWarning, stacklevel=3)

    def _dataset(self, out, frame, lead_coords, lead_dims, sampling=None):
        """A Dataset of forecasts ``out`` (n_series, *lead_shape, n_targets[, Q or samples]) laid on
        ``frame``, a DataArray with the series dimensions and coordinates of the rows."""
        q_dims = ("quantile",) if self.quantiles_ else ("sample",) if sampling is not None else ()
        lead_shape = out.shape[1:1 + len(lead_dims)]
        result = xr.Dataset(attrs=dict(self._data_attrs))
        for k, name in enumerate(self.targets_):
            arr = out[..., k, :] if q_dims else out[..., k]
            arr = arr.reshape(frame.shape + lead_shape + arr.shape[1 + len(lead_dims):])
            da = xr.DataArray(arr, dims=self.series_dims_ + lead_dims + q_dims,
                              attrs=dict(self._var_info[name]["attrs"]))
            dims = self._var_info[name]["dims"]
            order = dims if lead_dims == (self.dim_,) else list(lead_dims) + [d for d in dims if d != self.dim_]
            result[name] = da.transpose(*order, *q_dims)
        result = result.assign_coords(frame.coords).assign_coords(lead_coords)
        if self.quantiles_:
            result = result.assign_coords(quantile=("quantile", np.asarray(self.quantiles_),
                                                    {"long_name": "quantile level"}))
        elif sampling is not None:
            result = result.assign_coords(sample=("sample", np.arange(sampling[0]),
                                                  {"long_name": "Monte-Carlo dropout sample"}))
        return result
