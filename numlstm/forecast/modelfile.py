"""The Forecaster's model file: what :meth:`Forecaster.save` writes and :func:`load` reads.

Layout, an ordinary xarray Dataset:

- ``lstm{k}_W (lstm{k}_input, lstm{k}_gate)``, ``lstm{k}_U (lstm{k}_unit,
  lstm{k}_gate)``, ``lstm{k}_b (lstm{k}_gate)`` for each LSTM layer ``k``
  (gate blocks ``[i | f | g | o]``), or, in a GRU network,
  ``gru{k}_W (gru{k}_input, gru{k}_gate)``, ``gru{k}_U (gru{k}_unit,
  gru{k}_gate)``, ``gru{k}_b (gru{k}_bias, gru{k}_gate)`` (gate blocks
  ``[z | r | n]``; bias row 0 the input bias, row 1 the recurrent one); and
  ``head_W (head_input, head_output)``, ``head_b (head_output)``; in local
  mode (one model per series) each has a leading ``numlstm_series``
  dimension;
- ``scale_mean``, ``scale_std (numlstm_series, numlstm_feature)``: the
  per-series scaling of every input variable, fitted on the training data;
- ``tail (numlstm_series, numlstm_step, numlstm_feature)``: the last
  ``lookback`` steps of the training data, for ``predict()`` without data;
- the series coordinates of the training data (``station``, ``lat(station)``,
  ...), and ``numlstm_feature``, the input variable names;
- attributes ``numlstm_format = "numlstm.Forecaster"``,
  ``numlstm_format_version``, ``numlstm_version`` and ``numlstm_config``, a
  JSON object with the constructor parameters, variable roles, time axis
  (kind, calendar, step, the tail's labels), the network's shape and cell
  (``"network": {..., "cell": "lstm" | "gru"}``) and attributes to restore.

Format versions: 1 for LSTM networks (files written before GRU networks
existed have no ``cell`` and are LSTM networks), 2 for GRU networks, so that
a numlstm that predates them refuses such a file with "upgrade numlstm"
rather than as damaged; 3 for every file written since the Forecaster's
stages are weighted (``stages``; the skill entry ``"stages"``), which a
numlstm from before would forecast differently (it would add the stages up)
or call damaged (it knows no ``stages`` parameter). This numlstm reads all
three; a file without ``stages`` had its stages summed, and loads so. 4 for
every file written since the smoothing member (the ``smoothing`` parameter;
with a member, the variables ``smoothing (numlstm_series, numlstm_target,
numlstm_smoothing_param)``, each series' form and parameters, and
``smoothing_forecast (numlstm_series, numlstm_lead, numlstm_target)``, its
forecasts from the end of the training data), which a numlstm from before
would call damaged (it knows no ``smoothing`` parameter). A file without
these variables has no member, and loads so. 5 for every file written since
the ``loss`` parameter (the network's training loss, stored as the loss
``"auto"`` stood for), which a numlstm from before would call damaged; a file
without it was trained on the squared error (or, with quantiles, the
pinball loss), and loads with ``loss="mse"`` (``"auto"`` with quantiles). 6 for
every file written since the floor at 0 (the ``nonnegative`` parameter; the
skill entry ``"nonnegative"``, a flag per series and target), which a numlstm
from before would call damaged; a file without it floors nothing, and loads
with ``nonnegative=False``. 7 for every file written since floored forecasts
snap to 0 below half a series' smallest positive value when it was observed
at exactly 0 (the skill entry ``"zeros"``: per series and target whether an
exact 0 was observed and the smallest positive value, null where none), which
a numlstm from before would forecast without the snap, so it refuses it; a
file without it snaps nothing, and loads so. 8 for every file written since each series'
smoothing member has its own weight in the mix (a sixth column of ``smoothing``,
``weight``: 0, 0.5 or 1), which a numlstm from before would call damaged; a
file from before has five columns and loads with the weight 0.5 they all had. 9 for
every file written since a member may be a form on the series' logarithm (a form code
of 4-7: the form ``code - 4`` on the logarithm), which a numlstm from before would
call damaged; a file from before holds codes 0-3 only. 10 for every file written since the
member's forecasts move to the median of its errors (the skill entry ``"member_median"``, true
unless the network was trained on the squared error), which a numlstm from before would forecast
without the move, so it refuses it; a file without the entry forecasts the member's mean, and
loads so.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import xarray as xr

from numlstm._cells import CELLS, cell_spec
from numlstm._validation import resolve_device
from numlstm.core.network import Network
from numlstm.forecast import cycles, smoothing, timeaxis
from numlstm.forecast.inputs import _check_loss, _jsonable, _series_index
from numlstm.forecast.windows import SeriesScaler

FORMAT_NAME = "numlstm.Forecaster"
FORMAT_VERSION = 10  # the version this numlstm writes, and the newest it reads (see the module's docstring)

SERIES, FEATURE, STEP = "numlstm_series", "numlstm_feature", "numlstm_step"
TARGET, LEAD, SMOOTHING_PARAM = "numlstm_target", "numlstm_lead", "numlstm_smoothing_param"


def _encode_times(values, kind):
    if kind == "cftime":
        return [[t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond] for t in values]
    if kind == "datetime64":
        return values.view("int64").tolist()
    return np.asarray(values).tolist()


def _decode_times(encoded, kind, calendar, dtype):
    if kind == "cftime":
        import cftime

        generic = np.array([cftime.datetime(*t, calendar=calendar) for t in encoded], dtype=object)
        return timeaxis._calendar_date_types(generic)
    if kind == "datetime64":
        return np.array(encoded, dtype=np.int64).view(dtype)
    return np.array(encoded, dtype=dtype)


def network_config(net):
    """The ``"network"`` entry of the config: what :func:`network_from_dataset` rebuilds ``net`` from."""
    return {"input_size": net.input_size, "hidden_sizes": list(net.hidden_sizes), "output_size": net.output_size,
            "dtype": str(net.dtype), "cell": net.cell}


def weight_variables(net, local_params=None):
    """The weights of ``net`` as data variables ``{name: (dims, values[, attrs])}``.

    With ``local_params`` (series, n_params), one model per series: every
    variable gets a leading ``numlstm_series`` dimension.
    """
    local = local_params is not None
    param_sets = local_params if local else net.params[None]
    lead = (SERIES,) if local else ()

    def stacked(pick):
        values = [pick(net.get_weights(p)) for p in param_sets]
        return np.stack(values) if local else values[0]

    data_vars = {}
    for k in range(len(net.hidden_sizes)):
        name = f"{net.cell}{k}"
        two_rows = net.spec.bias_rows == 2
        bias_dims = (f"{name}_bias", f"{name}_gate") if two_rows else (f"{name}_gate",)
        data_vars[f"{name}_W"] = (lead + (f"{name}_input", f"{name}_gate"), stacked(lambda w: w["layers"][k]["W"]))
        data_vars[f"{name}_U"] = (lead + (f"{name}_unit", f"{name}_gate"), stacked(lambda w: w["layers"][k]["U"]))
        data_vars[f"{name}_b"] = (lead + bias_dims, stacked(lambda w: w["layers"][k]["b"]))
        if two_rows:
            data_vars[f"{name}_b"] += ({"comment": "row 0 the input bias, row 1 the recurrent bias"},)
    data_vars["head_W"] = (lead + ("head_input", "head_output"), stacked(lambda w: w["head"]["W"]))
    data_vars["head_b"] = (lead + ("head_output",), stacked(lambda w: w["head"]["b"]))
    return data_vars


def network_from_dataset(ds, net_cfg):
    """``(net, local_params)`` from a model-file Dataset and its ``"network"`` config:
    the network with the file's weights, and in local mode the (series,
    n_params) weights of every series (else None). A config without ``cell``
    (a file from before GRU networks) is an LSTM network's."""
    net = Network(net_cfg["input_size"], net_cfg["hidden_sizes"], net_cfg["output_size"], net_cfg["dtype"],
                  cell=net_cfg.get("cell", "lstm"))
    local = SERIES in ds["head_W"].dims

    def weights(s=None):
        pick = (lambda name: ds[name].values[s]) if local else (lambda name: ds[name].values)
        layers = [{name: pick(f"{net.cell}{k}_{name}") for name in "WUb"} for k in range(len(net.hidden_sizes))]
        return {"layers": layers, "head": {"W": pick("head_W"), "b": pick("head_b")}}

    local_params = None
    if local:
        local_params = np.empty((ds.sizes[SERIES], net.n_params), dtype=net.dtype)
        for s in range(ds.sizes[SERIES]):
            local_params[s] = net.set_weights(weights(s)).params
    else:
        net.set_weights(weights())
    return net, local_params


def to_dataset(fc):
    """The fitted Forecaster ``fc`` as a model-file Dataset."""
    from numlstm._version import __version__

    net = fc.network_
    data_vars = weight_variables(net, fc.local_params_)
    data_vars["scale_mean"] = ((SERIES, FEATURE), fc.scaler_.mean, {"long_name": "per-series mean of each input"})
    data_vars["scale_std"] = ((SERIES, FEATURE), fc.scaler_.std, {"long_name": "per-series std of each input"})
    tail_values, tail_time = fc._tail
    data_vars["tail"] = ((SERIES, STEP, FEATURE), tail_values,
                         {"long_name": "last lookback steps of the training data"})
    if getattr(fc, "smoothing_", None) is not None:
        data_vars["smoothing"] = ((SERIES, TARGET, SMOOTHING_PARAM), fc.smoothing_, {
            "long_name": "each series' exponential-smoothing member", "columns": ", ".join(smoothing.PARAMS)})
        data_vars["smoothing_forecast"] = ((SERIES, LEAD, TARGET), fc._smoothing_tail, {
            "long_name": "the smoothing member's forecasts from the end of the training data"})
    params = fc.get_params()
    if not (params["random_state"] is None or isinstance(params["random_state"], (int, np.integer))):
        params["random_state"] = None
    params = json.loads(json.dumps(params, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    if not fc.quantiles_:  # the loss "auto" resolves to, whose meaning may change
        params["loss"] = _check_loss(params.get("loss", "auto"), None)
    time = fc._time
    config = {
        "params": params,
        "targets": fc.targets_, "covariates": fc.covariates_, "future_covariates": fc.future_covariates_,
        "dim": fc.dim_, "freq": fc.freq_, "series_dims": list(fc.series_dims_),
        "series_shape": list(fc._series_coords.shape), "calendar_features": list(fc.calendar_features_),
        "quantiles": fc.quantiles_, "relative": fc.relative_, "skill": fc._skill_config(),
        "local_seeds": None if fc.local_seeds_ is None else [int(v) for v in fc.local_seeds_],
        "n_windows": fc.n_windows_, "history": fc.history_,
        "network": network_config(net),
        "variables": {n: {"dims": info["dims"], "attrs": _jsonable(info["attrs"])} for n, info in
                      fc._var_info.items()},
        "data_attrs": _jsonable(fc._data_attrs),
        "time": {"kind": time["kind"], "calendar": time["calendar"], "attrs": _jsonable(time["attrs"]),
                 "dtype": str(np.asarray(tail_time).dtype), "tail": _encode_times(tail_time, time["kind"])},
    }
    coords = {FEATURE: (FEATURE, np.array(fc._variables, dtype=str))}
    coords.update({k: v.variable for k, v in fc._series_coords.coords.items()})
    return xr.Dataset(data_vars, coords=coords, attrs={
        "numlstm_format": FORMAT_NAME,
        "numlstm_format_version": max(net.spec.format_version, FORMAT_VERSION),
        "numlstm_version": __version__,
        "numlstm_config": json.dumps(config),
        "title": f"numlstm Forecaster of {', '.join(fc.targets_)}",
    })


def _damaged(name, problem):
    return ValueError(f"the model file is incomplete or damaged: {name!r} {problem}; write it again with "
                      "Forecaster.save.")


def _count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _damaged(name, f"in numlstm_config is {value!r}, not an int >= {minimum}")
    return value


def _str_list(value, name):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _damaged(name, f"in numlstm_config is {value!r}, not a list of names")
    return value


def check_model(ds, cfg):
    """Check every array of a model-file Dataset against its config ``cfg`` (the parsed
    ``numlstm_config``): shapes, dtypes, finite weights, finite and positive
    scaling, and the config's own entries these depend on. A ValueError names
    the first variable (or config entry) that is wrong."""
    if not isinstance(cfg, dict):
        raise _damaged("numlstm_config", "is not a JSON object")
    for key in ("params", "network", "targets", "covariates", "future_covariates", "series_dims", "series_shape",
                "calendar_features", "time", "variables", "history", "quantiles"):
        if key not in cfg:
            raise _damaged("numlstm_config", f"has no {key!r} entry")
    def logs(h):
        return isinstance(h, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                               for x in v) for k, v in h.items())

    history = cfg["history"]  # one fit's logs, or (mode="local") each series' logs or None
    if not (logs(history) or (isinstance(history, list) and all(h is None or logs(h) for h in history))):
        raise _damaged("history", "in numlstm_config is not a mapping of names to lists of numbers (or, for "
                       "mode='local', a list of them)")
    if not isinstance(cfg["variables"], dict):
        raise _damaged("variables", "in numlstm_config is not a mapping")
    net_cfg, params = cfg["network"], cfg["params"]
    if not isinstance(net_cfg, dict) or not isinstance(params, dict):
        raise _damaged("numlstm_config", "has a 'network' or 'params' entry that is not an object")
    cell = net_cfg.get("cell", "lstm")
    if not isinstance(cell, str) or cell not in CELLS:
        raise _damaged("network.cell", f"is {cell!r}, not one of {sorted(CELLS)}")
    dtype = net_cfg.get("dtype")
    if dtype not in ("float32", "float64"):
        raise _damaged("network.dtype", f"is {dtype!r}, not 'float32' or 'float64'")
    input_size = _count(net_cfg.get("input_size"), "network.input_size")
    output_size = _count(net_cfg.get("output_size"), "network.output_size")
    hidden = net_cfg.get("hidden_sizes")
    if not isinstance(hidden, list) or not hidden:
        raise _damaged("network.hidden_sizes", f"in numlstm_config is {hidden!r}, not a list of layer sizes")
    hidden = [_count(h, "network.hidden_sizes") for h in hidden]
    variables = sum((_str_list(cfg[k], k) for k in ("targets", "covariates", "future_covariates")), [])
    if not cfg["targets"]:
        raise _damaged("targets", "in numlstm_config is empty")
    calendar = _str_list(cfg["calendar_features"], "calendar_features")
    unknown = [c for c in calendar if c not in cycles.CALENDAR_FEATURES]
    if unknown:
        raise _damaged("calendar_features", f"in numlstm_config names {unknown!r}, not calendar features "
                                            f"{cycles.CALENDAR_FEATURES}")
    series_dims = _str_list(cfg["series_dims"], "series_dims")
    shape = cfg["series_shape"]
    if not isinstance(shape, list) or len(shape) != len(series_dims):
        raise _damaged("series_shape", f"in numlstm_config is {shape!r}, not one size per series dimension")
    n_series = int(np.prod([_count(n, "series_shape") for n in shape]))
    lookback = _count(params.get("lookback"), "params.lookback")
    horizon = _count(params.get("horizon"), "params.horizon")
    n_features = len(variables)
    n_known = len(cfg["future_covariates"]) + 2 * len(calendar)
    skill_cfg = cfg.get("skill")
    if skill_cfg is not None and not isinstance(skill_cfg, dict):
        raise _damaged("skill", f"in numlstm_config is {skill_cfg!r}, not a dict of the baselines and gate")
    gap_fill = skill_cfg is not None and skill_cfg.get("gap_fill") is True
    expected_inputs = n_features * (1 + gap_fill) + 2 * len(calendar) + (n_known > 0)
    if input_size != expected_inputs:
        raise _damaged("network.input_size", f"is {input_size}, but the variables, calendar features and gap "
                       f"indicators make {expected_inputs} inputs")
    quantiles = cfg.get("quantiles")
    if quantiles is not None and (not isinstance(quantiles, list) or not quantiles or not all(
            isinstance(q, (int, float)) and not isinstance(q, bool) and 0 < q < 1 for q in quantiles)
            or any(b <= a for a, b in zip(quantiles, quantiles[1:]))):  # the forecast's sort assumes their order
        raise _damaged("quantiles", f"in numlstm_config is {quantiles!r}, not a list of increasing levels in (0, 1)")
    if output_size != horizon * len(cfg["targets"]) * (len(quantiles) if quantiles else 1):
        raise _damaged("network.output_size", f"is {output_size}, but horizon, targets and quantiles make "
                       f"{horizon * len(cfg['targets']) * (len(quantiles) if quantiles else 1)} outputs")

    local = "head_W" in ds.variables and SERIES in ds["head_W"].dims
    lead = (n_series,) if local else ()
    gates = cell_spec(cell).gates * np.array(hidden)
    expected = {}
    fan_in = input_size
    for k, (H, G) in enumerate(zip(hidden, gates)):
        name = f"{cell}{k}"
        expected[f"{name}_W"] = (fan_in, G)
        expected[f"{name}_U"] = (H, G)
        expected[f"{name}_b"] = cell_spec(cell).bias_shape(H)
        fan_in = H
    expected["head_W"] = (hidden[-1], output_size)
    expected["head_b"] = (output_size,)
    for name, want in expected.items():
        want = lead + want
        if name not in ds.variables:
            raise _damaged(name, "is missing")
        values = ds[name].values
        if values.shape != want:
            raise _damaged(name, f"has shape {values.shape}; its config needs {want}")
        if values.dtype != np.dtype(dtype):
            raise _damaged(name, f"has dtype {values.dtype}; its config needs {dtype}")
        if not np.isfinite(values).all():
            raise _damaged(name, "holds NaN or infinite weights")
    for name, want in (("scale_mean", (n_series, n_features)), ("scale_std", (n_series, n_features)),
                       ("tail", (n_series, lookback, n_features))):
        if name not in ds.variables:
            raise _damaged(name, "is missing")
        values = ds[name].values
        if values.shape != want:
            raise _damaged(name, f"has shape {values.shape}; its config needs {want}")
        if values.dtype.kind != "f":
            raise _damaged(name, f"has dtype {values.dtype}; expected floating point")
        if name == "tail":  # gaps in the data are NaN, but never infinite
            if np.isinf(values).any():
                raise _damaged(name, "holds infinite values")
        elif not np.isfinite(values).all():
            raise _damaged(name, "holds NaN or infinite values")
        elif name == "scale_std" and not (values > 0).all():
            raise _damaged(name, "holds a scale that is not positive")
    if FEATURE not in ds.variables or [str(v) for v in np.atleast_1d(ds[FEATURE].values)] != variables:
        raise _damaged(FEATURE, f"does not list the model's variables {variables}")
    info = cfg["variables"]
    if not isinstance(info, dict) or set(info) != set(variables) or not all(
            isinstance(v, dict) and isinstance(v.get("attrs"), dict) and isinstance(v.get("dims"), list)
            and all(isinstance(d, str) for d in v["dims"]) for v in info.values()):
        raise _damaged("variables", "in numlstm_config does not describe each variable's dims and attrs")
    time = cfg["time"]
    if not isinstance(time, dict) or not isinstance(time.get("attrs"), dict) or not isinstance(
            time.get("tail"), list) or not isinstance(time.get("dtype"), str) or not (
            time.get("calendar") is None or isinstance(time.get("calendar"), str)):
        raise _damaged("time", "in numlstm_config does not describe the time axis")
    for key, kind in (("data_attrs", dict), ("dim", str), ("relative", bool), ("n_windows", int)):
        if not isinstance(cfg.get(key), kind):
            raise _damaged(key, f"in numlstm_config is {cfg.get(key)!r}, not a {kind.__name__}")
    if not isinstance(cfg.get("freq"), (str, int)) or isinstance(cfg.get("freq"), bool):
        raise _damaged("freq", f"in numlstm_config is {cfg.get('freq')!r}, not a time step")
    known = {cfg["dim"], *cfg["series_dims"]}
    for name, info in cfg["variables"].items():
        dims = info.get("dims") if isinstance(info, dict) else None
        if (not isinstance(dims, list) or not set(dims) <= known
                or (name in cfg["targets"] and cfg["dim"] not in dims)):
            raise _damaged("variables", f"in numlstm_config gives {name!r} the dims {dims!r}, which do not fit the "
                           f"time dimension {cfg['dim']!r} and the series dimensions {cfg['series_dims']!r}")
    seeds = cfg.get("local_seeds")
    if local and (not isinstance(seeds, list) or len(seeds) != n_series or not all(
            isinstance(v, int) and not isinstance(v, bool) and -2 ** 63 <= v < 2 ** 63 for v in seeds)):
        raise _damaged("local_seeds", f"in numlstm_config does not hold one seed for each of {n_series} series")
    if not local and seeds is not None:
        raise _damaged("local_seeds", "in numlstm_config is set, but only a mode='local' model has per-series seeds")


def from_dataset(ds, Forecaster):
    """A fitted ``Forecaster`` (the class, passed in by :func:`numlstm.load`: this module
    sits below it) from a model-file Dataset (checked by :func:`numlstm.io.read_model`)."""

    try:
        cfg = json.loads(ds.attrs["numlstm_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the model file has no readable 'numlstm_config' attribute ({type(err).__name__}: {err}); "
                         "write it again with Forecaster.save.") from None
    check_model(ds, cfg)
    try:
        if isinstance(cfg.get("params"), dict) and "stages" not in cfg["params"]:
            # a file from before the parameter: its forecast summed the stages, unless it weighted them
            skill_cfg = cfg.get("skill") if isinstance(cfg.get("skill"), dict) else {}
            cfg["params"]["stages"] = "sum" if skill_cfg.get("stages", [1.0, 1.0]) == [1.0, 1.0] else "mean"
        if isinstance(cfg.get("params"), dict) and "smoothing" not in cfg["params"]:
            cfg["params"]["smoothing"] = False  # a file from before the smoothing member has none
        if isinstance(cfg.get("params"), dict) and "loss" not in cfg["params"]:  # a file from before the option:
            cfg["params"]["loss"] = "auto" if cfg["params"].get("quantiles") else "mse"  # trained on squares
        if isinstance(cfg.get("params"), dict) and "nonnegative" not in cfg["params"]:
            cfg["params"]["nonnegative"] = False  # a file from before the floor forecasts without it
        Forecaster(**{**cfg["params"], "device": "cpu"})._check_params()  # the parameters as fit checks them
        fc = Forecaster(**cfg["params"])
        net, local_params = network_from_dataset(ds, cfg["network"])
        scaler = SeriesScaler.from_dict({"mean": ds["scale_mean"].values, "std": ds["scale_std"].values})
        series_dims = tuple(cfg["series_dims"])
        coords = {k: v.variable for k, v in ds.coords.items() if k != FEATURE and set(v.dims) <= set(series_dims)}
        frame = xr.DataArray(np.zeros(tuple(cfg["series_shape"])), dims=series_dims, coords=coords)
        time = cfg["time"]
        if time["kind"] not in ("datetime64", "cftime", "integer") or len(time["tail"]) != fc.lookback:
            raise ValueError(f"time kind {time['kind']!r} with {len(time['tail'])} tail labels")
        tail_time = _decode_times(time["tail"], time["kind"], time["calendar"], time["dtype"])
        # What predict() does first with the time axis: a file whose labels, step or calendar do not fit fails here.
        timeaxis.continue_time_axis(tail_time, fc.horizon, cfg["freq"], name=cfg["dim"])
        tail = ds["tail"].values.astype(np.float64)
        variables = cfg["targets"] + cfg["covariates"] + cfg["future_covariates"]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as err:
        raise ValueError(f"the model file is incomplete or damaged ({type(err).__name__}: {err}); write it again "
                         "with Forecaster.save.") from None
    if [str(v) for v in ds[FEATURE].values] != variables or tail.shape != (scaler.mean.shape[0], fc.lookback,
                                                                          len(variables)):
        raise ValueError("the model file is inconsistent: its features, scaling and tail do not agree; write it "
                         "again with Forecaster.save.")
    fc.network_ = net
    # A model fitted on a GPU still loads and forecasts on a machine without one.
    fc.device_ = resolve_device("cpu" if fc.device == "cpu" else "auto")
    fc.scaler_ = scaler
    fc.history_ = cfg["history"]
    fc.n_windows_ = cfg["n_windows"]
    fc.targets_, fc.covariates_, fc.future_covariates_ = cfg["targets"], cfg["covariates"], cfg["future_covariates"]
    fc.dim_ = cfg["dim"]
    fc.freq_ = cfg["freq"]
    fc.series_dims_ = series_dims
    fc.calendar_features_ = tuple(cfg["calendar_features"])
    fc.quantiles_ = cfg["quantiles"]
    fc.relative_ = bool(cfg["relative"])
    _restore_skill(fc, cfg.get("skill"))
    if int(ds.attrs.get("numlstm_format_version", FORMAT_VERSION)) >= 10 and "member_median" not in (
            cfg.get("skill") or {}):
        raise _damaged("skill", "lacks 'member_median', which every file of version 10 or later records")
    _restore_smoothing(fc, ds)
    fc.local_params_ = local_params
    fc.local_seeds_ = None if cfg.get("local_seeds") is None else np.array(cfg["local_seeds"], dtype=np.int64)
    fc._series_index = _series_index(frame, series_dims)
    fc._series_coords = frame
    fc._var_info = cfg["variables"]
    fc._data_attrs = cfg["data_attrs"]
    fc._time = {"kind": time["kind"], "calendar": time["calendar"], "attrs": time["attrs"]}
    fc._tail = (tail, tail_time)
    return fc


def _restore_skill(fc, config):
    """The baselines, season, gate, linear stage and calibration, each checked: a damaged one is a
    ValueError naming it, never a model that forecasts NaN or fails later."""
    try:
        fc._restore_skill(config)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError) as err:
        raise _damaged("skill", f"in numlstm_config cannot be read ({type(err).__name__}: {err})") from None
    n_series = fc.scaler_.mean.shape[0]
    if fc._codes.shape[0] not in (1, n_series) or not np.isin(fc._codes, (0, 1, 2)).all():
        raise _damaged("skill.baseline", f"holds codes of shape {fc._codes.shape} with values "
                       f"{sorted(set(np.unique(fc._codes).tolist()))}, not 0-2 per series, lead and target")
    if fc.season_ is not None and (isinstance(fc.season_, bool) or not isinstance(fc.season_, int)
                                   or not 1 <= fc.season_ <= fc.lookback):
        raise _damaged("skill.season", f"is {fc.season_!r}, not a whole number of steps from 1 to the lookback "
                       f"({fc.lookback}): the seasonal-naive baseline reads one season back inside the lookback")
    if not all(np.isfinite(w) and 0 <= w <= 1 for w in fc.stage_weights_):
        raise _damaged("skill.stages", f"is {list(fc.stage_weights_)!r}, not two weights from 0 to 1 (the linear "
                       "stage's and the network's)")
    k, h = len(fc.targets_), fc.horizon
    if fc.nonnegative_ is not None and fc.nonnegative_.shape != (n_series, k):
        raise _damaged("skill.nonnegative", f"has shape {fc.nonnegative_.shape}, not {(n_series, k)} (a flag per "
                       "series and target)")
    zeros = getattr(fc, "zeros_", None)
    if zeros is not None and zeros[0].shape != (n_series, k):
        raise _damaged("skill.zeros", f"has shape {zeros[0].shape}, not {(n_series, k)} (a flag and a value per "
                       "series and target)")
    per_series = (n_series,) if fc.mode == "local" else ()
    shapes = {"shrink_": (per_series + (h, k), "a gate per lead and target"),
              "linear_": (per_series + (fc.lookback * k + 1, h * k),
                          "coefficients from the lookback's past values and a constant to each lead and target"),
              "calibration_": ((h, k, len(fc.quantiles_ or ())), "a shift per lead, target and quantile")}
    for name, (shape, what) in shapes.items():
        value = getattr(fc, name, None)
        if value is None:
            continue
        if value.dtype.kind != "f" or not np.isfinite(value).all():
            raise _damaged(f"skill.{name.rstrip('_')}", "holds values that are not finite numbers")
        if value.shape != shape:  # it loaded, and then predict() failed to broadcast
            raise _damaged(f"skill.{name.rstrip('_')}", f"has shape {value.shape}, not {shape} ({what})")


def _restore_smoothing(fc, ds):
    """The smoothing member, checked: none in a file without it."""
    if "smoothing" not in ds.variables:
        return fc._set_smoothing(None, None)
    if "smoothing_forecast" not in ds.variables:
        raise _damaged("smoothing_forecast", "is missing beside 'smoothing'")
    params = np.asarray(ds["smoothing"].values, dtype=np.float64)
    tail = np.asarray(ds["smoothing_forecast"].values, dtype=np.float64)
    n_series, k = fc.scaler_.mean.shape[0], len(fc.targets_)
    columns = len(smoothing.PARAMS)
    version = int(ds.attrs.get("numlstm_format_version", FORMAT_VERSION))
    before = version < 8  # may lack the weights
    forms = 2 * smoothing.LOG if version >= 9 else smoothing.LOG  # forms on the logarithm since 9
    if params.shape != (n_series, k, columns) and not (before and params.shape == (n_series, k, columns - 1)):
        raise _damaged("smoothing", f"has shape {params.shape}, not {(n_series, k, columns)} (a form, four "
                       "parameters and a weight per series and target)")
    params = smoothing.with_weight(params)  # a file from before the weights: a half each
    if tail.shape != (n_series, fc.horizon, k):
        raise _damaged("smoothing_forecast", f"has shape {tail.shape}, not {(n_series, fc.horizon, k)}")
    chosen = np.isfinite(params[..., 0])
    if not (np.isin(params[..., 0][chosen], np.arange(forms)).all()
            and np.isfinite(params[chosen]).all() and (np.abs(params[chosen][:, 1:] - 0.5) <= 0.5).all()):
        raise _damaged("smoothing", f"holds a form that is not one of 0-{forms - 1} or parameters "
                       "that are not numbers from 0 to 1")
    if np.isinf(tail).any():
        raise _damaged("smoothing_forecast", "holds infinite values")
    return fc._set_smoothing(params, tail)


def training_checkpoints(fitted, net, *, checkpoint, checkpoint_every, resume, early_stopping):
    """The ``checkpoint``, ``checkpoint_every`` and ``resume`` arguments of
    :func:`numlstm.core.training.fit` for a Forecaster's fit.

    A checkpoint is a model file of the fit so far (the last completed epoch's
    weights, or the best ones under early stopping: :func:`numlstm.load` reads
    it as a fitted model) plus the training state of
    :mod:`numlstm.core.checkpoint`. ``fitted(net, history)`` returns a fitted
    Forecaster (a copy) with ``net`` and ``history``; ``net`` is the network
    being trained, for the shape of the weights to resume."""
    from numlstm.core import checkpoint as _checkpoint

    path = _checkpoint.check_target(checkpoint)
    every = _checkpoint.check_every(checkpoint_every)
    state = None
    if resume is not None:
        ds = _checkpoint.read(resume)
        if ds.attrs.get("numlstm_format") != FORMAT_NAME:
            raise ValueError(f"resume {str(resume)!r} is not a Forecaster checkpoint (its numlstm_format is "
                             f"{ds.attrs.get('numlstm_format')!r}); resume from the file Forecaster.fit(..., "
                             "checkpoint=...) wrote.")
        state = _checkpoint.state_from_dataset(ds, net.n_params, net.dtype, resume)
    write = None
    if path is not None:
        def write(state):
            kept = copy.copy(net)
            best = state.best_params if early_stopping else None
            kept.params = (best if best is not None else state.params).copy()
            model = to_dataset(fitted(kept, state.history))
            _checkpoint.write(model.merge(_checkpoint.state_dataset(state), combine_attrs="override").assign_attrs(
                _checkpoint.state_dataset(state).attrs), path)
    return {"checkpoint": write, "checkpoint_every": every, "resume": state}
