"""One validation path for every public entry point.

Messages follow one pattern: what the argument is, what was expected, what
came, and the fix.
"""

import numbers

import numpy as np

from numlstm._cells import NAMES as CELLS

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
DEVICES = ("cpu", "cuda", "auto")


def check_dtype(dtype, name="dtype"):
    """``"float32"``/``"float64"`` (or the NumPy types) -> ``np.dtype``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be 'float32' or 'float64', got {dtype!r}.")
    return dt


def check_cell(cell, name="cell"):
    """A cell name of :data:`numlstm._cells.CELLS` (any case) -> the lower-case name."""
    if not isinstance(cell, str) or cell.lower() not in CELLS:
        choices = " or ".join(repr(c) for c in CELLS)
        raise ValueError(f"{name} must be {choices} (the recurrent layer type), got {cell!r}. "
                         f"Pass {name}={CELLS[0]!r} (the default)"
                         + "".join(f" or {name}={c!r}" for c in CELLS[1:]) + ".")
    return cell.lower()


def resolve_device(device, name="device"):
    """``"cpu"`` or ``"cuda"``: ``"auto"`` picks the GPU when one is usable;
    ``"cuda"`` without a usable GPU raises, saying why."""
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ValueError(f"{name} must be one of {DEVICES}, got {device!r}.")
    device = device.lower()
    if device == "cpu":
        return "cpu"
    from numlstm._device import cuda_status

    usable, reason = cuda_status()
    if usable:
        return "cuda"
    if device == "auto":
        return "cpu"
    raise ValueError(
        f"{name}='cuda' needs a usable NVIDIA GPU, and there is none: {reason}. Use {name}='cpu', or "
        f"{name}='auto' to take the GPU only when one is usable (install the extra with "
        "pip install 'numlstm[cuda]')."
    )


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_number(value, name, *, low=None, high=None, low_open=False, high_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        rule = " and ".join(r for r in (lo, hi) if r) or "finite"
        raise ValueError(f"{name} must be {rule}, got {value!r}.")
    return value


def float_array(value, name, *, dtype=None):
    """An ndarray of float32/float64 without copying or upcasting.

    Raises TypeError for anything else (strings, objects, integers, mixed
    dtypes), naming the conversion that fixes it.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "f" or arr.dtype not in FLOAT_DTYPES:
        kind = "non-numeric" if arr.dtype.kind not in "biufc" else str(arr.dtype)
        raise TypeError(
            f"{name} must be a float32 or float64 array, got {kind} data (dtype {arr.dtype}). "
            f"Convert it first, e.g. {name}.astype(np.float32)."
        )
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {arr.dtype} but the other arrays are {np.dtype(dtype)}; numlstm never casts "
            f"silently. Use {name}.astype(np.{np.dtype(dtype)}) (or cast the others)."
        )
    return arr


def check_shape(arr, name, expected, what):
    """``expected`` is a tuple of ints or None (any size)."""
    if arr.ndim != len(expected) or any(e is not None and s != e for s, e in zip(arr.shape, expected)):
        want = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} has shape {arr.shape}; expected {want}, {what}.")


def check_finite(arr, name):
    if not np.isfinite(arr).all():
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"{name} contains {n_bad} NaN or infinite value(s); inputs must be finite. "
            f"Drop or fill those samples first (e.g. with np.nan_to_num or by removing the rows)."
        )


def check_nonempty(arr, name):
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample with one time step is needed.")


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (a ValueError, as in scikit-learn)."""


def check_random_state(random_state):
    """A NumPy Generator from None, an int or a Generator."""
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}.")


def check_dropout(model):
    """``(dropout, recurrent_dropout)`` of ``model`` as a float64 array, each in [0, 1)."""
    rates = [check_number(getattr(model, name), name, low=0, high=1, high_open=True)
             for name in ("dropout", "recurrent_dropout")]
    return np.array(rates, dtype=np.float64)


def check_training_params(model):
    """Validate the training knobs the estimators and the Forecaster share.

    Returns ``(units, dtype, device, rng)``: the hidden sizes per layer, the
    NumPy dtype, the resolved device and a Generator from ``random_state``.
    A ``cell`` attribute, where the model has one, is checked too. (The
    optimizer is checked where it is made: ``core.optimizers.make_optimizer``.)
    """
    check_cell(getattr(model, "cell", "lstm"))
    layers = check_positive_int(model.layers, "layers")
    if isinstance(model.units, (list, tuple)):
        units = [check_positive_int(u, "units") for u in model.units]
        if len(units) != layers:
            raise ValueError(f"units lists {len(units)} layer sizes but layers={layers}; give one size per "
                             "layer or a single int.")
    else:
        units = [check_positive_int(model.units, "units")] * layers
    check_positive_int(model.epochs, "epochs")
    check_positive_int(model.batch_size, "batch_size")
    check_positive_int(model.patience, "patience")
    check_number(model.validation_fraction, "validation_fraction", low=0, high=1, high_open=True)
    check_number(model.clipnorm, "clipnorm", low=0, low_open=True, allow_none=True)
    check_number(model.learning_rate, "learning_rate", low=0, low_open=True)
    if model.verbose not in (0, 1, 2) or isinstance(model.verbose, bool):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got "
                         f"{model.verbose!r}.")
    if not isinstance(model.early_stopping, (bool, np.bool_)):
        raise TypeError(f"early_stopping must be True or False, got {model.early_stopping!r}.")
    return units, check_dtype(model.dtype), resolve_device(model.device), check_random_state(model.random_state)
