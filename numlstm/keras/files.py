"""Model files of numlstm.keras: its own netCDF files, and Keras 3 ``.keras`` files.

Both are read as data. A ``.keras`` file is a zip holding ``config.json``
(read with :mod:`json`) and ``model.weights.h5`` (read with the optional
``h5py``); the configuration is translated into numlstm.keras layer settings
by name, so a layer numlstm does not have (a ``Lambda`` with its bytecode
included) is refused by name and nothing in the file is ever run.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import NamedTuple

import numpy as np

from numlstm.keras.layers import snake_case

__all__ = ["SavedModel", "read_keras_file", "read_numlstm_file", "write_numlstm_file"]

FORMAT = "keras_sequential"
VERSION = 1


class SavedModel(NamedTuple):
    """A model file's contents: the model configuration (``Sequential.get_config()``
    format), its weights in Keras' order and the name of each in the file."""

    config: dict
    weights: list
    names: list


def write_numlstm_file(path, config, weights, labels):
    """``config`` as a JSON attribute and each weight as a variable ``weight_<i>``."""
    import xarray as xr

    from numlstm import io as _io

    variables = {}
    for index, (value, label) in enumerate(zip(weights, labels)):
        name = f"weight_{index}"
        variables[name] = xr.Variable(tuple(f"{name}_dim{axis}" for axis in range(value.ndim)), value,
                                      attrs={"keras_weight": label})
    ds = xr.Dataset(variables, attrs={_io.FORMAT_ATTR: FORMAT, _io.VERSION_ATTR: VERSION,
                                      "model_config": json.dumps(config), "n_weights": len(weights)})
    _io.write_dataset(ds, path)


def read_numlstm_file(path):
    from numlstm import io as _io  # xarray, imported when a file is read

    ds = _io.read_model(path, FORMAT, VERSION, writer="numlstm.keras Sequential.save")
    try:
        config = json.loads(ds.attrs["model_config"])
        count = int(ds.attrs["n_weights"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{str(path)!r} has no valid model configuration ({err}); it was not written by "
                         "numlstm.keras Sequential.save.") from None
    if not isinstance(config, dict):
        raise ValueError(f"{str(path)!r} has an invalid model configuration (not a JSON object).")
    names = [f"weight_{index}" for index in range(count)]
    missing = [name for name in names if name not in ds]
    if missing:
        raise ValueError(f"{str(path)!r} lacks the variable(s) {missing}.")
    return SavedModel(config, [ds[name].values for name in names], [f"variable {name!r}" for name in names])


# --- Keras 3 .keras files -------------------------------------------------------------------


_RECURRENT_KEYS = ("name", "units", "activation", "recurrent_activation", "use_bias", "return_sequences",
                   "return_state", "go_backwards", "stateful", "dropout", "recurrent_dropout")


def _translate(entry, where):
    """numlstm.keras ``{"class_name", "config"}`` from a Keras layer entry."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{where} is not a Keras layer entry.")
    name, config = entry.get("class_name"), entry["config"]
    if entry.get("registered_name") not in (None, name) or not str(entry.get("module", "keras.layers")).startswith(
            "keras"):
        raise ValueError(f"{where} is the custom layer {entry.get('registered_name') or name!r}, which numlstm.keras "
                         "cannot run (it runs no code from a model file).")
    pick = {"LSTM": _RECURRENT_KEYS, "GRU": _RECURRENT_KEYS + ("reset_after",),
            "Dense": ("name", "units", "activation", "use_bias"),
            "Embedding": ("name", "input_dim", "output_dim", "mask_zero"), "Dropout": ("name", "rate", "noise_shape")}
    if name == "InputLayer":
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        return {"class_name": "InputLayer", "config": {"name": config.get("name"), "shape": list(shape[1:]),
                                                       "dtype": config.get("dtype")}}
    if name == "Bidirectional":
        out = {"name": config.get("name"), "merge_mode": config.get("merge_mode", "concat"),
               "layer": _translate(config.get("layer"), f"{where} (its wrapped layer)")}
        return {"class_name": "Bidirectional", "config": out}
    if name not in pick:
        raise ValueError(f"{where} is a {name!r} layer, which numlstm.keras does not support; it reads "
                         "Sequential models of InputLayer, Embedding, LSTM, GRU, Bidirectional and Dense layers.")
    out = {key: config[key] for key in pick[name] if key in config}
    if not isinstance(out.get("activation", "linear"), str):
        raise ValueError(f"{where} ({name}) has an activation given as {type(out['activation']).__name__}; "
                         "numlstm.keras reads activations saved by name.")
    return {"class_name": name, "config": out}


def _h5_arrays(group, class_name, where):
    """The weights of one layer's h5 group, in Keras' order."""
    def variables(g):
        if "vars" not in g:
            return []
        v = g["vars"]
        return [np.asarray(v[key][()]) for key in sorted(v, key=int)]

    if class_name in ("LSTM", "GRU"):
        return variables(group["cell"])
    if class_name == "Bidirectional":
        return variables(group["forward_layer"]["cell"]) + variables(group["backward_layer"]["cell"])
    return variables(group)


def read_keras_file(path):
    """A :class:`SavedModel` from a ``.keras`` file written by Keras 3."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ValueError(f"no model file at {str(path)!r}.") from None
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{str(path)!r} is not a .keras file (a zip archive written by Keras 3): {err}.") from None
    with archive:
        names = archive.namelist()
        for member in ("config.json", "model.weights.h5"):
            if member not in names:
                raise ValueError(f"{str(path)!r} has no {member}; a .keras file written by Keras 3 holds config.json "
                                 f"and model.weights.h5 (it holds {names}).")
        try:
            keras_config = json.loads(archive.read("config.json"))
        except ValueError as err:
            raise ValueError(f"{str(path)!r}: config.json is not valid JSON ({err}).") from None
        weights_bytes = archive.read("model.weights.h5")
    if not isinstance(keras_config, dict) or keras_config.get("class_name") != "Sequential":
        kind = keras_config.get("class_name") if isinstance(keras_config, dict) else type(keras_config).__name__
        raise ValueError(f"{str(path)!r} holds a {kind!r} model; numlstm.keras reads Sequential models only.")
    entries = keras_config.get("config", {}).get("layers", [])
    layers = [_translate(entry, f"layer {index} ({entry.get('config', {}).get('name', '?')!r})")
              for index, entry in enumerate(entries)]
    config = {"name": keras_config["config"].get("name"), "layers": layers}
    body = [(entry, layer) for entry, layer in zip(entries, layers) if layer["class_name"] != "InputLayer"]
    build = (body[0][0].get("build_config") or {}).get("input_shape") if body else None
    if build and len(build) == 3 and build[-1] is not None:
        config["input_features"] = int(build[-1])
    compile_config = keras_config.get("compile_config") or {}
    if compile_config.get("loss"):
        optimizer = compile_config.get("optimizer")
        if isinstance(optimizer, str):
            optimizer = {"class_name": {"adam": "Adam", "sgd": "SGD"}.get(optimizer.lower(), optimizer)}
        metrics = compile_config.get("metrics") or []
        config["compile"] = {"loss": compile_config["loss"], "optimizer": optimizer or {},
                             "metrics": metrics}
    try:
        import h5py
    except ImportError:
        raise ImportError("reading the weights of a .keras file needs h5py: pip install h5py (or pip install "
                          "'numlstm[keras]').") from None
    weights, labels = [], []
    counts = {}
    with h5py.File(io.BytesIO(weights_bytes), "r") as h5:
        for entry, layer in body:
            base = snake_case(entry["class_name"])
            seen = counts.get(base, 0)
            counts[base] = seen + 1
            key = base if seen == 0 else f"{base}_{seen}"
            if "layers" not in h5 or key not in h5["layers"]:
                if layer["class_name"] == "Dropout":
                    continue
                raise ValueError(f"{str(path)!r}: model.weights.h5 has no group 'layers/{key}' for the layer "
                                 f"{entry['config'].get('name')!r}.")
            arrays = _h5_arrays(h5["layers"][key], entry["class_name"], key)
            weights += arrays
            labels += [f"'layers/{key}' array {index}" for index in range(len(arrays))]
    return SavedModel(config, weights, labels)
