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
rather than as damaged. This numlstm reads both.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from numlstm._validation import resolve_device
from numlstm.core.network import Network
from numlstm.forecast import timeaxis
from numlstm.forecast.windows import SeriesScaler

FORMAT_NAME = "numlstm.Forecaster"
FORMAT_VERSION = 2  # the newest version this numlstm reads and writes
CELL_FORMAT_VERSION = {"lstm": 1, "gru": 2}  # the version a file of each cell is written with

SERIES, FEATURE, STEP = "numlstm_series", "numlstm_feature", "numlstm_step"


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
        bias_dims = (f"{name}_bias", f"{name}_gate") if net.cell == "gru" else (f"{name}_gate",)
        data_vars[f"{name}_W"] = (lead + (f"{name}_input", f"{name}_gate"), stacked(lambda w: w["layers"][k]["W"]))
        data_vars[f"{name}_U"] = (lead + (f"{name}_unit", f"{name}_gate"), stacked(lambda w: w["layers"][k]["U"]))
        data_vars[f"{name}_b"] = (lead + bias_dims, stacked(lambda w: w["layers"][k]["b"]))
        if net.cell == "gru":
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
    from numlstm import __version__
    from numlstm.forecast.forecaster import _jsonable

    net = fc.network_
    data_vars = weight_variables(net, fc.local_params_)
    data_vars["scale_mean"] = ((SERIES, FEATURE), fc.scaler_.mean, {"long_name": "per-series mean of each input"})
    data_vars["scale_std"] = ((SERIES, FEATURE), fc.scaler_.std, {"long_name": "per-series std of each input"})
    tail_values, tail_time = fc._tail
    data_vars["tail"] = ((SERIES, STEP, FEATURE), tail_values,
                         {"long_name": "last lookback steps of the training data"})
    params = fc.get_params()
    if not (params["random_state"] is None or isinstance(params["random_state"], (int, np.integer))):
        params["random_state"] = None
    params = json.loads(json.dumps(params, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    time = fc._time
    config = {
        "params": params,
        "targets": fc.targets_, "covariates": fc.covariates_, "future_covariates": fc.future_covariates_,
        "dim": fc.dim_, "freq": fc.freq_, "series_dims": list(fc.series_dims_),
        "series_shape": list(fc._series_coords.shape), "calendar_features": list(fc.calendar_features_),
        "quantiles": fc.quantiles_, "relative": fc.relative_, "skill": fc._skill_config(),
        "local_seeds": None if fc.local_seeds_ is None else [int(v) for v in fc.local_seeds_], "n_windows": fc.n_windows_, "history": fc.history_,
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
        "numlstm_format_version": CELL_FORMAT_VERSION[net.cell],
        "numlstm_version": __version__,
        "numlstm_config": json.dumps(config),
        "title": f"numlstm Forecaster of {', '.join(fc.targets_)}",
    })


def from_dataset(ds):
    """A fitted Forecaster from a model-file Dataset (checked by :func:`numlstm.io.read_model`)."""
    from numlstm.forecast.forecaster import Forecaster, _series_index

    try:
        cfg = json.loads(ds.attrs["numlstm_config"])
        fc = Forecaster(**cfg["params"])
        net, local_params = network_from_dataset(ds, cfg["network"])
        scaler = SeriesScaler.from_dict({"mean": ds["scale_mean"].values, "std": ds["scale_std"].values})
        series_dims = tuple(cfg["series_dims"])
        coords = {k: v.variable for k, v in ds.coords.items() if k != FEATURE and set(v.dims) <= set(series_dims)}
        frame = xr.DataArray(np.zeros(tuple(cfg["series_shape"])), dims=series_dims, coords=coords)
        time = cfg["time"]
        tail_time = _decode_times(time["tail"], time["kind"], time["calendar"], time["dtype"])
        tail = ds["tail"].values.astype(np.float64)
        variables = cfg["targets"] + cfg["covariates"] + cfg["future_covariates"]
    except (KeyError, TypeError, ValueError) as err:
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
    fc._restore_skill(cfg.get("skill"))
    fc.local_params_ = local_params
    fc.local_seeds_ = None if cfg.get("local_seeds") is None else np.array(cfg["local_seeds"], dtype=np.int64)
    fc._series_index = _series_index(frame, series_dims)
    fc._series_coords = frame
    fc._var_info = cfg["variables"]
    fc._data_attrs = cfg["data_attrs"]
    fc._time = {"kind": time["kind"], "calendar": time["calendar"], "attrs": time["attrs"]}
    fc._tail = (tail, tail_time)
    return fc
