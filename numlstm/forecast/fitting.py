"""The Forecaster's fit pipeline: from a checked dataset to a fitted model.

:class:`Fitting` is a base of :class:`numlstm.Forecaster`. In memory, a fit
scales every series on the time before the validation cut, builds the model's
view (gaps carried forward with an indicator per variable, calendar columns),
cuts the training and validation windows, picks each series' baseline, fits
the linear stage, trains the network on what both leave (one global network,
or one per series in local mode, :mod:`numlstm.forecast.local`) and fits the
gate on the validation windows (:mod:`numlstm.forecast.skill`). Out of core,
:meth:`Fitting._fit_streamed` streams the windows instead
(:mod:`numlstm.forecast.streaming`). The fitted state recorded here is what
:mod:`numlstm.forecast.prediction` reads and :mod:`numlstm.forecast.modelfile`
writes.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from numlstm._threads import one_blas_thread
from numlstm._validation import check_dropout, check_positive_int, check_training_params
from numlstm.core import losses as _losses
from numlstm.core import training as _training
from numlstm.core.network import Network
from numlstm.core.optimizers import make_optimizer
from numlstm.forecast import cycles, skill, smoothing, streaming
from numlstm.forecast.inputs import (
    MissingInputWarning,
    _check_loss,
    _check_quantiles,
    _is_lazy,
    _memory_bytes,
    _series_frame,
    _series_index,
    _stack,
    known_columns,
    model_view,
    observed_enough,
)
from numlstm.forecast.local import _fit_local, _fit_local_on
from numlstm.forecast.windows import SeriesScaler, scale_static_across_series, window_inputs


class Fitting:
    """The fit side of :class:`numlstm.Forecaster`."""

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
        if not isinstance(self.stages, str) or self.stages not in skill.STAGE_WEIGHTS:
            raise ValueError(f"stages must be 'mean' (the forecast is the mean of the stages' forecasts) or 'sum' "
                             f"(the stages added up), got {self.stages!r}.")
        if not (isinstance(self.smoothing, (bool, np.bool_)) or (isinstance(self.smoothing, str) and
                                                                 self.smoothing == "auto")):
            raise TypeError(f"smoothing must be 'auto' (a local exponential-smoothing forecast averaged in when there "
                            f"are no covariates), True (always) or False (never), got {self.smoothing!r}.")
        if not (isinstance(self.nonnegative, (bool, np.bool_)) or (isinstance(self.nonnegative, str) and
                                                                   self.nonnegative == "auto")):
            raise TypeError(f"nonnegative must be 'auto' (forecasts floored at 0 for the series whose observed "
                            f"values are all >= 0), True (every series) or False (never), got {self.nonnegative!r}.")
        quantiles = _check_quantiles(self.quantiles)
        loss = _losses.NAMES[_check_loss(self.loss, quantiles)]
        if not (self.season is None or (isinstance(self.season, str) and self.season == "auto")):
            skill.season_of(None, self.season, lookback)  # checks a given season against lookback
        return {"device": device, "lookback": lookback, "horizon": horizon, "units": units,
                "validation_fraction": float(self.validation_fraction), "quantiles": quantiles,
                "loss": loss, "dtype": dtype, "optimizer": optimizer, "rng": rng,
                "drop": check_dropout(self)}

    def _fit_in_memory(self, ds, names, dim, series_dims, axis, freq, calendar, params, *, client, warm, rescale,
                       checkpoint, checkpoint_every, resume):
        """``fit`` on data held in memory, after ``fit`` checked its arguments."""
        targets, past, future = names
        variables = targets + past + future
        lookback, horizon = params["lookback"], params["horizon"]
        n_time = len(axis)
        values = _stack(ds, variables, dim, series_dims)
        n_targets = len(targets)
        self._check_observed(np.isfinite(values[:, :, :n_targets]).any(axis=(1, 2)), targets)

        # Time split for validation: scaling and training windows see only the time before `cut`.
        frac = params["validation_fraction"]
        cut = skill.validation_cut(n_time, lookback, horizon, frac)
        if warm:  # the fitted scaling; new series by their own history (every series with rescale=True)
            positions = self._check_data(ds)
            tables = self._tables(values, positions)
            if rescale:
                varying = [k for k, n in enumerate(variables) if dim in ds[n].dims]  # static ones stay as fitted
                own = SeriesScaler.fit(values, slice(0, cut))
                tables["mean"][:, varying], tables["std"][:, varying] = own.mean[:, varying], own.std[:, varying]
            scaled = SeriesScaler(mean=tables["mean"], std=tables["std"]).transform(values)
        else:
            scaler = scale_static_across_series(SeriesScaler.fit(values, slice(0, cut)), values[:, 0],
                                                [k for k, n in enumerate(variables) if dim not in ds[n].dims])
            scaled = scaler.transform(values)
        rng = params["rng"]
        # The model's view: gaps carried forward with an indicator per variable; training
        # hides a few more inputs the same way so that gaps are no surprise.
        features = model_view(skill.hide_inputs(scaled, len(variables)), axis.index, calendar, len(variables), True)
        known = known_columns(len(variables), len(future), len(calendar))

        dtype = params["dtype"]
        w_series, w_origin, w_Y, w_M = skill.target_windows(scaled[:, :, :n_targets], lookback, horizon)
        X, ok = window_inputs(features, w_series, w_origin, lookback, horizon, known, dtype)
        ok &= observed_enough(X, lookback, len(variables), len(calendar), n_targets)
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
        # the local exponential-smoothing member: kept by a warm fit (new series choose theirs from
        # their history, in _tables), else chosen per series on the whole record, on its own scale and,
        # where a form there fits better, on its logarithm (taken after the network's fit if it leads)
        member = on_log = None
        # the member forecasts the median the network is fitted to (the mean under the squared error)
        median = self._member_median() if warm else params["loss"] != _losses.MSE
        if warm:
            member = tables["smoothing"]
        elif (not (past or future) if isinstance(self.smoothing, str) else bool(self.smoothing)):
            member, on_log = smoothing.choose_pair(values[:, :, :n_targets], season)
            judge = val if val.any() else train  # none where it lost to the naive forecast on these windows
            member, on_log = (smoothing.screen(values[:, :, :n_targets], p, codes, season, w_series[judge],
                                               w_origin[judge], horizon, median) for p in (member, on_log))
        member_tail = None if member is None else smoothing.from_end(values[:, :, :n_targets], member, season,
                                                                     horizon, median)
        # which series' forecasts are floored at 0: a warm fit keeps the fitted series' flags, and a
        # value below 0 in the new data lifts a flag "auto" had set
        floor = skill.nonnegative_of(values[:, :, :n_targets], self.nonnegative)
        zeros = skill.zeros_of(values[:, :, :n_targets])  # where a floored series' forecasts snap to 0
        if warm:
            mine = positions >= 0
            kept = self._floors(len(self.scaler_.mean))
            if isinstance(self.nonnegative, str):
                kept[positions[mine]] &= floor[mine]
            else:
                kept[:] = bool(self.nonnegative)
            floor = kept
            if getattr(self, "zeros_", None) is None:  # a model from before the snap: its record's unknown
                zeros = None
            else:
                zero, smallest = self._zeros(len(self.scaler_.mean))
                zero[positions[mine]] |= zeros[0][mine]
                smallest[positions[mine]] = np.minimum(smallest[positions[mine]], zeros[1][mine])
                zeros = zero, smallest
        B = skill.baseline_values(X[:, :lookback], codes[w_series], horizon, season)
        Y = np.where(w_M, w_Y - B, 0.0).reshape(len(w_series), -1)
        M = w_M.reshape(len(w_series), -1)
        # A linear stage (ridge on the past values, penalty chosen on validation) before the
        # network: small data sets get most of their skill from it. One per series in local mode.
        # On a baseline it reads the lags level-free (it corrects the baseline and leaves the
        # level to it); with none it must forecast the level and reads the lags as they are.
        Z = skill.linear_inputs(X, n_targets, lookback)
        free = n_targets if skill.has_baseline(codes) else None
        loss_id = params["loss"]
        absolute = loss_id == _losses.MAE  # the ridge fits the median the network is trained on
        with one_blas_thread():  # no BLAS threads left spinning beside the kernels that train next
            if self.mode == "global":
                linear = (self.linear_ if warm else
                          skill.fit_linear(Z, Y, M, train, val, w_origin, n_targets=free, absolute=absolute))
                Y = np.where(M, Y - Z @ linear, 0.0)
            else:
                mine = [w_series == s for s in range(values.shape[0])]  # each series' own windows only
                linear = np.stack([skill.fit_linear(Z[m], Y[m], M[m], train[m], val[m], w_origin[m], n_targets=free,
                                                    absolute=absolute) for m in mine])
                Y = np.where(M, Y - np.einsum("np,npm->nm", Z, linear[w_series]), 0.0)
        del Z

        quantiles = params["quantiles"]
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
            model.nonnegative_, model.zeros_, model.member_median_ = floor, zeros, median
            if warm:
                return model._warm_fitted(ds, history, int(train.sum()), shrink, values[:, n_time - lookback:],
                                          (positions, tables) if rescale else None, member_tail)
            model._fitted(ds, net, params, scaler, history, int(train.sum()), (targets, past, future), dim, freq,
                          series_dims, calendar, bool((codes == skill.BASELINES["persistence"]).all()), axis,
                          values[:, n_time - lookback:])
            model._set_skill(codes, season, shrink, True, skill.stage_weights(codes, self.stages))
            model.linear_ = linear
            model.calibration_ = None
            model._set_smoothing(member, member_tail)
            return model

        # what a warm fit will drop or leave behind, said once it is recorded (not if it fails first)
        notes = self._warm_notes(ds, rescale) if warm else []
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
        fitted(self, net, history, shrink)
        if member is not None and not warm and val.any() and self._mixes_member():  # its weight, per series
            self.smoothing_ = self._weigh_member(values, axis.index, w_series[val], w_origin[val], on_log)
            if (self.smoothing_[..., 0] >= smoothing.LOG).any():  # the forecasts from the end move with it
                self._smoothing_tail = smoothing.from_end(values[:, :, :n_targets], self.smoothing_, season, horizon,
                                                          median)
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=3)  # user -> fit -> here
        return self

    def _check_warm(self, warm_start, names, dim, client, stream, rescale, resume):
        """Whether this fit continues the fitted one (see ``fit``'s ``warm_start`` and ``rescale``)."""
        if not isinstance(warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be True or False, got {warm_start!r}.")
        if not isinstance(rescale, (bool, np.bool_)):
            raise TypeError(f"rescale must be True or False, got {rescale!r}.")
        if rescale and not warm_start:
            raise ValueError("rescale=True refits the scaling of a warm-started fit; pass warm_start=True with it "
                             "(a fit without warm_start always learns its scaling afresh).")
        if resume is not None and warm_start:
            raise ValueError("resume= continues the interrupted fit its checkpoint holds, and warm_start=True the "
                             "fitted model: use one of them (resume= for a killed fit, warm_start=True for new data).")
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

    def _warm_notes(self, ds, rescale):
        """The warnings a warm fit on ``ds`` owes once recorded: a calibration dropped, and a
        ``predict()`` without data that would read the first fit's recent past on a new scale."""
        notes = []
        if getattr(self, "calibration_", None) is not None:
            notes.append("warm_start=True changes the network, so the conformal calibration of its quantile bands "
                         "(computed for the weights before) no longer holds and was dropped: call calibrate(data, "
                         "start=...) again.")
        _, same, aligned = self._recent_past(ds, self.lookback)
        if rescale and not same and not aligned:
            notes.append("rescale=True gave some fitted series a new scaling, but data does not end where the "
                         "first fit's data did, so predict() without data would read their recent past from "
                         "the first fit on the new scale: forecast them with predict(data), data holding their "
                         "recent past.")
        return notes

    def _recent_past(self, ds, n_steps):
        """How a warm fit on ``ds`` meets the recent past kept for ``predict()``: the labels of
        ``ds``'s last ``n_steps``, whether ``ds`` holds the fitted series, and whether it ends
        where the kept past does."""
        recent = ds[self.dim_].values[ds.sizes[self.dim_] - n_steps:]
        same = all(a.equals(b) for a, b in zip(_series_index(ds, self.series_dims_), self._series_index))
        return recent, same, np.array_equal(recent, self._tail[1])

    def _warm_fitted(self, ds, history, n_windows, shrink, tail, rescaled=None, member_tail=None):
        """Record a warm-started fit: the history goes on; the series stay the first fit's, and
        so does their scaling unless ``rescaled`` = (positions, tables) gives the data's series a
        new one; a calibration is dropped (it was for the weights before); the tail (for
        ``predict()``) moves on when ``ds`` has the fitted series, or, rescaled, those it has where
        it ends where the tail does, and the smoothing member's forecasts from the end of the
        data (``member_tail``) move with it."""
        self.history_ = {k: list(self.history_.get(k, [])) + list(v) for k, v in history.items()}
        self.n_windows_ = n_windows
        self._set_skill(self._codes, self.season_, shrink, True, skill.stage_weights(self._codes, self.stages))
        self.calibration_ = None
        recent, same, aligned = self._recent_past(ds, tail.shape[1])
        if same:
            self._tail = (tail, recent)
            if member_tail is not None:
                self._smoothing_tail = member_tail
        if rescaled is not None:
            positions, tables = rescaled
            mine = positions >= 0
            mean, std = self.scaler_.mean.copy(), self.scaler_.std.copy()
            mean[positions[mine]], std[positions[mine]] = tables["mean"][mine], tables["std"][mine]
            self.scaler_ = SeriesScaler(mean=mean, std=std)
            if aligned and not same:  # the rescaled series' rows move on; the others keep theirs
                values = self._tail[0].copy()
                values[positions[mine]] = tail[mine]
                self._tail = (values, self._tail[1])
                if member_tail is not None:
                    self._smoothing_tail = self._smoothing_tail.copy()
                    self._smoothing_tail[positions[mine]] = member_tail[mine]
        return self

    def _set_smoothing(self, params, tail):
        """Record the smoothing member: its ``params`` (S, k, 6) and its forecasts (S, horizon, k)
        from the end of the fitted record (for ``predict()``), or None for none."""
        self.smoothing_ = params
        self._smoothing_tail = tail
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
                "stages": list(self.stage_weights_),
                "linear": None if self.linear_ is None else self.linear_.tolist(),
                "calibration": None if getattr(self, "calibration_", None) is None else self.calibration_.tolist(),
                "nonnegative": None if getattr(self, "nonnegative_", None) is None else self.nonnegative_.tolist(),
                "member_median": self._member_median(),
                "zeros": None if getattr(self, "zeros_", None) is None else {
                    "observed": self.zeros_[0].tolist(),
                    "smallest": [[v if np.isfinite(v) else None for v in row] for row in self.zeros_[1].tolist()]}}

    def _restore_skill(self, config):
        """Undo :meth:`_skill_config`; a file from before baselines holds none (``relative`` says which)."""
        if config is None:
            n_series = self.scaler_.mean.shape[0]
            codes = np.full((n_series, self.horizon, len(self.targets_)), int(self.relative_), dtype=np.int8)
            self.linear_ = self.calibration_ = self.nonnegative_ = self.zeros_ = None
            self.member_median_ = False
            return self._set_skill(codes, None, None, False)
        floors = config.get("nonnegative")  # None in a file from before the floor: no forecast floored
        if floors is not None and not _rows(floors, lambda v: isinstance(v, bool)):
            raise ValueError(f"nonnegative is {floors!r}, not a list of true/false flags per series and target")
        self.nonnegative_ = None if floors is None else np.array(floors, dtype=bool)  # its shape checked by load
        self.zeros_ = _restore_zeros(config.get("zeros"))  # None before the snap: none snapped
        median = config.get("member_median", False)  # absent before the move: the member forecasts its mean
        if not isinstance(median, bool):
            raise ValueError(f"member_median is {median!r}, not true or false")
        self.member_median_ = median
        calibration = config.get("calibration")
        self.calibration_ = None if calibration is None else np.asarray(calibration, dtype=np.float64)
        linear = config.get("linear")
        self.linear_ = None if linear is None else np.asarray(linear, dtype=np.float64)
        stages = config.get("stages", [1.0, 1.0])  # files from before the weights: the stages summed
        if not (isinstance(stages, list) and len(stages) == 2 and all(
                isinstance(w, (int, float)) and not isinstance(w, bool) for w in stages)):
            raise ValueError(f"stages is {stages!r}, not a list of two weights (the linear stage's lags' and the "
                             "network's)")
        return self._set_skill(np.array(config["baseline"], dtype=np.int8).reshape(-1, self.horizon,
                                                                                     len(self.targets_)),
                               config["season"], config["shrink"], config["gap_fill"], stages)

    def _set_skill(self, codes, season, shrink, gap_fill, stages=(1.0, 1.0)):
        """Record the baselines, season, shrinkage gate, gap handling and the stages' weights
        ``(linear, network)`` of a fit (or a model file)."""
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
        self.stage_weights_ = (float(stages[0]), float(stages[1]))
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
        cut = skill.validation_cut(n_time, lookback, horizon, frac)
        blocks = streaming.SeriesBlocks(ds, variables, dim, series_dims)
        stats = streaming.Statistics(blocks, n_series, len(variables), n_targets, cut, lookback)
        self._check_observed(stats.observed, targets)
        static = [k for k, n in enumerate(variables) if dim not in ds[n].dims]
        scaler = scale_static_across_series(SeriesScaler(mean=stats.mean, std=stats.std), stats.first, static)
        relative = streaming.trending(stats.r2) if self.relative == "auto" else bool(self.relative)
        cal = cycles.calendar_features(axis.index, calendar)[0] if calendar else None
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
        loss_id = params["loss"]
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
            self.nonnegative_ = skill.floor_flags(stats.seen, stats.negative, self.nonnegative)
            self.zeros_, self.member_median_ = (stats.zero, stats.smallest), False
            self._set_smoothing(None, None)
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
                "of training and their forecasts will be NaN.",
                MissingInputWarning, stacklevel=4)  # user -> fit -> _fit_* -> here


def _restore_zeros(entry):
    """The skill entry ``"zeros"`` (``{"observed": flags, "smallest": values or null}`` per
    series and target) as ``zeros_``: None in a file from before it (its shape is checked by
    :func:`numlstm.load`)."""
    if entry is None:
        return None
    observed = entry.get("observed") if isinstance(entry, dict) else None
    smallest = entry.get("smallest") if isinstance(entry, dict) else None
    if not (_rows(observed, lambda v: isinstance(v, bool)) and _rows(smallest, lambda v: v is None or (
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0))
            and [len(row) for row in observed] == [len(row) for row in smallest]):
        raise ValueError(f"zeros is {entry!r}, not {{'observed': true/false flags, 'smallest': positive values or "
                         "null}} of the same shape, per series and target")
    return (np.array(observed, dtype=bool),
            np.array([[np.inf if v is None else v for v in row] for row in smallest], dtype=np.float64))


def _rows(value, ok):
    """Whether ``value`` is a list of equally long lists of values that pass ``ok``."""
    return (isinstance(value, list) and all(isinstance(row, list) and all(ok(v) for v in row) for row in value)
            and len({len(row) for row in value}) <= 1)
