"""Training checkpoints: a :class:`~numlstm.core.training.TrainingState` as variables of a Dataset.

A checkpoint is what a fit needs to go on as if it had never stopped: the
weights after the last completed epoch (flat, ``checkpoint_params``), the
optimizer's moments (``checkpoint_optimizer_state``), the best weights so far
under early stopping (``checkpoint_best_params``, when there are some), and in
the attribute ``numlstm_checkpoint`` a JSON object with the epoch count, the
update count, the shuffling generator's state, the dropout seed, the history
and the early-stopping bookkeeping.

The Forecaster adds these to its model file (so a checkpoint also loads as a
model with :func:`numlstm.load`); the array estimators write them alone, as a
file of format ``numlstm.Checkpoint``. Files are written atomically by
:func:`numlstm.io.write_dataset`: a fit killed while writing one leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from numlstm.core.training import TrainingState

STATE_ATTR = "numlstm_checkpoint"
PARAMS, OPTIMIZER, BEST = "checkpoint_params", "checkpoint_optimizer_state", "checkpoint_best_params"
VARIABLES = (PARAMS, OPTIMIZER, BEST)
PARAM_DIM, MOMENT_DIM = "numlstm_param", "numlstm_moment"
FORMAT_NAME = "numlstm.Checkpoint"  # a checkpoint of an array estimator
FORMAT_VERSION = 1


def check_target(path, name="checkpoint"):
    """Refuse, before training starts, a checkpoint path that could not be written."""
    if path is None:
        return None
    if not isinstance(path, (str, Path)) or not str(path).lower().endswith(".nc"):
        raise ValueError(f"{name} must be a path ending in .nc (netCDF), got {path!r}. For example: "
                         f"{name}='run.nc'.")
    folder = Path(path).parent
    if not folder.is_dir():
        raise ValueError(f"{name} {str(path)!r}: the folder {str(folder)!r} does not exist; create it first.")
    return Path(path)


def check_every(every):
    if isinstance(every, (bool, np.bool_)) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"checkpoint_every must be a positive int (epochs between checkpoints), got {every!r}.")
    return int(every)


def state_dataset(state, attrs=None):
    """The checkpoint variables of ``state``, with ``attrs`` added to the Dataset's."""
    data_vars = {PARAMS: ((PARAM_DIM,), np.asarray(state.params)),
                 OPTIMIZER: ((MOMENT_DIM, PARAM_DIM), np.asarray(state.optimizer_state))}
    if state.best_params is not None:
        data_vars[BEST] = ((PARAM_DIM,), np.asarray(state.best_params))
    meta = {"epoch": int(state.epoch), "step": int(state.step), "rng_state": state.rng_state,
            "dropout_seed": int(state.dropout_seed), "history": state.history,
            "best_loss": None if not math.isfinite(state.best_loss) else float(state.best_loss),
            "wait": int(state.wait), "fingerprint": state.fingerprint}
    import xarray as xr  # on first use: the array front doors start without xarray

    return xr.Dataset(data_vars, attrs={**(attrs or {}), STATE_ATTR: json.dumps(meta)})


def strip(ds):
    """``ds`` without its checkpoint variables and attribute (a model file's own content)."""
    out = ds.drop_vars([v for v in VARIABLES if v in ds.variables])
    out.attrs = {k: v for k, v in ds.attrs.items() if k != STATE_ATTR}
    return out


def state_from_dataset(ds, n_params, dtype, path):
    """The :class:`TrainingState` in ``ds`` (read from ``path``), checked against a network of
    ``n_params`` weights of ``dtype``; ValueError naming what is wrong."""
    where = f"checkpoint {str(path)!r}"
    if STATE_ATTR not in ds.attrs or PARAMS not in ds.variables or OPTIMIZER not in ds.variables:
        raise ValueError(f"{where} holds no training state (no {STATE_ATTR!r} attribute or {PARAMS!r} variable); "
                         "resume from a file written by fit(..., checkpoint=...).")
    try:
        meta = json.loads(ds.attrs[STATE_ATTR])
        epoch, step, wait = (int(meta[k]) for k in ("epoch", "step", "wait"))
        history = {str(k): [float(x) for x in v] for k, v in meta["history"].items()}
        rng_state, dropout_seed = meta["rng_state"], int(meta["dropout_seed"])
        best_loss = math.inf if meta["best_loss"] is None else float(meta["best_loss"])
        fingerprint = meta.get("fingerprint", "")
        if not isinstance(rng_state, dict) or not isinstance(fingerprint, str):
            raise TypeError("rng_state is not an object, or fingerprint not a str")
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{where}: its {STATE_ATTR!r} attribute is damaged ({type(err).__name__}: {err}).") \
            from None
    if epoch < 0 or step < 0 or wait < 0 or any(len(v) != epoch for v in history.values()):
        raise ValueError(f"{where}: its {STATE_ATTR!r} attribute is inconsistent (epoch {epoch}, step {step}).")
    expected = {PARAMS: (n_params,), OPTIMIZER: (2, n_params), BEST: (n_params,)}
    arrays = {}
    for name, shape in expected.items():
        if name not in ds.variables:
            continue
        values = ds[name].values
        if values.shape != shape or values.dtype != np.dtype(dtype):
            raise ValueError(f"{where}: variable {name!r} has shape {values.shape} and dtype {values.dtype}, but "
                             f"this model needs {shape} and {np.dtype(dtype)}; resume with the same model "
                             "settings and data as the interrupted fit.")
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: variable {name!r} holds NaN or infinite values.")
        arrays[name] = values.copy()
    return TrainingState(epoch=epoch, params=arrays[PARAMS], optimizer_state=arrays[OPTIMIZER], step=step,
                         rng_state=rng_state, dropout_seed=dropout_seed, history=history, best_loss=best_loss,
                         best_params=arrays.get(BEST), wait=wait, fingerprint=fingerprint)


def write(ds, path):
    """Write a checkpoint Dataset atomically (see :func:`numlstm.io.write_dataset`)."""
    from numlstm import io

    io.write_dataset(ds, path)


def read(path, name="resume"):
    """The Dataset of the checkpoint file at ``path``; ValueError when it cannot be read."""
    if not isinstance(path, (str, Path)) or not str(path).lower().endswith(".nc"):
        raise ValueError(f"{name} must be the path of a checkpoint (.nc) written by fit(..., checkpoint=...), "
                         f"got {path!r}.")
    if not Path(path).is_file():
        raise ValueError(f"{name}: no checkpoint file at {str(path)!r}.")
    try:
        import xarray as xr

        return xr.load_dataset(path)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"{name}: {str(path)!r} could not be read as a checkpoint ({err}).") from None
