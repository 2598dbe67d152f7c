"""The Forecaster: a labeled dataset in, a labeled forecast out.

Every dimension of the target other than the time dimension is a *series*
dimension (station, lat/lon, ensemble member, ...). The Forecaster flattens
the series dimensions into one axis, so that every variable becomes an array
``(n_series, n_time, n_features)``, and fits one global network on windows
from every series (:mod:`numlstm.forecast.windows`). Outputs are reshaped
back, so series dimensions and every coordinate on them come out as they
went in; the time axis is continued at the data's step for any calendar
(:mod:`numlstm.forecast.timeaxis`).

The network sees, at each of the ``lookback`` past steps, the scaled targets,
covariates and calendar features. When the future is partly known (future
covariates, calendar features) the input sequence goes on for ``horizon``
more steps that carry only the known features, with a flag channel set to 0
there and 1 in the past. The network's last hidden state gives every
horizon step at once (direct multi-step), as the correction to a naive
forecast (persistence or seasonal naive, per series and lead) in units of the
series' standard deviation; missing inputs are carried forward in the
network's view with an indicator per variable (:mod:`numlstm.forecast.skill`).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from numlstm._params import ParamsMixin
from numlstm._validation import NotFittedError, check_dropout, check_positive_int, check_training_params
from numlstm.core import losses as _losses
from numlstm.core import training as _training
from numlstm.core.network import Network
from numlstm.core.optimizers import make_optimizer
from numlstm.forecast import skill, streaming, timeaxis
from numlstm.forecast.inputs import (
    _as_dataset,
    _as_label,
    _calendar_choice,
    _check_disjoint,
    _check_quantiles,
    _is_lazy,
    _memory_bytes,
    _names,
    _series_dims,
    _series_frame,
    _series_index,
    _series_positions,
    _stack,
    _with_calendar,
)
from numlstm.forecast.lazy import LazyForecasts
from numlstm.forecast.local import _fit_local, _fit_local_on
from numlstm.forecast.windows import SeriesScaler, window_inputs

__all__ = ["Forecaster", "MissingInputWarning", "load"]

class MissingInputWarning(UserWarning):
    """Some series have missing values where a forecast needs inputs; their forecasts are NaN."""


class Forecaster(LazyForecasts, ParamsMixin):
    """A global LSTM forecaster for labeled time series (xarray in, xarray out).

    Parameters
    ----------
    lookback : int, default 48
        Past time steps the network reads for each forecast.
    horizon : int, default 12
        Steps forecast at once (direct multi-step output).
    units : int or list of int, default 64
        Hidden units per LSTM layer.
    layers : int, default 1
        Stacked LSTM layers.
    quantiles : sequence of float, optional
        Quantile levels in (0, 1), e.g. ``[0.1, 0.5, 0.9]``: the network is
        trained with the pinball loss and forecasts get a ``quantile``
        dimension. Quantiles never cross. Default: point forecasts (MSE).
    epochs : int, default 100
        At most this many passes over the training windows (early stopping
        usually ends sooner).
    batch_size : int, default 64
        Windows per gradient step.
    learning_rate : float, default 1e-3
        Adam's step size.
    baseline : {"auto", "persistence", "seasonal"} or None, default "auto"
        The naive forecast the network corrects: the network learns, in units
        of each series' standard deviation, the difference between the truth
        and this baseline, and its output layer starts at the baseline plus
        the training windows' average difference (naive with drift).
        ``"auto"`` picks, per series, target and lead, persistence (the last
        value) or seasonal naive (the value one ``season`` before), whichever
        had the lower error on the training windows (``baseline_``). None: no
        baseline, the network forecasts the scaled values. A gate fitted on
        the validation windows then scales the correction, per lead, by the
        factor in [0, 1] that serves it best (``shrink_``): where the
        network's correction does not help on held-out time, the forecast
        falls back towards the baseline. See docs/how-it-works.md.
    season : "auto", int or None, default "auto"
        The season in steps for the seasonal-naive baseline: ``"auto"`` takes
        a day for sub-daily steps (24 hourly), a week for daily steps and a
        year for weekly, monthly and quarterly ones (52, 12, 4), when it fits
        in ``lookback``; none for yearly or integer axes.
    relative : "auto" or bool, default "auto"
        The older knob for the baseline: True is ``baseline="persistence"``,
        False ``baseline=None``; ``"auto"`` follows ``baseline``.
    calendar : "auto", None or sequence of str, default "auto"
        Cyclic calendar features from the time labels, known in the future
        too (see :func:`numlstm.forecast.timeaxis.calendar_features`):
        ``"auto"`` picks ``("hour", "doy")`` for sub-daily steps, ``("doy",)``
        for daily to weekly, ``("month",)`` for monthly to quarterly, and
        none for yearly or integer time axes.
    validation_fraction : float, default 0.2
        The last fraction of the forecast origins (in time, not at random)
        held out for ``val_loss``; the scaling is fitted on the time before.
        0 trains on every window.
    early_stopping : bool, default True
        Stop when the monitored loss (``val_loss`` when validating) has not
        improved for ``patience`` epochs and keep the best weights.
    patience : int, default 5
    clipnorm : float or None, default 1.0
        Clip the gradient to this global norm.
    dtype : {"float32", "float64"}, default "float32"
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Where to train and forecast: ``"cuda"`` on an NVIDIA GPU (the
        training windows, weights and optimizer state stay on the device
        during ``fit``), ``"auto"`` on the GPU when one is usable.
    random_state : int, Generator or None
        Seeds the initial weights and the shuffling.
    verbose : {0, 1, 2}, default 0
        0 silent, 1 a progress bar, 2 one log line per epoch (per series
        fitted, in local mode).
    mode : {"global", "local"}, default "global"
        ``"global"`` fits one network to the windows of every series.
        ``"local"`` fits an independent network of the same shape to each
        series (each station, each grid cell), in parallel over Numba's
        threads; the weights then have a series dimension (``local_params_``,
        and in the model file). Each series gets its own seed, drawn from
        ``random_state``. CPU only.
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent layer: LSTM, or GRU (Keras ``reset_after=True``
        layout, a third fewer weights per unit).
    dropout, recurrent_dropout : float in [0, 1), default 0.0
        Dropout on each layer's inputs and on the state entering the recurrent
        product during training, as Keras (one mask per window, reused at
        every step; off in predict). A model fitted with either can sample
        forecasts with Monte-Carlo dropout: ``predict(..., samples=100)``.

    Attributes
    ----------
    network_ : numlstm.core.network.Network
    scaler_ : numlstm.forecast.windows.SeriesScaler
        Per-series mean and standard deviation of every input variable,
        from the training data.
    history_ : dict
        Per-epoch ``"loss"`` (and ``"val_loss"``).
    targets_, covariates_, future_covariates_ : list of str
    dim_ : str
        The time dimension.
    freq_ : str or int
        The time step, inferred or given at fit.
    series_dims_ : tuple of str
    calendar_features_ : tuple of str
    device_ : {"cpu", "cuda"}
        Where the model was fitted and forecasts.
    local_params_ : ndarray, shape (n_series, n_params)
        In local mode, each series' weights (the layout of ``network_.params``;
        series flattened in the order of the data). None in global mode.
    local_seeds_ : ndarray of int, shape (n_series,)
        In local mode, each series' seed: ``Forecaster(random_state=seed)``
        fitted on that series alone gives the same model. None in global mode.
    relative_ : bool
        Whether every series' baseline is persistence.
    baseline_ : ndarray of str, shape (n_series, horizon, n_targets)
        The baseline of each fitted series, lead and target: "persistence",
        "seasonal" or "none".
    season_ : int or None
        The season of the seasonal-naive baseline, in steps.
    shrink_ : ndarray, shape (horizon, n_targets), or None
        The gate on the network's correction, per lead and target; in local
        mode one per series, shape (n_series, horizon, n_targets). None for
        quantile models and models with dropout: the correction is used whole.
    linear_ : ndarray, shape (lookback * n_targets + 1, horizon * n_targets), or None
        The linear stage between the baseline and the network: ridge
        regression of the correction on the targets' past values (and a
        constant), its penalty chosen on the validation windows (all 0 when
        none helps there); in local mode one per series (a leading series
        axis). None for streamed fits.
    calibration_ : ndarray, shape (horizon, n_targets, n_quantiles), or None
        Conformal shifts of the quantiles, in units of each series' standard
        deviation, set by :meth:`calibrate`.
    gap_fill_ : bool
        Whether missing inputs are filled in the model's view (with an
        indicator per variable) rather than blanking the window's forecast.
        False for streamed fits and models saved before gaps were filled.
    n_windows_ : int
        Training windows used (validation windows not counted).

    Examples
    --------
    >>> import numlstm
    >>> ds = numlstm.datasets.load("us_population")
    >>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=16, epochs=5, random_state=0)
    >>> fc = fc.fit(ds, "population")
    >>> out = fc.predict()
    >>> out["population"].dims, out.sizes["time"]
    (('time',), 4)
    >>> str(out["time"].values[0])[:10]        # one quarter after 2009-07-01
    '2009-10-01'
    """

    def __init__(self, lookback=48, horizon=12, units=64, layers=1, quantiles=None, epochs=100, batch_size=64,
                 learning_rate=1e-3, relative="auto", calendar="auto", validation_fraction=0.2,
                 early_stopping=True, patience=5, clipnorm=1.0, dtype="float32", device="cpu",
                 random_state=None, verbose=0, mode="global", cell="lstm", dropout=0.0, recurrent_dropout=0.0,
                 baseline="auto", season="auto"):
        self.lookback = lookback
        self.horizon = horizon
        self.units = units
        self.layers = layers
        self.quantiles = quantiles
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.relative = relative
        self.calendar = calendar
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.clipnorm = clipnorm
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.mode = mode
        self.cell = cell
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.baseline = baseline
        self.season = season

    # ------------------------------------------------------------------ fit

    def fit(self, data, target, *, covariates=None, future_covariates=None, dim="time", freq=None, client=None,
            stream="auto", warm_start=False, checkpoint=None, checkpoint_every=1, resume=None):
        """Fit one global model to every series of ``data``.

        Parameters
        ----------
        data : xarray.Dataset or named xarray.DataArray
            Dask-backed data is loaded into memory (a copy; ``data`` is not
            modified), or streamed chunk by chunk when it is large (``stream``).
        target : str or list of str
            Variable(s) to forecast. They must share their dimensions: ``dim``
            and the series dimensions.
        covariates : str or list of str, optional
            Past covariates: observed up to the forecast origin, not in the
            future. A covariate may lack some series dimensions (it is
            broadcast) or the time dimension (a static feature).
        future_covariates : str or list of str, optional
            Covariates known ahead (e.g. a weather forecast, a schedule):
            :meth:`predict` then needs their values for the horizon.
        dim : str, default "time"
            The time dimension.
        freq : str or int, optional
            The time step (``"D"``, ``"h"``, ``"MS"``, ...; an int for integer
            axes). Inferred when omitted; a given one is checked.
        client : distributed.Client, optional
            Train data-parallel on this dask.distributed cluster: the windows
            are split into one shard per worker, each worker computes the
            gradient over its part of every batch, and the client applies the
            summed update synchronously, so the result equals a local fit on
            the same batches up to floating-point rounding. One round trip per
            batch: worth it when a batch is large. CPU only. With
            ``mode="local"``, the per-series models are fitted as tasks on the
            cluster instead (groups of series, each task sent only its own
            windows), with the same seeds and results as on this machine.
        stream : "auto", bool, default "auto"
            Train out of core: windows are streamed from one dask chunk of
            series at a time through a shuffle buffer, and the scaling
            statistics come from one pass over the data, so the whole array is
            never in memory (:mod:`numlstm.forecast.streaming`). ``"auto"``
            streams dask-backed data whose training windows would take more
            than a quarter of this machine's memory; ``True`` streams any
            dask-backed data. CPU, ``mode="global"`` and no ``client`` only.
        warm_start : bool, default False
            Continue from the fitted weights instead of starting afresh
            (fine-tuning a model trained on many stations to one, or updating
            it as data arrive): the scaling, baselines and linear stage are
            kept (a series not seen before is scaled by its own history, as in
            :meth:`predict`), the network trains on ``data`` for up to
            ``epochs`` more epochs, the gate is refitted on ``data``'s
            validation windows and ``history_`` goes on from where it was.
            The variables must be those of the first fit. Global mode, in
            memory (not streamed), without ``client`` only.
        checkpoint : str or os.PathLike, optional
            A ``.nc`` file to write, atomically, every ``checkpoint_every``
            epochs and when the fit is interrupted: a model file of the fit so
            far (:func:`numlstm.load` reads it) with the training state added.
            ``mode="global"``, in memory (not streamed).
        checkpoint_every : int, default 1
        resume : str or os.PathLike, optional
            A checkpoint to continue from: with the same parameters and data,
            the fit ends where the uninterrupted one would have (on the CPU:
            the same numbers).

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            For a missing or non-numeric variable, a missing time dimension,
            unsorted or duplicate or irregular times, series shorter than
            ``lookback + horizon``, an all-NaN target, or bad parameters.

        Notes
        -----
        Ctrl-C (``KeyboardInterrupt``) propagates and leaves the model fitted
        with the last completed epoch's weights (the best ones under early
        stopping) and its ``history_``.
        """
        params = self._check_params()
        if client is not None:
            if not all(hasattr(client, a) for a in ("scatter", "submit", "gather", "scheduler_info")):
                raise TypeError(f"client must be a dask.distributed Client, got {type(client).__name__}. "
                                "For example: client = distributed.Client(distributed.LocalCluster()).")
            if params["device"] == "cuda":
                raise ValueError("client= trains on the workers' CPUs; use device='cpu' with a client, or "
                                 "device='cuda' without one.")
        if self.mode == "local" and params["device"] == "cuda":
            raise ValueError("mode='local' runs on the CPU; use device='cpu' (or mode='global' on the GPU).")
        ds = _as_dataset(data, "data")
        targets = _names(target, "target", ds, required=True)
        past = _names(covariates, "covariates", ds)
        future = _names(future_covariates, "future_covariates", ds)
        _check_disjoint(targets, past, future)
        if not isinstance(dim, str):
            raise TypeError(f"dim must be the name of the time dimension (a str), got {dim!r}.")
        series_dims = _series_dims(ds, targets, dim)
        for name in future:
            if dim not in ds[name].dims:
                raise ValueError(
                    f"future covariate {name!r} has no {dim!r} dimension (dims {ds[name].dims}); a future "
                    f"covariate varies in time. Pass a static feature as covariates=[{name!r}] instead.")
        variables = targets + past + future
        for name in past + future:
            extra = set(ds[name].dims) - set(series_dims) - {dim}
            if extra:
                raise ValueError(
                    f"covariate {name!r} has dimension(s) {sorted(extra)} that the target(s) lack; a covariate "
                    f"may only use {dim!r} and the series dimensions {list(series_dims)}. Select or reduce "
                    f"them first, e.g. data[{name!r}].mean({sorted(extra)[0]!r}).")
        axis = timeaxis.check_time_axis(ds[dim], name=dim)
        freq = timeaxis.infer_frequency(axis, freq, name=dim)
        calendar = _calendar_choice(self.calendar, axis, dim)
        lookback, horizon = params["lookback"], params["horizon"]
        n_time = len(axis)
        if n_time < lookback + horizon:
            raise ValueError(
                f"data has {n_time} time step(s) along {dim!r} but lookback ({lookback}) + horizon ({horizon}) = "
                f"{lookback + horizon} are needed for one training window. Shorten lookback or horizon, or "
                "give a longer record.")
        if (checkpoint is not None or resume is not None) and self.mode == "local":
            raise ValueError("checkpoint= and resume= work with mode='global'; fit per-series models without them.")
        if resume is not None and warm_start:
            raise ValueError("resume= continues the interrupted fit its checkpoint holds, and warm_start=True the "
                             "fitted model: use one of them (resume= for a killed fit, warm_start=True for new data).")
        if self._streams(stream, ds, variables, series_dims, n_time, len(calendar), params):
            if checkpoint is not None or resume is not None:
                raise ValueError("checkpoint= and resume= need the data in memory; pass stream=False.")
            if params["device"] == "cuda" or client is not None or self.mode == "local":
                raise ValueError(
                    "a streamed (out-of-core) fit trains on this process's CPU, one global model: use "
                    "device='cpu', no client and mode='global', or pass stream=False to load the data.")
            return self._fit_streamed(ds, targets, past, future, dim, series_dims, axis, freq, calendar, params)

        warm = self._check_warm(warm_start, (targets, past, future), dim, client, stream)
        values = _stack(ds, variables, dim, series_dims)
        n_targets = len(targets)
        self._check_observed(np.isfinite(values[:, :, :n_targets]).any(axis=(1, 2)), targets)

        # Time split for validation: scaling and training windows see only the time before `cut`.
        first, last = lookback - 1, n_time - horizon - 1
        frac = params["validation_fraction"]
        cut = n_time if frac == 0 else first + int(math.ceil((1 - frac) * (last - first + 1)))
        if warm:  # the fitted scaling; new series by their own history
            tables = self._tables(values, self._check_data(ds))
            scaled = SeriesScaler(mean=tables["mean"], std=tables["std"]).transform(values)
        else:
            scaler = _global_scaling(SeriesScaler.fit(values, slice(0, cut)), values[:, 0],
                                     [k for k, n in enumerate(variables) if dim not in ds[n].dims])
            scaled = scaler.transform(values)
        rng = params["rng"]
        # The model's view: gaps carried forward with an indicator per variable; training
        # hides a few more inputs the same way so that gaps are no surprise.
        features = _model_view(skill.hide_inputs(scaled, len(variables)), axis.index, calendar, len(variables),
                               True)
        known = _known_columns(len(variables), len(future), len(calendar))

        dtype = params["dtype"]
        w_series, w_origin, w_Y, w_M = skill.target_windows(scaled[:, :, :n_targets], lookback, horizon)
        X, ok = window_inputs(features, w_series, w_origin, lookback, horizon, known, dtype)
        ok &= _observed_enough(X, lookback, len(variables), len(calendar), n_targets)
        if frac > 0:
            train = ok & (w_origin + horizon < cut)
            val = ok & (w_origin >= cut - 1)
            if not train.any() or not val.any():
                raise ValueError(
                    f"validation_fraction={frac} leaves no {'training' if not train.any() else 'validation'} "
                    f"windows out of {len(w_series)}; use a fraction between the two or a longer record.")
        else:
            train, val = ok, np.zeros_like(ok)
        if not train.any():
            raise ValueError(
                f"no training window: every run of lookback + horizon = {lookback + horizon} steps has less than "
                f"{skill.MIN_OBSERVED:.0%} of its target inputs observed or no observed target. Shorten lookback "
                "or give a longer record.")
        if warm:
            season, codes = self.season_, tables["codes"]
        else:
            season = skill.season_of(axis, self.season, lookback)
            codes = self._baseline_codes(X[train, :lookback], w_Y[train], w_M[train], w_series[train],
                                         values.shape[0], n_targets, season)
        B = skill.baseline_values(X[:, :lookback], codes[w_series], horizon, season)
        Y = np.where(w_M, w_Y - B, 0.0).reshape(len(w_series), -1)
        M = w_M.reshape(len(w_series), -1)
        # A linear stage (ridge on the past values, penalty chosen on validation) before the
        # network: small data sets get most of their skill from it. One per series in local mode.
        Z = skill.linear_inputs(X, n_targets, lookback)
        if self.mode == "global":
            linear = self.linear_ if warm else skill.fit_linear(Z, Y, M, train, val)
            Y = np.where(M, Y - Z @ linear, 0.0)
        else:
            linear = np.stack([skill.fit_linear(Z, Y, M, train & (w_series == s), val & (w_series == s))
                               for s in range(values.shape[0])])
            Y = np.where(M, Y - np.einsum("np,npm->nm", Z, linear[w_series]), 0.0)
        del Z

        quantiles = params["quantiles"]
        loss_id = _losses.PINBALL if quantiles else _losses.MSE
        lparams = np.asarray(quantiles if quantiles else [0.0], dtype=np.float64)
        n_out = Y.shape[1] * (len(quantiles) if quantiles else 1)
        if warm:
            net = self.network_
            if (net.input_size, net.output_size, net.dtype) != (X.shape[2], n_out, np.dtype(dtype)):
                raise ValueError(
                    f"warm_start=True continues the fitted network, which reads {net.input_size} inputs and "
                    f"writes {net.output_size} outputs ({net.dtype}); these data and parameters need {X.shape[2]} "
                    f"and {n_out} ({dtype}). Keep the parameters of the first fit, or fit afresh.")
        else:
            net = Network(X.shape[2], params["units"], n_out, dtype, cell=self.cell).initialize(rng)

        def rows(mask):
            X_rows = X if mask.all() else X[mask]  # the common case needs no copy of the inputs
            return X_rows, np.ascontiguousarray(Y[mask], dtype=dtype), np.ascontiguousarray(M[mask], dtype=dtype)

        fit_kwargs = dict(epochs=self.epochs, batch_size=self.batch_size, loss_id=loss_id, lparams=lparams,
                          optimizer=params["optimizer"], clipnorm=self.clipnorm, validation_fraction=0.0,
                          early_stopping=self.early_stopping, patience=self.patience, device=params["device"],
                          drop=params["drop"])

        def train_on(net, mask_train, mask_val, rng, verbose, **checkpoints):
            Xt, Yt, Mt = rows(mask_train)
            if not warm:
                skill.start_at_baseline(net, Yt, Mt, len(quantiles) if quantiles else 1)
            Xv, Yv, Mv = rows(mask_val) if mask_val.any() else (None, None, None)
            return _training.fit(net, Xt, Yt, Mt, **fit_kwargs, rng=rng, verbose=verbose, X_val=Xv, Y_val=Yv,
                                 M_val=Mv, client=client, **checkpoints)

        # No gate for quantile models (each quantile is its own correction) nor for models with
        # dropout (a gate near 0 would silence the spread of their Monte-Carlo samples).
        gated = not quantiles and not self._drop().any()

        def gate(net, local_params=None):
            return self._gate(net, local_params, X, Y, M, w_series, train, val, params["device"]) if gated else None

        def fitted(model, net, history, shrink):
            """Record the fit in ``model``: at the end, after Ctrl-C, or for a checkpoint."""
            if warm:
                return model._warm_fitted(ds, history, int(train.sum()), shrink, values[:, n_time - lookback:])
            model._fitted(ds, net, params, scaler, history, int(train.sum()), (targets, past, future), dim, freq,
                          series_dims, calendar, bool((codes == skill.BASELINES["persistence"]).all()), axis,
                          values[:, n_time - lookback:])
            model._set_skill(codes, season, shrink, True)
            model.linear_ = linear
            model.calibration_ = None
            return model

        local_params = local_seeds = None
        if self.mode == "local" and client is not None:
            local_params, history, local_seeds = _fit_local_on(client, net, values.shape[0], w_series, train, val,
                                                               rng, rows, fit_kwargs, self.verbose)
        elif self.mode == "local":
            local_params, history, local_seeds = _fit_local(net, values.shape[0], w_series, train, val, rng, train_on,
                                                            self.verbose)
        else:
            from numlstm.forecast import modelfile

            history = {}  # filled epoch by epoch: kept, with the last completed epoch's weights, after Ctrl-C
            self.local_params_ = self.local_seeds_ = None
            checkpoints = modelfile.training_checkpoints(
                lambda net, history: fitted(copy.copy(self), net, history, gate(net)), net, checkpoint=checkpoint,
                checkpoint_every=checkpoint_every, resume=resume, early_stopping=self.early_stopping)
            try:
                train_on(net, train, val, rng, self.verbose, history=history, **checkpoints)
            except KeyboardInterrupt:
                fitted(self, net, history, gate(net))
                raise

        shrink = gate(net, local_params)
        if not warm:
            self.local_params_ = local_params
            self.local_seeds_ = local_seeds
        return fitted(self, net, history, shrink)

    def _check_warm(self, warm_start, names, dim, client, stream):
        """Whether this fit continues the fitted one (see ``fit``'s ``warm_start``)."""
        if not isinstance(warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be True or False, got {warm_start!r}.")
        if not warm_start:
            return False
        self._check_fitted()
        if self.mode != "global" or client is not None or stream is True or not self.gap_fill_:
            raise ValueError("warm_start=True continues a global model fitted in memory: use mode='global', no "
                             "client and stream=False (a model from a streamed fit cannot be continued).")
        if tuple(names) != (self.targets_, self.covariates_, self.future_covariates_) or dim != self.dim_:
            raise ValueError(
                f"warm_start=True needs the variables of the first fit: target={self.targets_}, covariates="
                f"{self.covariates_}, future_covariates={self.future_covariates_}, dim={self.dim_!r}; got "
                f"{list(names[0])}, {list(names[1])}, {list(names[2])}, {dim!r}.")
        return True

    def _warm_fitted(self, ds, history, n_windows, shrink, tail):
        """Record a warm-started fit: the history goes on; the scaling and series stay the
        first fit's; the tail (for ``predict()``) moves on when ``ds`` has the fitted series."""
        self.history_ = {k: list(self.history_.get(k, [])) + list(v) for k, v in history.items()}
        self.n_windows_ = n_windows
        self._set_skill(self._codes, self.season_, shrink, True)
        index = _series_index(ds, self.series_dims_)
        if all(a.equals(b) for a, b in zip(index, self._series_index)):
            self._tail = (tail, ds[self.dim_].values[ds.sizes[self.dim_] - tail.shape[1]:])
        return self

    @staticmethod
    def _gate(net, local_params, X, Y, M, series, train, val, device):
        """The gate on the network's correction (see ``skill.shrink``), from the validation
        windows (the training ones without validation): (horizon * n_targets,), or one
        row per series in local mode."""
        if local_params is None:
            sel = val if val.any() else train
            return skill.shrink(_training.predict(net, np.ascontiguousarray(X[sel]), device).astype(np.float64),
                                Y[sel], M[sel])
        gates = np.ones((local_params.shape[0], Y.shape[1]))
        for s in range(local_params.shape[0]):
            mine = val & (series == s) if (val & (series == s)).any() else train & (series == s)
            if mine.any():
                own = copy.copy(net)
                own.params = local_params[s]
                gates[s] = skill.shrink(_training.predict(own, np.ascontiguousarray(X[mine]), "cpu").astype(
                    np.float64), Y[mine], M[mine])
        return gates

    def _baseline_codes(self, X, Y, M, series, n_series, n_targets, season):
        """Per (series, target) baseline codes (see :mod:`numlstm.forecast.skill`) from the training windows."""
        choice = self._baseline_choice()
        if choice == "auto":
            return skill.choose_baselines(X, Y, M, series, n_series, season)
        if choice == "seasonal" and not season:
            raise ValueError("baseline='seasonal' needs a season: pass season=<steps> (at most lookback), or use "
                             "baseline='auto' or 'persistence'.")
        return np.full((n_series, self.horizon, n_targets), skill.BASELINES[choice], dtype=np.int8)

    def _baseline_choice(self):
        """The baseline asked for: ``relative`` True/False (the older knob) wins over ``baseline``."""
        if isinstance(self.relative, (bool, np.bool_)):
            return "persistence" if self.relative else "none"
        if self.baseline is None:
            return "none"
        if not isinstance(self.baseline, str) or self.baseline not in ("auto", "persistence", "seasonal", "none"):
            raise ValueError(f"baseline must be 'auto', 'persistence', 'seasonal' or None, got {self.baseline!r}.")
        return self.baseline

    def _skill_config(self):
        """The baselines, season, gate and gap handling as JSON-able values, for model files."""
        return {"baseline": self._codes.tolist(), "season": self.season_,
                "shrink": None if self.shrink_ is None else self.shrink_.tolist(), "gap_fill": self.gap_fill_,
                "linear": None if self.linear_ is None else self.linear_.tolist(),
                "calibration": None if getattr(self, "calibration_", None) is None else self.calibration_.tolist()}

    def _restore_skill(self, config):
        """Undo :meth:`_skill_config`; a file from before baselines holds none (``relative`` says which)."""
        if config is None:
            n_series = self.scaler_.mean.shape[0]
            codes = np.full((n_series, self.horizon, len(self.targets_)), int(self.relative_), dtype=np.int8)
            self.linear_ = self.calibration_ = None
            return self._set_skill(codes, None, None, False)
        calibration = config.get("calibration")
        self.calibration_ = None if calibration is None else np.asarray(calibration, dtype=np.float64)
        linear = config.get("linear")
        self.linear_ = None if linear is None else np.asarray(linear, dtype=np.float64)
        return self._set_skill(np.array(config["baseline"], dtype=np.int8).reshape(-1, self.horizon,
                                                                                     len(self.targets_)),
                               config["season"], config["shrink"], config["gap_fill"])

    def _set_skill(self, codes, season, shrink, gap_fill):
        """Record the baselines, season, shrinkage gate and gap handling of a fit (or a model file)."""
        self._codes = np.asarray(codes, dtype=np.int8)
        self.baseline_ = np.array([skill.NAMES[int(c)] for c in self._codes.ravel()], dtype=object).reshape(
            self._codes.shape)
        self.season_ = season
        if shrink is not None:
            shrink = np.asarray(shrink, dtype=np.float64)
            shape = (self.horizon, len(self.targets_))
            shrink = shrink.reshape(shape if shrink.size == np.prod(shape) else (-1,) + shape)
        self.shrink_ = shrink
        self.gap_fill_ = bool(gap_fill)
        return self

    def _fitted(self, ds, net, params, scaler, history, n_windows, names, dim, freq, series_dims, calendar, relative,
                axis, tail):
        """Record a fit's results and the data's labels (shared by the in-memory and streamed fits)."""
        self.network_ = net
        self.device_ = params["device"]
        self.scaler_ = scaler
        self.history_ = history
        self.n_windows_ = n_windows
        self.targets_, self.covariates_, self.future_covariates_ = names
        self.dim_ = dim
        self.freq_ = freq
        self.series_dims_ = series_dims
        self.calendar_features_ = calendar
        self.quantiles_ = params["quantiles"]
        self.relative_ = relative
        self._series_index = _series_index(ds, series_dims)
        self._series_coords = _series_frame(ds, series_dims, [ds.sizes[d] for d in series_dims], dim)
        self._var_info = {n: {"dims": list(ds[n].dims), "attrs": dict(ds[n].attrs)} for n in self._variables}
        self._data_attrs = dict(ds.attrs)
        self._time = {"kind": axis.kind, "calendar": axis.calendar, "attrs": dict(ds[dim].attrs)}
        self._tail = (tail, ds[dim].values[len(axis) - tail.shape[1]:])
        return self

    def _streams(self, stream, ds, variables, series_dims, n_time, n_calendar, params):
        """Whether this fit streams its data (see ``fit``'s ``stream``)."""
        if not (isinstance(stream, (bool, np.bool_)) or (isinstance(stream, str) and stream == "auto")):
            raise TypeError(f"stream must be 'auto', True or False, got {stream!r}.")
        if not _is_lazy(ds, variables):
            return False
        if stream != "auto":
            return bool(stream)
        n_series = int(np.prod([ds.sizes[d] for d in series_dims]))
        window_bytes = n_series * n_time * params["lookback"] * (len(variables) + 2 * n_calendar) * \
            np.dtype(params["dtype"]).itemsize
        return window_bytes > _memory_bytes() / 4

    def _fit_streamed(self, ds, targets, past, future, dim, series_dims, axis, freq, calendar, params):
        """``fit`` out of core: see :mod:`numlstm.forecast.streaming`."""
        variables = targets + past + future
        lookback, horizon = params["lookback"], params["horizon"]
        n_time, n_targets = len(axis), len(targets)
        n_series = int(np.prod([ds.sizes[d] for d in series_dims]))
        frac = params["validation_fraction"]
        first, last = lookback - 1, n_time - horizon - 1
        cut = n_time if frac == 0 else first + int(math.ceil((1 - frac) * (last - first + 1)))
        blocks = streaming.SeriesBlocks(ds, variables, dim, series_dims)
        stats = streaming.Statistics(blocks, n_series, len(variables), n_targets, cut, lookback)
        self._check_observed(stats.observed, targets)
        static = [k for k, n in enumerate(variables) if dim not in ds[n].dims]
        scaler = _global_scaling(SeriesScaler(mean=stats.mean, std=stats.std), stats.first, static)
        relative = streaming.trending(stats.r2) if self.relative == "auto" else bool(self.relative)
        cal = timeaxis.calendar_features(axis.index, calendar)[0] if calendar else None
        n_features = len(variables) + 2 * len(calendar)
        known = np.arange(n_features - len(future) - 2 * len(calendar), n_features)
        origins = np.arange(first, last + 1)
        train = origins[origins + horizon < cut] if frac > 0 else origins
        val = origins[origins >= cut - 1] if frac > 0 else origins[:0]
        if frac > 0 and (not train.size or not val.size):
            raise ValueError(
                f"validation_fraction={frac} leaves no {'training' if not train.size else 'validation'} "
                f"windows; use a fraction between the two or a longer record.")
        cutter = streaming.WindowCutter(scaler, n_targets, cal, lookback, horizon, known, relative, params["dtype"])
        quantiles = params["quantiles"]
        loss_id = _losses.PINBALL if quantiles else _losses.MSE
        lparams = np.asarray(quantiles if quantiles else [0.0], dtype=np.float64)
        n_out = horizon * n_targets * (len(quantiles) if quantiles else 1)
        rng = params["rng"]
        net = Network(n_features + (known.size > 0), params["units"], n_out, params["dtype"],
                      cell=self.cell).initialize(rng)
        self.local_params_ = self.local_seeds_ = None
        kept = {}  # after Ctrl-C: the completed epochs' history and window count

        def fitted(history, n_windows):
            self._fitted(ds, net, params, scaler, history, n_windows, (targets, past, future), dim, freq, series_dims,
                         calendar, relative, axis, stats.tail)
            # The streamed fit keeps the older design: persistence or no baseline, windows with gaps skipped.
            self.linear_ = self.calibration_ = None
            return self._set_skill(np.full((n_series, horizon, n_targets), int(relative), dtype=np.int8), None,
                                   None, False)

        try:
            history, n_windows = streaming.train(
                net, blocks, cutter, train, val, epochs=self.epochs, batch_size=self.batch_size,
                shuffle_buffer=streaming.SHUFFLE_BUFFER, loss_id=loss_id, lparams=lparams,
                optimizer=params["optimizer"], clipnorm=self.clipnorm, early_stopping=self.early_stopping,
                patience=self.patience, rng=rng, verbose=self.verbose, drop=params["drop"], kept=kept)
        except KeyboardInterrupt:
            if "history" in kept:
                fitted(kept["history"], kept["n_windows"])
            raise
        return fitted(history, n_windows)

    @staticmethod
    def _check_observed(observed, targets):
        """Refuse an all-NaN target; warn about series without any observed target."""
        if not observed.any():
            raise ValueError(
                f"target {targets if len(targets) > 1 else targets[0]!r} is NaN everywhere; there is nothing to "
                "learn from.")
        empty = ~observed
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} of {empty.size} series have no observed target value; they are left out "
                "of training and their forecasts will be NaN.", MissingInputWarning, stacklevel=3)

    # -------------------------------------------------------------- predict

    def predict(self, data=None, *, horizon=None, future_covariates=None, samples=None, seed=0):
        """Forecast the next ``horizon`` steps after the end of ``data``.

        Parameters
        ----------
        data : xarray.Dataset or named DataArray, optional
            The recent past: at least ``lookback`` steps of the target(s) and
            covariates, for any series: fitted ones (all or some, in any
            order) keep their fitted scaling; a series not seen at fit (a new
            or ungauged station, in a global model) is scaled by its own
            observed history in ``data`` (give it a long stretch), its static
            covariates by the fit's. Default: the end of the data given to
            :meth:`fit`. On dask-backed data the result is lazy, one task per
            chunk of series.
        horizon : int, optional
            Steps to forecast, at most the fitted ``horizon`` (the default).
        future_covariates : xarray.Dataset, optional
            Required when the model was fitted with future covariates: their
            values at the ``horizon`` time labels that follow ``data``.
        samples : int, optional
            Monte-Carlo dropout: for a model fitted with ``dropout`` or
            ``recurrent_dropout``, run the network ``samples`` times with dropout
            left on (fresh masks each time) and return every run along a
            trailing ``sample`` dimension, an ensemble whose spread estimates
            the model's uncertainty (Gal and Ghahramani, 2016): take
            ``.quantile([0.1, 0.9], dim="sample")`` for a band, ``.mean("sample")``
            for a point forecast. Not with ``quantiles``.
        seed : int, default 0
            Seeds the Monte-Carlo masks: the same seed gives the same samples
            of a series, whichever other series are predicted with it and
            however dask data is chunked.

        Returns
        -------
        xarray.Dataset
            One variable per target, with the target's dimensions and
            attributes; the time coordinate continues the data's own, one step
            after its last label. With ``quantiles``, a trailing ``quantile``
            dimension; with ``samples``, a trailing ``sample`` dimension. Series
            whose last ``lookback`` inputs are incomplete get NaN (with a
            :class:`MissingInputWarning`).

        Examples
        --------
        >>> import numlstm
        >>> ds = numlstm.datasets.load("seattle_weather")
        >>> fc = numlstm.Forecaster(lookback=30, horizon=7, units=8, epochs=1, random_state=0)
        >>> fc = fc.fit(ds, "temp_max", covariates=["precipitation"])
        >>> out = fc.predict(ds.isel(time=slice(0, 200)), horizon=3)
        >>> [str(t)[:10] for t in out["time"].values]
        ['2012-07-19', '2012-07-20', '2012-07-21']
        """
        self._check_fitted()
        h = self._check_horizon(horizon)
        sampling = self._check_sampling(samples, seed)
        if data is not None and _is_lazy(_as_dataset(data, "data"), self._variables):
            return self._lazy_predict(_as_dataset(data, "data"), h, future_covariates, sampling)
        features, tables, frame, new_time, time_attrs = self._prediction_features(data, future_covariates)
        rows = np.arange(features.shape[0])
        out = self._forecast(features, tables, rows, np.full(rows.size, self.lookback - 1), sampling)[:, :h]
        self._warn_missing(out, "the last lookback steps")
        return self._dataset(out, frame, {self.dim_: (self.dim_, new_time[:h], dict(time_attrs))}, (self.dim_,),
                             sampling)

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
        forecast's time labels and attrs."""
        if data is None:
            values, time = self._tail
            tables = self._tables(values, np.arange(values.shape[0]))
            frame, time_attrs = self._series_coords, self._time["attrs"]
        else:
            ds = _as_dataset(data, "data")
            self._check_history(ds)
            # only the last lookback steps, unless a series not seen at fit needs its history for scaling
            new = (self._check_data(ds) < 0).any()
            values, time, time_attrs, positions = self._read(
                ds if new else ds.isel({self.dim_: slice(-self.lookback, None)}))
            tables = self._tables(values, positions)
            values, time = values[:, -self.lookback:], time[-self.lookback:]
            frame = self._frame(ds)
        new_time = timeaxis.continue_time_axis(time, self.horizon, self.freq_, name=self.dim_)
        future = self._future_values(future_covariates, new_time, frame)
        features = self._features(np.concatenate([values, future], axis=1), tables,
                                  np.concatenate([time, new_time]))
        return features, tables, frame, new_time, time_attrs

    def _tables(self, values, positions):
        """Per series of the data (rows of ``values``): the scaling ``mean``/``std``
        (S, F), the baseline ``codes`` (S, horizon, k) and the network ``rows``. A
        fitted series (``positions`` >= 0) has its fitted ones; a new series (-1) is
        scaled by its own observed history in ``values`` (static covariates by the
        fit's across-series scaling) and takes the baseline most fitted series
        took, per lead and target; its network row is numbered after the fitted ones."""
        fitted = np.maximum(positions, 0)
        mean, std = self.scaler_.mean[fitted].copy(), self.scaler_.std[fitted].copy()
        codes, rows = self._codes[fitted].copy(), positions.copy()
        new = np.flatnonzero(positions < 0)
        if new.size:
            if self.local_params_ is not None:
                raise ValueError(
                    f"data has {new.size} series the model was not fitted on; a local model (mode='local') has "
                    "one network per fitted series and none for them. Forecast them with a global model "
                    "(mode='global'), or refit with them included.")
            own = SeriesScaler.fit(values[new])
            varying = [k for k, n in enumerate(self._variables) if self.dim_ in self._var_info[n]["dims"]]
            mean[np.ix_(new, varying)] = own.mean[:, varying]
            std[np.ix_(new, varying)] = own.std[:, varying]
            counts = np.stack([(self._codes == c).sum(axis=0) for c in range(len(skill.BASELINES))])
            codes[new] = counts.argmax(axis=0).astype(np.int8)
            rows[new] = self.scaler_.mean.shape[0] + np.arange(new.size)
        return {"mean": mean, "std": std, "codes": codes, "rows": rows}

    def backtest(self, data, *, start, stride=1, horizon=None):
        """Rolling-origin forecasts over ``data``, without refitting.

        Every ``stride``-th time step from ``start`` on is a forecast origin
        (``init_time``: the last observed step); from each, the next
        ``horizon`` steps are forecast from the ``lookback`` steps up to it.
        Only origins whose whole horizon lies inside ``data`` are used. All
        origins of all series run through the network in one batched pass.

        Parameters
        ----------
        data : xarray.Dataset or named DataArray
            The record, with the training variables and series. On dask-backed
            data the result is lazy, one task per chunk of series.
        start : label or str
            The first origin: a label of the time axis, or anything comparable
            with it (``"2015-01-01"`` for a datetime axis).
        stride : int, default 1
            Steps between origins.
        horizon : int, optional
            Lead times to forecast, at most the fitted ``horizon``.

        Returns
        -------
        xarray.Dataset
            One variable per target with dimensions ``(init_time, lead,
            *series dims)`` (and ``quantile``); ``lead`` counts steps (1 is
            the step after the origin) and the 2-D coordinate
            ``valid_time(init_time, lead)`` holds the time each forecast is
            for. :func:`numlstm.forecast.baselines.observed` lines the
            observations up with the forecasts, and
            :mod:`numlstm.forecast.baselines` gives naive forecasts on the
            same layout to score against.

        Examples
        --------
        >>> import numlstm
        >>> ds = numlstm.datasets.load("us_population")
        >>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=8, epochs=2, random_state=0).fit(ds, "population")
        >>> bt = fc.backtest(ds, start="2000-01-01", stride=4)
        >>> dict(bt.sizes)
        {'init_time': 9, 'lead': 4}
        >>> str(bt["valid_time"].values[0, 0])[:10]
        '2000-04-01'
        """
        self._check_fitted()
        h = self._check_horizon(horizon)
        stride = check_positive_int(stride, "stride")
        ds = _as_dataset(data, "data")
        if _is_lazy(ds, self._variables):
            return self._lazy_backtest(ds, start, stride, h)
        values, time, time_attrs, positions = self._read(ds)
        origins = self._origins(ds, start, stride)
        tables = self._tables(values, positions)
        features = self._features(values, tables, time)
        n_series = values.shape[0]
        series = np.repeat(np.arange(n_series), origins.size)
        out = self._forecast(features, tables, series, np.tile(origins, n_series))[:, :h]
        self._warn_missing(out, "the lookback steps before some origins")
        out = out.reshape((n_series, origins.size) + out.shape[1:])
        return self._dataset(out, self._frame(ds), self._backtest_coords(ds, origins, h), ("init_time", "lead"))

    def calibrate(self, data, *, start, stride=1):
        """Calibrate the quantile bands on held-out data (split conformal, by lead).

        Backtests ``data`` from ``start`` (use time the model was not fitted
        on), and shifts each quantile of each lead and target by the conformal
        quantile of its residuals, in units of each series' standard
        deviation: a quantile at level ``q`` then has, on data like these, at
        least a share ``q`` of the observations below it, up to the finite
        sample. The shifts are stored in ``calibration_`` (and in the model
        file) and apply to every later :meth:`predict` and :meth:`backtest`;
        calibrating again replaces them.

        Parameters
        ----------
        data : xarray.Dataset or named DataArray
            A record with the fitted variables (new series allowed).
        start, stride
            As in :meth:`backtest`.

        Returns
        -------
        self
        """
        self._check_fitted()
        if not self.quantiles_:
            raise ValueError("calibrate adjusts quantile bands, and this model forecasts points; fit it with "
                             "quantiles=[0.1, 0.5, 0.9] (for example) first.")
        ds = _as_dataset(data, "data")
        if _is_lazy(ds, self._variables):
            ds = ds[self._variables].compute()
        self.calibration_ = None
        bt = self.backtest(ds, start=start, stride=stride)
        values, _, _, positions = self._read(ds)
        std = self._tables(values, positions)["std"][:, :len(self.targets_)]  # (S, k)
        from numlstm.forecast import baselines

        obs = baselines.observed(ds, bt, dim=self.dim_)
        q = np.asarray(self.quantiles_)
        shifts = np.zeros((self.horizon, len(self.targets_), q.size))
        for k, name in enumerate(self.targets_):
            scale = xr.DataArray(std[:, k].reshape(self._frame(ds).shape) if self.series_dims_ else std[0, k],
                                 dims=self.series_dims_)
            err = ((obs[name] - bt[name]) / scale).transpose("lead", ..., "quantile").values
            err = err.reshape(err.shape[0], -1, q.size)
            for h in range(err.shape[0]):
                for j, level in enumerate(q):
                    e = err[h, :, j]
                    e = np.sort(e[np.isfinite(e)])
                    if e.size == 0:
                        continue
                    # the conformal rank: ceil((n + 1) q) for the upper side, its mirror below
                    if level >= 0.5:
                        rank = min(e.size, int(np.ceil((e.size + 1) * level))) - 1
                    else:
                        rank = max(1, int(np.floor((e.size + 1) * level))) - 1
                    shifts[h, k, j] = e[rank]
        self.calibration_ = shifts
        return self

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

    # ------------------------------------------------------------- helpers

    def _check_params(self):
        optimizer = make_optimizer("adam", self.learning_rate)
        units, dtype, device, rng = check_training_params(self)
        lookback = check_positive_int(self.lookback, "lookback")
        horizon = check_positive_int(self.horizon, "horizon")
        if not (isinstance(self.relative, (bool, np.bool_)) or (isinstance(self.relative, str) and
                                                                self.relative == "auto")):
            raise TypeError(f"relative must be 'auto', True or False, got {self.relative!r}.")
        if self.mode not in ("global", "local"):
            raise ValueError(f"mode must be 'global' (one model for every series) or 'local' (one model per series), "
                             f"got {self.mode!r}.")
        self._baseline_choice()  # checks baseline
        if not (self.season is None or (isinstance(self.season, str) and self.season == "auto")):
            skill.season_of(None, self.season, lookback)  # checks a given season against lookback
        return {"device": device, "lookback": lookback, "horizon": horizon, "units": units,
                "validation_fraction": float(self.validation_fraction), "quantiles": _check_quantiles(self.quantiles),
                "dtype": dtype, "optimizer": optimizer, "rng": rng, "drop": check_dropout(self)}

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
        series_dims = _series_dims(ds, self.targets_, dim)
        if set(series_dims) != set(self.series_dims_):
            raise ValueError(
                f"the targets in data have series dimensions {list(series_dims)}, but the model was fitted on "
                f"{list(self.series_dims_)}. Pass data with the same dimensions.")
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
            out[:, :, len(variables) - len(self.future_covariates_) + k] = arr.reshape(n_series, -1)
        return out

    def _features(self, values, tables, time):
        """The model's view of ``values`` (scaled, with the calendar columns and, for a
        gap-filling model, gaps filled and flagged), with the scaling of ``tables``."""
        scaled = SeriesScaler(mean=tables["mean"], std=tables["std"]).transform(values)
        return _model_view(scaled, time, self.calendar_features_, len(self._variables), self.gap_fill_)

    def _windows(self, features, series, origin):
        """The network's inputs for windows ``(series, origin)`` of ``features``, and which can be forecast."""
        n_var, n_cal = len(self._variables), len(self.calendar_features_)
        if self.gap_fill_:
            known = _known_columns(n_var, len(self.future_covariates_), n_cal)
        else:
            n_known = len(self.future_covariates_) + 2 * n_cal
            known = np.arange(features.shape[2] - n_known, features.shape[2])
        X, ok = window_inputs(features, series, origin, self.lookback, self.horizon, known, self.network_.dtype)
        if self.gap_fill_:
            ok &= _observed_enough(X, self.lookback, n_var, n_cal, len(self.targets_))
        return X, ok

    def _forecast(self, features, tables, series, origin, sampling=None):
        """Forecasts (n, horizon, n_targets[, Q]) in data units; NaN where inputs are missing."""
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
        if self.linear_ is not None:
            Z = skill.linear_inputs(X, n_targets, self.lookback)
            fitted = Z @ self.linear_ if self.linear_.ndim == 2 else np.einsum("np,npm->nm", Z, self.linear_[rows])
            base = base + fitted.reshape(shape)
        raw = raw + base[expand]
        if self.quantiles_ and getattr(self, "calibration_", None) is not None:
            raw = np.sort(raw + self.calibration_[None], axis=-1)  # conformal shifts; quantiles never cross
        scale = (slice(None), None, slice(None)) + expand[3:]
        out = raw * tables["std"][series, :n_targets][scale] + tables["mean"][series, :n_targets][scale]
        out[~ok] = np.nan
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

    # --------------------------------------------------------- model files

    def save(self, path):
        """Write the fitted model to ``path`` (``.nc`` netCDF or ``.zarr``).

        The file holds the weights as variables with named dimensions, the
        scaling statistics, the series coordinates, the last ``lookback``
        steps of the training data (for :meth:`predict` without data) and a
        JSON configuration with a format version in the attributes. netCDF is
        written with the scipy engine, so no netCDF C library is needed. The
        write is atomic: a temporary file renamed into place, so a failure
        leaves no partial file and an existing file intact. Read it back with
        :func:`numlstm.load`; no pickle is involved.
        """
        from numlstm import io
        from numlstm.forecast import modelfile

        self._check_fitted()
        io.write_dataset(modelfile.to_dataset(self), path)


def load(path):
    """Load a :class:`Forecaster` written by :meth:`Forecaster.save`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nc`` or ``.zarr`` model file.

    Returns
    -------
    Forecaster
        Fitted, ready to :meth:`~Forecaster.predict` and
        :meth:`~Forecaster.backtest`.

    Raises
    ------
    ValueError
        If the file is not a numlstm model, was written by a newer numlstm
        (a higher format version), or is incomplete.

    Examples
    --------
    >>> import os, tempfile
    >>> import xarray as xr, numlstm
    >>> ds = numlstm.datasets.load("us_population")
    >>> fc = numlstm.Forecaster(lookback=8, horizon=4, units=8, epochs=2, random_state=0).fit(ds, "population")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     fc.save(os.path.join(folder, "model.nc"))
    ...     again = numlstm.load(os.path.join(folder, "model.nc"))
    >>> xr.testing.assert_identical(again.predict(), fc.predict())
    >>> numlstm.load("model.pkl")
    Traceback (most recent call last):
    ...
    ValueError: path 'model.pkl' must end in .nc (netCDF) or .zarr (zarr store); got '.pkl'. For example: model.nc.
    """
    from numlstm import io
    from numlstm.forecast import modelfile

    return modelfile.from_dataset(io.read_model(path, modelfile.FORMAT_NAME, modelfile.FORMAT_VERSION), Forecaster)


# ---------------------------------------------------------------- validation


def _global_scaling(scaler, first, static):
    """``scaler`` with the ``static`` features (no time dimension) scaled across series:
    per series they are constant, and would all scale to 0. ``first`` (S, F) holds
    each feature's first value."""
    if not static:
        return scaler
    column = first[:, static]
    mean, std = np.nanmean(column, axis=0), np.nanstd(column, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    new_mean, new_std = scaler.mean.copy(), scaler.std.copy()
    new_mean[:, static], new_std[:, static] = mean, std
    return SeriesScaler(mean=new_mean, std=new_std)


def _model_view(scaled, index, calendar, n_variables, gap_fill):
    """What the network reads: scaled variables and calendar columns, and with
    ``gap_fill`` the gaps carried forward plus one indicator column per variable."""
    features = _with_calendar(scaled, index, calendar)
    return skill.fill_gaps(features, n_variables) if gap_fill else features


def _known_columns(n_variables, n_future, n_calendar):
    """Columns of the model's view known in the future: the future covariates, then the calendar."""
    return np.arange(n_variables - n_future, n_variables + 2 * n_calendar)


def _observed_enough(X, lookback, n_variables, n_calendar, n_targets):
    """Windows (rows of ``X`` from a gap-filled view) with at least ``skill.MIN_OBSERVED``
    of every target's lookback steps observed."""
    first = n_variables + 2 * n_calendar  # the view is [variables | calendar | indicators] (| flag)
    indicators = X[:, :lookback, first:first + n_targets]
    return (1.0 - indicators.mean(axis=1)).min(axis=1) >= skill.MIN_OBSERVED


